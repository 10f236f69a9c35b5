"""`lorahub bbh` end to end on a tiny random T5 with PEFT-made modules: two tasks, two seeds,
a few test examples, every method (zero-shot, 5-shot ICL, LoraHub COBYLA and CMA-ES, uniform,
best single); the table and JSON agree, the split is the one DESIGN §1 describes, each method
does what it says (weights, prompts, module choice), and a second run is served from the cache
(resumable) with identical results. Then --metric both: option-likelihood scoring against
transformers and PEFT, free-form tasks, and the few-shot-majority floor."""
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

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


def run_bbh(setup, bbh_dir, out, *extra, check=True):
    root, model, pool = setup
    return run_lorahub("bbh", "--model", model, "--lora-list", pool, "--data-dir", bbh_dir,
                       "--tasks", ",".join(TASKS), "--seeds", "1-2", "--sample", 2, "--steps", 3,
                       "--max-test", 4, "--max-new-tokens", 4, "--out", out, *extra,
                       check=check)


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


# ------------------------------------------------- option-likelihood and the majority floor

OPTION_TASKS = ["navigate", "temporal_sequences", "dyck_languages"]  # 2 options, 4, free-form (59)
OPTION_MAX_TEST = 3


@pytest.fixture(scope="module")
def options_run(setup, bbh_dir, tmp_path_factory):
    """--metric both on the tiny T5 and its modules: zero-shot and best-single on 3 tasks."""
    root, model, pool = setup
    out = tmp_path_factory.mktemp("bbh_options") / "out"
    proc = run_lorahub("bbh", "--model", model, "--lora-list", pool, "--data-dir", bbh_dir,
                       "--tasks", ",".join(OPTION_TASKS), "--methods", "zero-shot,best-single",
                       "--metric", "both", "--max-test", OPTION_MAX_TEST, "--max-new-tokens", 2,
                       "--out", out)
    return root, model, out, proc


def option_split(bbh_dir, task):
    examples = json.loads((bbh_dir / "tasks" / f"{task}.json").read_text())["examples"]
    description = (bbh_dir / "task-prompts" / f"{task}.txt").read_text().splitlines()[2]
    ordered = sorted(examples, key=lambda e: hashlib.sha256(e["input"].encode()).hexdigest())
    test = ordered[5:5 + OPTION_MAX_TEST]
    return ordered, [(bbh_prompt(description, e["input"]), e["target"]) for e in test]


def log_likelihood(model, tok, prompt, option):
    """log P(option | prompt) in transformers: Σ log softmax over the option's tokens and EOS."""
    labels = torch.tensor([tok(option).input_ids])  # T5Tokenizer appends </s>
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([tok(prompt).input_ids]), labels=labels).logits[0]
    return float(torch.log_softmax(logits.double(), -1).gather(1, labels.T).sum())


def lm_eval_choice(lls, options, normalized):
    """lm-evaluation-harness: np.argmax(lls) for acc, np.argmax(lls / len(choice)) for acc_norm."""
    lengths = np.array([float(len(o)) for o in options]) if normalized else 1.0
    return int(np.argmax(np.array(lls) / lengths))


def check_scores(result, model, tok, rows, options):
    expected = [[log_likelihood(model, tok, p, o) for o in options] for p, _ in rows]
    got = result["option_log_likelihoods"]
    assert np.abs(np.array(got) - np.array(expected)).max() < 1e-4, (got, expected)
    acc = [options[lm_eval_choice(e, options, False)] for e in expected]
    norm = [options[lm_eval_choice(e, options, True)] for e in expected]
    assert result["option_choices"] == acc
    targets = [t for _, t in rows]
    assert result["option_accuracy"] == pytest.approx(100 * np.mean([a == t for a, t in zip(acc, targets)]))
    assert result["option_accuracy_norm"] == pytest.approx(
        100 * np.mean([a == t for a, t in zip(norm, targets)]))
    return expected


