"""The committed BBH results (results/bbh-smollm2, docs/results.md) are reproducible from the
committed cache: scripts/run_bbh.sh, run on a copy of the cache with the library moved to another
folder, recomputes nothing and prints exactly the table that docs/results.md shows. The cache was
made by engine 0.1.0+numerics.0 (docs/results.md says how its numbers compare with today's), so the
run names that engine as reusable; any other changed setting would still recompute."""
import json
import os
import shutil
import subprocess

import pytest
from pathlib import Path

from conftest import ROOT, lorahub_bin

RESULTS = ROOT / "results" / "bbh-smollm2"
CACHE_ENGINE = "0.1.0+numerics.0"  # the engine version the committed cache entries name


def test_committed_cache_reproduces_the_docs_table(bbh_dir, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(RESULTS, out)
    library = tmp_path / "library"
    shutil.copytree(ROOT / "library" / "smollm2", library)
    env = dict(os.environ, OUT=str(out), LIBRARY=str(library), LORAHUB_BIN=lorahub_bin(),
               BBH_DIR=str(bbh_dir), THREADS="2")
    # A cache miss means hours of recomputing: stop at the first one and say which. stdout goes
    # to a file, so that only stderr is read while the run goes on (two pipes could deadlock).
    printed = tmp_path / "stdout.md"
    with printed.open("w") as stdout_file:
        proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "run_bbh.sh"),
                                 "--reuse-cached-engine", CACHE_ENGINE], env=env,
                                stdout=stdout_file, stderr=subprocess.PIPE, text=True)
    stderr = []
    for line in proc.stderr:
        stderr.append(line)
        if "recomputing" in line or "learn (" in line or "generate " in line:
            proc.kill()
            proc.wait()
            pytest.fail(f"the committed cache missed: {line.strip()}")
    assert proc.wait(timeout=120) == 0, "".join(stderr)[-2000:]
    stdout = printed.read_text()
    assert sorted(os.listdir(out / "cache")) == sorted(os.listdir(RESULTS / "cache"))

    table = (out / "results.md").read_text()
    assert table == (RESULTS / "results.md").read_text() == stdout
    assert table.count("\n| ") >= 20 + 1 + 6  # 20 tasks and the average, 6 methods
    docs = (ROOT / "docs" / "results.md").read_text()
    assert table.strip() in docs, "docs/results.md does not show the table the cache makes"
    # The same summary, except for the engine that rebuilt it (the cache names who computed).
    rebuilt, committed = (json.loads((d / "results.json").read_text()) for d in (out, RESULTS))
    assert rebuilt["reused_engines"] == committed["reused_engines"] == [CACHE_ENGINE]
    for summary in (rebuilt, committed):
        del summary["settings"]["engine"]
    assert rebuilt == committed
