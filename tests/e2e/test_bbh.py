"""`lorahub bbh` end to end on a tiny random T5 with PEFT-made modules: two tasks, two seeds,
a few test examples; the table and JSON agree, the split is the one DESIGN §1 describes, and a
second run is served from the cache (resumable) with identical results."""
import hashlib
import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "parity"))

from conftest import run_lorahub  # noqa: E402
from lorahub_tiny import make_modules  # noqa: E402
from t5_tiny import make_t5, train_spm  # noqa: E402

TASKS = ["boolean_expressions", "navigate"]


@pytest.fixture(scope="module")
def setup(bbh_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("bbh")
    model = make_t5("v1.0", train_spm(bbh_dir, root), root / "t5")
    modules = make_modules(model, root, 3, seed=1)
    pool = root / "pool.txt"
    pool.write_text("".join(f"{m.name}\n" for m in modules))  # relative to the list file
    return root, model, pool


def run_bbh(setup, bbh_dir, out):
    root, model, pool = setup
    return run_lorahub("bbh", "--model", model, "--lora-list", pool, "--data-dir", bbh_dir,
                       "--tasks", ",".join(TASKS), "--seeds", "1-2", "--sample", 2, "--steps", 3,
                       "--max-test", 4, "--max-new-tokens", 4, "--out", out)


def test_bbh_table_json_split_and_resume(setup, bbh_dir, tmp_path):
    out = tmp_path / "res"
    start = time.time()
    first = run_bbh(setup, bbh_dir, out)
    first_seconds = time.time() - start
    results = json.loads((out / "results.json").read_text())
    assert [t["task"] for t in results["tasks"]] == TASKS
    for t in results["tasks"]:
        assert t["test_examples"] == 4
        accs = [s["accuracy"] for s in t["seeds"]]
        assert len(accs) == 2 and all(0 <= a <= 100 for a in accs)
        assert t["lorahub_average"] == pytest.approx(sum(accs) / 2)
        assert t["lorahub_best"] == max(accs)
        for s in t["seeds"]:
            assert len(s["weights"]) == 2  # --sample 2 of the 3 modules
    mean = sum(t["zero_shot"] for t in results["tasks"]) / len(TASKS)
    assert results["average"]["zero_shot"] == pytest.approx(mean)
    table = (out / "results.md").read_text()
    assert table == first.stdout
    assert all(f"| {t} |" in table for t in TASKS) and "**average**" in table

    # The test set is the split's: examples 6.. by SHA-256 of the input.
    cache = json.loads((out / "cache" / f"{TASKS[0]}.zero-shot.json").read_text())
    examples = json.loads((bbh_dir / "tasks" / f"{TASKS[0]}.json").read_text())["examples"]
    ordered = sorted(examples, key=lambda e: hashlib.sha256(e["input"].encode()).hexdigest())
    assert len(cache["result"]["predictions"]) == 4
    assert cache["settings"]["max_test"] == 4
    assert len(ordered) - 5 >= 4

    # Resume: everything comes from the cache, same table, much faster.
    start = time.time()
    second = run_bbh(setup, bbh_dir, out)
    assert second.stdout == first.stdout
    assert time.time() - start < first_seconds
    assert "recomputing" not in second.stderr