def test_option_likelihood_matches_transformers_and_peft(options_run, bbh_dir):
    """Rank classification (eval/option_scoring.h) against transformers, and PEFT with the
    module best-single picks, computing log P(option | prompt) directly; choices by lm-eval's
    rules (acc, acc_norm)."""
    from peft import PeftModel

    from t5_tiny import load_hf

    root, model_dir, out, _ = options_run
    tok = hf_tokenizer(model_dir)
    base = load_hf(model_dir)
    summary = json.loads((out / "results.json").read_text())
    assert summary["settings"]["metric"] == "both"
    spread = set()
    for task in OPTION_TASKS[:2]:
        ordered, rows = option_split(bbh_dir, task)
        options = sorted({e["target"] for e in ordered})
        cache = out / "cache"
        zero = json.loads((cache / f"{task}.zero-shot.json").read_text())["result"]
        assert zero["options"] == options
        assert len(zero["predictions"]) == OPTION_MAX_TEST  # both metrics in one run
        spread |= {tuple(np.argsort(e)) for e in check_scores(zero, base, tok, rows, options)}
        single = json.loads((cache / f"{task}.best-single.json").read_text())["result"]
        with_module = PeftModel.from_pretrained(load_hf(model_dir),
                                               root / Path(single["module"]).name).eval()
        adapted = check_scores(single, with_module, tok, rows, options)
        assert np.abs(np.array(adapted) - np.array(single["option_log_likelihoods"])).max() < 1e-4
        # The module counts: with it the log-likelihoods are not the base model's.
        assert np.abs(np.array(adapted) - np.array(zero["option_log_likelihoods"])).max() > 1e-2
    assert len(spread) > 1, "every question ranks the options alike: the check cannot tell them apart"


def test_free_form_task_and_floor_in_the_tables(options_run, bbh_dir):
    """A free-form task has no options (null option accuracy, left out of the option table); the
    few-shot majority floor (ties: the mean of the tied answers) is in the summary and tables."""
    _, _, out, proc = options_run
    summary = json.loads((out / "results.json").read_text())
    by_task = {t["task"]: t for t in summary["tasks"]}
    dyck = by_task["dyck_languages"]
    assert dyck["answer_options"] == []
    assert dyck["methods"]["zero-shot"]["option_accuracy"] is None
    assert dyck["methods"]["zero-shot"]["accuracy"] is not None
    for name, t in by_task.items():
        ordered, rows = option_split(bbh_dir, name)
        def normalize(answer):
            return answer.strip().lower().replace(".", "")

        few = [normalize(e["target"]) for e in ordered[:5]]
        top = max(few.count(a) for a in few)
        tied = sorted({a for a in few if few.count(a) == top})
        test = [normalize(target) for _, target in rows]
        floor = np.mean([test.count(a) for a in tied]) * 100 / OPTION_MAX_TEST
        assert t["few_shot_majority"] == {"answers": tied, "accuracy": pytest.approx(floor)}
    table = proc.stdout
    exact, options = table.split("Option-likelihood accuracy")
    assert "| task | few-shot majority (floor) |" in exact and "| dyck_languages |" in exact
    assert "| navigate |" in options and "| dyck_languages |" not in options
    mean_floor = np.mean([by_task[t]["few_shot_majority"]["accuracy"] for t in OPTION_TASKS[:2]])
    assert f"| **average** | **{mean_floor:.1f}** |" in options  # over the tasks shown
    assert summary["average"]["zero-shot"]["option_accuracy"] == pytest.approx(
        np.mean([by_task[t]["methods"]["zero-shot"]["option_accuracy"] for t in OPTION_TASKS[:2]]))


@pytest.mark.malformed
def test_unknown_metric_is_a_clean_error(setup, bbh_dir, tmp_path):
    _, model_dir, pool = setup
    proc = run_lorahub("bbh", "--model", model_dir, "--lora-list", pool,
                       "--data-dir", bbh_dir, "--metric", "acc_norm", "--out", tmp_path / "x",
                       check=False)
    assert_clean_error(proc, "--metric", "acc_norm")


