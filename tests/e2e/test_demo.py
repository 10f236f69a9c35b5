"""scripts/demo.py end to end on its quick synthetic default: trains the tiny T5 and modules,
shows zero-shot accuracy, learns with per-step progress, generates with the learned adapter,
and says plainly that the default is small and synthetic."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import lorahub_bin

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_quick(tmp_path):
    work = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--workdir", str(work), "--quick",
         "--steps", "8", "--lorahub", lorahub_bin()],
        capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "SMALL SYNTHETIC DEFAULT" in out
    assert "zero-shot accuracy on 50 test inputs" in out
    assert "LoraHub" in out and "accuracy on 50 test inputs" in out
    assert "learn (cobyla) 8/8" in proc.stderr  # live per-step progress
    summary = json.loads((work / "learned" / "weights.json").read_text())
    assert len(summary["weights"]) == 6 and len(summary["history"]) == 8
    assert (work / "learned" / "adapter_model.safetensors").exists()
