"""The committed BBH results (results/bbh-smollm2, docs/results.md) are reproducible from the
committed cache: scripts/run_bbh.sh, run on a copy of the cache with the library moved to another
folder, recomputes nothing and prints exactly the table that docs/results.md shows."""
import json
import os
import shutil
import subprocess
from pathlib import Path

from conftest import ROOT, lorahub_bin

RESULTS = ROOT / "results" / "bbh-smollm2"


def test_committed_cache_reproduces_the_docs_table(bbh_dir, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(RESULTS, out)
    library = tmp_path / "library"
    shutil.copytree(ROOT / "library" / "smollm2", library)
    env = dict(os.environ, OUT=str(out), LIBRARY=str(library), LORAHUB_BIN=lorahub_bin(),
               BBH_DIR=str(bbh_dir), THREADS="2")
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "run_bbh.sh")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "recomputing" not in proc.stderr and "learn (" not in proc.stderr
    assert sorted(os.listdir(out / "cache")) == sorted(os.listdir(RESULTS / "cache"))

    table = (out / "results.md").read_text()
    assert table == (RESULTS / "results.md").read_text() == proc.stdout
    assert table.count("\n| ") >= 20 + 1 + 6  # 20 tasks and the average, 6 methods
    docs = (ROOT / "docs" / "results.md").read_text()
    assert table.strip() in docs, "docs/results.md does not show the table the cache makes"
    assert json.loads((out / "results.json").read_text()) == json.loads(
        (RESULTS / "results.json").read_text())
