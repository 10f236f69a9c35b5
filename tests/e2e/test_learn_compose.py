"""The LoraHub search over a non-linear composition (`learn --compose svd`, the PEFT `svd`
combination recomputed for every evaluation) solves a planted problem: a tiny random T5, three
modules, and few-shot targets that are what the model says with module 1 alone, so the loss is
lowest at w = e₁. Also `objective --compose` agrees with `learn` and the time split is reported;
and `--select loss-rank:1` / `retrieval:1` keep the planted module of the pool."""
import json
import sys

import pytest

from conftest import ROOT, assert_clean_error, run_lorahub

sys.path.insert(0, str(ROOT / "tests" / "parity"))
from lorahub_tiny import make_modules  # noqa: E402
from t5_tiny import bbh_prompt, bbh_prompts, bbh_tasks, make_t5, train_spm, write_jsonl  # noqa: E402

PLANTED = 1


@pytest.fixture(scope="module")
def planted(bbh_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    model_dir = make_t5("v1.1", train_spm(bbh_dir, root), root / "t5")
    modules = make_modules(model_dir, root, 3, scale=0.5)
    inputs = [p for p, _ in bbh_prompts(bbh_dir, per_task=1)[:4]]
    write_jsonl(root / "inputs.jsonl", [{"input": i} for i in inputs])
    said = run_lorahub("generate", "--model", model_dir, "--lora", modules[PLANTED], "--data",
                       root / "inputs.jsonl", "--max-new-tokens", 6, "--json").json()
    rows = [{"input": i, "output": o} for i, o in zip(inputs, said["predictions"])]
    write_jsonl(root / "examples.jsonl", rows)
    return {"root": root, "model": model_dir, "modules": modules,
            "examples": root / "examples.jsonl"}


def objective(fx, weights, *compose):
    w = ",".join(repr(float(x)) for x in weights)
    return run_lorahub("objective", "--model", fx["model"], "--lora", *fx["modules"],
                       "--examples", fx["examples"], f"--weights={w}", *compose).json()


def test_search_over_svd_composition_finds_the_planted_module(planted, tmp_path):
    out = tmp_path / "learned"
    run_lorahub("learn", "--model", planted["model"], "--lora", *planted["modules"],
                "--examples", planted["examples"], "--compose", "svd", "--optimizer", "cmaes",
                "--steps", 60, "--seed", 3, "--out", out, "--quiet")
    result = json.loads((out / "weights.json").read_text())
    w = result["weights"]
    print("learned", w, result["objective"])
    assert result["compose"] == "svd"
    assert max(range(3), key=lambda i: abs(w[i])) == PLANTED
    assert w[PLANTED] > 0.5
    assert result["compose_seconds"] > 0 and result["forward_seconds"] > 0
    # The learned weights beat every single module and the base model on the objective.
    for i in range(3):
        e = [1.0 if j == i else 0.0 for j in range(3)]
        if i != PLANTED:
            assert result["objective"] < objective(planted, e, "--compose", "svd")["objective"]
    assert result["objective"] < objective(planted, [0, 0, 0], "--compose", "svd")["objective"]
    again = objective(planted, w, "--compose", "svd")["objective"]
    assert again == pytest.approx(result["objective"], rel=1e-6)
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == config["lora_alpha"] == 4  # PEFT's svd result: rank of the modules


def write_module_examples(bbh_dir, planted):
    """Module 1's own examples come from the few-shot examples' tasks, the others' from other
    tasks: the retrieval embedding should find module 1."""
    tasks = list(bbh_tasks(bbh_dir))
    groups = {0: tasks[8:12], PLANTED: tasks[0:4], 2: tasks[14:18]}
    for i, group in groups.items():
        rows = [{"input": bbh_prompt(description, e["input"])}
                for _, description, examples in group
                for e in sorted(examples, key=lambda e: e["input"])[:3]]
        write_jsonl(planted["modules"][i] / "examples.jsonl", rows)


@pytest.mark.parametrize("rule", ["loss-rank", "retrieval"])
def test_select_keeps_the_planted_module(planted, bbh_dir, rule, tmp_path):
    write_module_examples(bbh_dir, planted)
    out = tmp_path / "learned"
    run_lorahub("learn", "--model", planted["model"], "--lora", *planted["modules"],
                "--examples", planted["examples"], "--select", f"{rule}:1", "--steps", 3,
                "--out", out, "--quiet")
    result = json.loads((out / "weights.json").read_text())
    print(result["selection"])
    assert result["modules"] == [str(planted["modules"][PLANTED])]
    assert result["selection"]["rule"] == rule
    assert result["selection"]["kept"] == [str(planted["modules"][PLANTED])]
    scores = result["selection"]["scores"]
    assert len(scores) == 3


@pytest.mark.malformed
def test_select_errors(planted, tmp_path):
    base = ["learn", "--model", planted["model"], "--lora", *planted["modules"], "--examples",
            planted["examples"], "--out", tmp_path / "x", "--quiet"]
    assert_clean_error(run_lorahub(*base, "--select", "best:2", check=False), "--select")
    assert_clean_error(run_lorahub(*base, "--select", "loss-rank:0", check=False), "K must be")
    for m in planted["modules"]:
        (m / "examples.jsonl").unlink(missing_ok=True)
    assert_clean_error(run_lorahub(*base, "--select", "retrieval:1", check=False),
                       "examples.jsonl", str(planted["modules"][0]))
    assert_clean_error(run_lorahub(*base, "--compose", "ties", check=False), "needs a density")


def test_learn_chat_wraps_the_inputs_as_generate_does(tmp_path):
    """learn / objective --chat score each example with its input as a chat-template user turn
    (as generate --chat prompts): the same objective as plain inputs wrapped beforehand with
    the template (`lorahub tokenize --render-chat`), and not the plain one (the library's
    modules were trained on plain prompts; --chat is off by default)."""
    from conftest import ROOT, smollm2_gguf

    gguf = smollm2_gguf()
    module = ROOT / "library" / "smollm2" / "boolean_eval"
    inputs = ["Decide.\n\nQ: True and False\nA:", "Decide.\n\nQ: not False\nA:"]
    rendered = run_lorahub("tokenize", "--model", gguf, "--render-chat",
                           input="".join(json.dumps(i) + "\n" for i in inputs)).stdout.split("\n")
    wrapped = [json.loads(line) for line in rendered if line]
    assert all(w != i and i in w for w, i in zip(wrapped, inputs))

    def objective(rows, *extra):
        path = tmp_path / f"rows{len(extra)}.jsonl"
        path.write_text("".join(json.dumps({"input": i, "output": o}) + "\n" for i, o in rows))
        return run_lorahub("objective", "--model", gguf, "--lora", module, "--examples", path,
                           "--weights", "1", *extra).json()["objective"]

    outputs = ["False", "True"]
    chat = objective(zip(inputs, outputs), "--chat")
    assert chat == pytest.approx(objective(zip(wrapped, outputs)), rel=1e-6)
    assert chat != pytest.approx(objective(zip(inputs, outputs)), rel=1e-3)
    out = tmp_path / "learned"
    run_lorahub("learn", "--model", gguf, "--lora", module, "--examples", tmp_path / "rows1.jsonl",
                "--chat", "--steps", 1, "--out", out)
    assert json.loads((out / "weights.json").read_text())["chat"] is True