def test_option_likelihood_alone_generates_nothing(setup, bbh_dir, tmp_path):
    """--metric option-likelihood scores without generating: no exact-match table or answers,
    and a cache key of its own (the default metric's results are not reused for it)."""
    root, model, pool = setup
    out = tmp_path / "opt"
    args = ("--model", model, "--lora-list", pool, "--data-dir", bbh_dir, "--tasks", "navigate",
            "--methods", "zero-shot", "--max-test", 2, "--out", out)
    run_lorahub("bbh", *args)
    proc = run_lorahub("bbh", *args, "--metric", "option-likelihood")
    assert "metric: unset -> \"option-likelihood\"); recomputing" in proc.stderr  # not reused
    result = json.loads((out / "cache" / "navigate.zero-shot.json").read_text())["result"]
    assert "predictions" not in result and "accuracy" not in result
    assert len(result["option_choices"]) == 2
    assert proc.stdout.startswith("Option-likelihood accuracy")
    summary = json.loads((out / "results.json").read_text())["tasks"][0]["methods"]["zero-shot"]
    assert set(summary) >= {"option_accuracy", "option_accuracy_best", "option_accuracy_norm"}
    assert "accuracy" not in summary


def test_bbh_learned_compositions_cached_apart(setup, bbh_dir, tmp_path):
    """lorahub-<type>: LoraHub's COBYLA search over w with a PEFT combination type composing the
    modules. Each runs per seed on the seed's drawn modules, searches another objective than
    lorahub-cobyla (same draw and start, other losses away from w = 0), and is cached under a
    key that adds only its combination: lorahub-cobyla's entries keep the key they had before
    these methods existed, a rerun is served from the cache, and a new --density recomputes
    only the methods that drop values."""
    _, model, pool = setup
    out, task = tmp_path / "compose", TASKS[0]
    methods = "lorahub-cobyla,lorahub-linear,lorahub-cat,lorahub-ties,lorahub-dare_ties"

    def bbh(*extra):
        return run_lorahub("bbh", "--model", model, "--lora-list", pool, "--data-dir", bbh_dir,
                           "--tasks", task, "--seeds", "1-2", "--sample", 2, "--steps", 3,
                           "--max-test", 2, "--max-new-tokens", 2, "--methods", methods,
                           "--out", out, *extra)

    first = bbh()
    results = json.loads((out / "results.json").read_text())
    assert results["methods"] == methods.split(",")
    assert "LoraHub ties (COBYLA) avg (2 seeds)" in first.stdout
    cache = out / "cache"

    def entry(name, seed):
        return json.loads((cache / f"{task}.{name}.seed{seed}.json").read_text())

    for name in methods.split(",")[1:]:
        for seed in (1, 2):
            r, base = entry(name, seed)["result"], entry("lorahub-cobyla", seed)["result"]
            assert r["modules"] == base["modules"] and len(r["weights"]) == 2
            assert r["compose_seconds"] > 0 and r["forward_seconds"] > 0
            assert len(r["history"]) == 3 and r["history"][0] == pytest.approx(base["history"][0])
            assert r["history"][1:] != pytest.approx(base["history"][1:], rel=1e-6), name
    cobyla = entry("lorahub-cobyla", 1)["settings"]
    assert "combine" not in cobyla and "density" not in json.dumps(cobyla)
    dare = entry("lorahub-dare_ties", 2)["settings"]
    assert dare["combine"] == {"method": "dare_ties", "optimizer": "cobyla", "density": 0.2,
                               "majority_sign": "total", "svd_rank": 0, "seed": 2}
    assert entry("lorahub-cat", 1)["settings"]["combine"]["density"] is None
    assert {k: v for k, v in dare.items() if k != "combine"} == cobyla

    again = bbh()
    assert again.stdout == first.stdout and "recomputing" not in again.stderr

    denser = bbh("--density", "0.7")
    redone = [line for line in denser.stderr.splitlines() if "recomputing" in line]
    assert len(redone) == 2 * 2  # ties and dare_ties, 2 seeds
    assert all(("lorahub-ties." in line or "lorahub-dare_ties." in line) and "(combine)" in line
               for line in redone), redone


@pytest.mark.malformed
def test_bbh_bad_density(setup, bbh_dir, tmp_path):
    proc = run_bbh(setup, bbh_dir, tmp_path / "bad", "--methods", "lorahub-ties",
                   "--density", "1.5", check=False)
    assert_clean_error(proc, "density")
