"""`lorahub bbh` end to end on a tiny random T5 with PEFT-made modules: two tasks, two seeds,
a few test examples, every method (zero-shot, 5-shot ICL, LoraHub COBYLA and CMA-ES, uniform,
best single); the table and JSON agree, the split is the one DESIGN §1 describes, each method
does what it says (weights, prompts, module choice), and a second run is served from the cache
(resumable) with identical results."""
import hashlib
import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "parity"))

from conftest import assert_clean_error, run_lorahub  # noqa: E402
from lorahub_tiny import make_modules  # noqa: E402
from t5_tiny import bbh_prompt, hf_tokenizer, make_t5, train_spm  # noqa: E402

TASKS = ["boolean_expressions", "navigate"]


@pytest.fixture(scope="module")
def setup(bbh_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("bbh")
    model = make_t5("v1.0", train_spm(bbh_dir, root), root / "t5")
    modules = make_modules(model, root, 3, seed=1)
    pool = root / "pool.txt"
    pool.write_text("".join(f"{m.name}\n" for m in modules))  # relative to the list file
    return root, model, pool


METHODS = ["zero-shot", "icl", "lorahub-cobyla", "lorahub-cmaes", "uniform", "best-single"]


def run_bbh(setup, bbh_dir, out, *extra):
    root, model, pool = setup
    return run_lorahub("bbh", "--model", model, "--lora-list", pool, "--data-dir", bbh_dir,
                       "--tasks", ",".join(TASKS), "--seeds", "1-2", "--sample", 2, "--steps", 3,
                       "--max-test", 4, "--max-new-tokens", 4, "--out", out, *extra)


def check_method(name, m, seeds):
    runs = m["runs"]
    accs = [r["accuracy"] for r in runs]
    assert len(runs) == (2 if name in ("lorahub-cobyla", "lorahub-cmaes", "uniform") else 1)
    assert all(0 <= a <= 100 for a in accs)
    assert m["accuracy"] == pytest.approx(sum(accs) / len(accs))
    assert m["best"] == max(accs)
    assert m["input_tokens"] > 0 and m["seconds"] > 0
    if name.startswith("lorahub-") or name == "uniform":
        assert [r["seed"] for r in runs] == seeds
        for r in runs:
            assert len(r["weights"]) == 2 and len(r["modules"]) == 2  # --sample 2 of the 3
    if name == "uniform":
        assert all(w == pytest.approx(0.5) for r in runs for w in r["weights"])
    if name == "best-single":
        losses = runs[0]["few_shot_losses"]
        assert len(losses) == 3  # every pool module scored
        assert Path(runs[0]["module"]).name == f"module_{losses.index(min(losses))}"


def test_bbh_table_json_split_and_resume(setup, bbh_dir, tmp_path):
    out = tmp_path / "res"
    start = time.time()
    first = run_bbh(setup, bbh_dir, out)
    first_seconds = time.time() - start
    results = json.loads((out / "results.json").read_text())
    assert results["methods"] == METHODS
    assert [t["task"] for t in results["tasks"]] == TASKS
    for t in results["tasks"]:
        assert t["test_examples"] == 4
        assert set(t["methods"]) == set(METHODS)
        for name, m in t["methods"].items():
            check_method(name, m, [1, 2])
        # ICL puts the 5 answered examples in the prompt: many more input tokens.
        assert t["methods"]["icl"]["input_tokens"] > 2 * t["methods"]["zero-shot"]["input_tokens"]
    for name in METHODS:
        mean = sum(t["methods"][name]["accuracy"] for t in results["tasks"]) / len(TASKS)
        assert results["average"][name]["accuracy"] == pytest.approx(mean)
    table = (out / "results.md").read_text()
    assert table == first.stdout
    assert all(f"| {t} |" in table for t in TASKS) and "**average**" in table
    assert "ICL 5-shot" in table and "LoraHub CMA-ES best" in table and "| best-single |" in table

    # The test set is the split's: examples 6.. by SHA-256 of the input. The zero-shot prompts'
    # mean token count is that of those 4 examples (and not of the file's examples 6-9).
    tok = hf_tokenizer(setup[1])
    discriminated = False
    for task in TASKS:
        cache = json.loads((out / "cache" / f"{task}.zero-shot.json").read_text())
        assert len(cache["result"]["predictions"]) == 4
        assert cache["settings"]["max_test"] == 4
        examples = json.loads((bbh_dir / "tasks" / f"{task}.json").read_text())["examples"]
        ordered = sorted(examples, key=lambda e: hashlib.sha256(e["input"].encode()).hexdigest())
        description = (bbh_dir / "task-prompts" / f"{task}.txt").read_text().splitlines()[2]

        def mean_tokens(rows):
            return sum(len(tok(bbh_prompt(description, e["input"])).input_ids) for e in rows) / 4

        assert cache["result"]["input_tokens"] == pytest.approx(mean_tokens(ordered[5:9]))
        discriminated |= mean_tokens(ordered[5:9]) != pytest.approx(mean_tokens(examples[5:9]))
    assert discriminated, "the file order gives the same token counts: pick other tasks"

    # Resume: everything comes from the cache, same table, much faster.
    start = time.time()
    second = run_bbh(setup, bbh_dir, out)
    assert second.stdout == first.stdout
    assert time.time() - start < first_seconds
    assert "recomputing" not in second.stderr


def test_bbh_methods_subset(setup, bbh_dir, tmp_path):
    out = tmp_path / "sub"
    run_bbh(setup, bbh_dir, out, "--methods", "uniform,zero-shot")
    results = json.loads((out / "results.json").read_text())
    assert results["methods"] == ["zero-shot", "uniform"]  # the table's column order
    assert sorted(p.name for p in (out / "cache").iterdir()) == sorted(
        [f"{t}.zero-shot.json" for t in TASKS] +
        [f"{t}.uniform.seed{s}.json" for t in TASKS for s in (1, 2)])


def test_cache_follows_content_not_paths(setup, bbh_dir, tmp_path):
    """The cache names the model and modules by content hash: moved to another folder (another
    checkout, another machine) they reuse every result; changed in place they recompute."""
    import shutil

    root, model, pool = setup
    out = tmp_path / "out"
    args = ("--data-dir", bbh_dir, "--tasks", TASKS[0], "--methods", "zero-shot,uniform",
            "--seeds", "1", "--sample", 2, "--max-test", 2, "--max-new-tokens", 2, "--out", out)
    first = run_lorahub("bbh", "--model", model, "--lora-list", pool, *args)
    settings = json.loads((out / "results.json").read_text())["settings"]
    assert settings["model"]["name"] == Path(model).name
    assert all(len(m["sha256"]) == 64 for m in settings["pool"] + [settings["model"]])
    assert str(root) not in json.dumps(settings)  # no path in the cache key
    # The search's code constants are in the key too: changing one recomputes, never serves stale.
    assert settings["optimizer"] == {"lower": -1.5, "upper": 1.5, "initial_step": 0.5,
                                     "cmaes_population": 4 + 2}  # nevergrad: 4 + floor(3 ln 2)
    assert settings["l1"] == 0.05

    moved = tmp_path / "elsewhere"
    shutil.copytree(model, moved / Path(model).name)
    names = pool.read_text().split()
    for name in names:
        shutil.copytree(pool.parent / name, moved / "modules" / name)
    moved_pool = moved / "pool.txt"
    moved_pool.write_text("".join(f"modules/{n}\n" for n in names))
    second = run_lorahub("bbh", "--model", moved / Path(model).name, "--lora-list", moved_pool,
                         *args)
    assert "recomputing" not in second.stderr and second.stdout == first.stdout

    config = moved / "modules" / names[0] / "adapter_config.json"
    config.write_text(config.read_text() + "\n")  # same meaning, different bytes
    third = run_lorahub("bbh", "--model", moved / Path(model).name, "--lora-list", moved_pool,
                        *args)
    assert third.stderr.count("made with other settings (pool); recomputing") == 2
    # The message names what changed: long values by key, short ones with both values.
    longer = [3 if a == 2 and args[i - 1] == "--max-new-tokens" else a for i, a in enumerate(args)]
    fourth = run_lorahub("bbh", "--model", moved / Path(model).name, "--lora-list", moved_pool,
                         *longer)
    assert fourth.stderr.count("(max_new_tokens: 2 -> 3); recomputing") == 2


@pytest.mark.malformed
def test_bbh_unknown_method_is_a_clean_error(setup, bbh_dir, tmp_path):
    proc = run_lorahub("bbh", "--model", setup[1], "--lora-list", setup[2], "--data-dir", bbh_dir,
                       "--methods", "zero-shot,magic", "--out", tmp_path / "x", check=False)
    assert_clean_error(proc, "magic")


def symlinked_pool(setup, folder: Path, size: int) -> tuple[Path, list[str]]:
    """A pool of `size` distinct module paths (symlinks to the 3 tiny modules), so that which
    entries a draw picks is visible in the results."""
    root, _, _ = setup
    folder.mkdir()
    names = [f"m{i:03d}" for i in range(size)]
    for i, name in enumerate(names):
        (folder / name).symlink_to(root / f"module_{i % 3}", target_is_directory=True)
    pool = folder / "pool.txt"
    pool.write_text("".join(f"{n}\n" for n in names))
    return pool, names


@pytest.mark.parametrize("pool_size,seeds", [(26, [1, 2, 3, 4, 5]), (200, [1, 42])])
def test_python_sampler_draws_what_reproduce_bbh_draws(setup, bbh_dir, tmp_path, pool_size,
                                                       seeds):
    """--sampler python picks, per seed, the modules of the reference's reproduce_bbh.py:
    random.seed(seed); random.sample(pool, 20), in the same order. 26 modules take CPython's
    shrinking-pool branch, 200 (the paper's library size) its rejection-set branch."""
    import random

    pool, names = symlinked_pool(setup, tmp_path / "pool", pool_size)
    out = tmp_path / "out"
    run_lorahub("bbh", "--model", setup[1], "--lora-list", pool, "--data-dir", bbh_dir,
                "--tasks", "navigate", "--methods", "uniform", "--sampler", "python",
                "--seeds", ",".join(map(str, seeds)), "--sample", 20, "--max-test", 1,
                "--max-new-tokens", 1, "--out", out)
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["sampler"] == "python"
    runs = results["tasks"][0]["methods"]["uniform"]["runs"]
    for seed, r in zip(seeds, runs):
        random.seed(seed)
        assert [Path(m).name for m in r["modules"]] == random.sample(names, 20), seed


def test_learn_sampler_python_matches_cpython_and_differs_from_default(setup, bbh_dir,
                                                                      tmp_path):
    import random

    from lorahub_tiny import few_shot_examples

    pool, names = symlinked_pool(setup, tmp_path / "pool", 26)
    examples = tmp_path / "examples.jsonl"
    few_shot_examples(bbh_dir, examples)
    drawn = {}
    for sampler in ("python", "fisher-yates"):
        out = tmp_path / sampler
        run_lorahub("learn", "--model", setup[1], "--lora-list", pool, "--examples", examples,
                    "--sample", 5, "--seed", 7, "--sampler", sampler, "--steps", 1, "--out", out)
        weights = json.loads((out / "weights.json").read_text())
        drawn[sampler] = [Path(m).name for m in weights["modules"]]
    random.seed(7)
    assert drawn["python"] == random.sample(names, 5)
    assert drawn["fisher-yates"] != drawn["python"]


@pytest.mark.malformed
def test_unknown_sampler_is_a_clean_error(setup, bbh_dir, tmp_path):
    proc = run_lorahub("bbh", "--model", setup[1], "--lora-list", setup[2], "--data-dir", bbh_dir,
                       "--sampler", "numpy", "--out", tmp_path / "x", check=False)
    assert_clean_error(proc, "sampler")


def test_bbh_arrow_and_select(setup, bbh_dir, tmp_path):
    """arrow routes over each seed's drawn modules (top_k = min(3, drawn)); --select loss-rank:1
    keeps, of each seed's drawn modules, the one with the lowest few-shot loss alone (the loss
    best-single ranks the pool by)."""
    plain = tmp_path / "plain"
    run_bbh(setup, bbh_dir, plain, "--methods", "uniform,best-single,arrow")
    selected = tmp_path / "selected"
    run_bbh(setup, bbh_dir, selected, "--methods", "uniform,arrow", "--select", "loss-rank:1")
    for a, b in zip(json.loads((plain / "results.json").read_text())["tasks"],
                    json.loads((selected / "results.json").read_text())["tasks"]):
        losses = a["methods"]["best-single"]["runs"][0]["few_shot_losses"]
        for drawn, arrow, kept, kept_arrow in zip(a["methods"]["uniform"]["runs"],
                                                  a["methods"]["arrow"]["runs"],
                                                  b["methods"]["uniform"]["runs"],
                                                  b["methods"]["arrow"]["runs"]):
            assert arrow["modules"] == drawn["modules"] and arrow["top_k"] == 2
            assert 0 <= arrow["accuracy"] <= 100
            best = min(drawn["modules"], key=lambda m: losses[int(Path(m).name.split("_")[1])])
            assert kept["modules"] == [best] and kept["weights"] == [1.0]
            assert kept_arrow["modules"] == [best] and kept_arrow["top_k"] == 1
    assert "Arrow top-3 avg (2 seeds)" in (plain / "results.md").read_text()


@pytest.mark.malformed
def test_bbh_bad_select(setup, bbh_dir, tmp_path):
    root, model, pool = setup
    res = run_lorahub("bbh", "--model", model, "--lora-list", pool, "--data-dir", bbh_dir,
                      "--tasks", TASKS[0], "--select", "best:2", "--out", tmp_path / "x",
                      check=False)
    assert_clean_error(res, "--select")
