"""scripts/demo.py end to end on a small budget (--quick: 6 of the 26 library modules, 6 steps,
10 test examples) with the real SmolLM2 GGUF and the committed library: a held-out upstream
task by default, and a BBH task with --bbh. Checks the live progress, the terminal bar chart,
the before/after accuracies (against the files the demo wrote), and the HTML report."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import lorahub_bin

ROOT = Path(__file__).resolve().parents[2]


def run_demo(work, *extra):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--workdir", str(work), "--quick",
         "--lorahub", lorahub_bin(), *extra],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def check_run(proc, work, test_count):
    out = proc.stdout
    assert "learn (cobyla) 6/6" in proc.stderr  # live per-step progress
    summary = json.loads((work / "learned" / "weights.json").read_text())
    assert len(summary["weights"]) == 6 and len(summary["history"]) == 6
    assert all(Path(m).parent == ROOT / "library" / "smollm2" for m in summary["modules"])
    # The bar chart: one row per module with its weight.
    for path, w in zip(summary["modules"], summary["weights"]):
        weight = re.escape(f"{w:+.3f}")
        assert re.search(rf"{Path(path).name} .*\|.* {weight}\n", out)
    m = re.search(rf"accuracy on {test_count} test examples: base model ([\d.]+)% -> "
                  rf"LoraHub ([\d.]+)%", out)
    assert m, out[-2000:]
    assert re.search(r"floor: always answering the few-shot majority .+ scores [\d.]+%", out)
    assert len((work / "test.jsonl").read_text().splitlines()) == test_count
    report = work / "report.html"
    assert f"report: {report}" in out
    page = report.read_text()
    assert page.count("<svg") == 2 and "<polyline" in page  # loss curve + weights chart
    assert f"<b>{float(m.group(1)):.1f}%</b>" in page and f"<b>{float(m.group(2)):.1f}%</b>" in page
    assert 'class="floor"' in page and ("&#10003; right" in page or "&#10007; wrong" in page)
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")  # self-contained


@pytest.mark.slow
def test_demo_held_out_task(tmp_path):
    work = tmp_path / "demo"
    proc = run_demo(work, "--task", "antonym_mc")
    assert "held-out upstream task antonym_mc" in proc.stdout
    check_run(proc, work, 10)
    rows = [json.loads(l) for l in (work / "examples.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and all("opposite" in r["input"] for r in rows)


@pytest.mark.slow
def test_demo_bbh_task(tmp_path, bbh_dir):
    work = tmp_path / "demo"
    proc = run_demo(work, "--bbh", str(bbh_dir), "--bbh-task", "boolean_expressions")
    assert "BBH boolean_expressions" in proc.stdout
    check_run(proc, work, 10)
    rows = [json.loads(l) for l in (work / "examples.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and all(r["input"].endswith("\nA:") for r in rows)
