"""One loaded model, many adapters at once (issue 19): threads with their own compositions, one
call whose rows carry different adapters, and the continuous batcher with sequences joining
between steps, each equal to running the calls one by one. The checks run in C++
(tests/tools/session_check.cpp) on a tiny T5 with PEFT modules and on the real SmolLM2 GGUF with
modules of library/smollm2; the T5 run is repeated under ThreadSanitizer."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, lorahub_bin, smollm2_gguf
from lorahub_tiny import make_modules
from t5_tiny import make_t5, train_spm

SMOLLM2_MODULES = ["add_sub", "boolean_eval", "clock_add"]


def check_sessions(binary, model, modules, env=None):
    proc = subprocess.run([str(binary), str(model), *map(str, modules)], capture_output=True,
                          text=True, timeout=900, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] and report["compositions_differ"], report
    return report


def release_binary():
    return Path(lorahub_bin()).parent / "check_sessions"


@pytest.fixture(scope="module")
def tiny_t5(bbh_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("sessions")
    model = make_t5("v1.1", train_spm(bbh_dir, root), root / "t5")
    return model, make_modules(model, root, 3)


def test_sessions_on_tiny_t5(tiny_t5):
    report = check_sessions(release_binary(), *tiny_t5)
    assert report["batcher_max_sequences_per_step"] > 1


def test_sessions_on_smollm2_with_library_modules():
    modules = [ROOT / "library" / "smollm2" / m for m in SMOLLM2_MODULES]
    report = check_sessions(release_binary(), smollm2_gguf(), modules)
    assert report["mixed_loss_max_relative_gap"] <= 1e-5


def test_sessions_under_thread_sanitizer(tiny_t5):
    """The TSan build (scripts/test.sh makes it: build-tsan/bin/check_sessions): no data race
    between sessions on one model. One OpenMP thread per call: libgomp is not instrumented."""
    binary = Path(os.environ.get("LORAHUB_TSAN_DIR", ROOT / "build-tsan")) / "bin" / "check_sessions"
    assert binary.exists(), f"{binary} missing: build it with scripts/test.sh (ThreadSanitizer step)"
    check_sessions(binary, *tiny_t5, env={"OMP_NUM_THREADS": "1", "CHECK_THREADS": "1",
                                          "TSAN_OPTIONS": "halt_on_error=1 second_deadlock_stack=1"})
