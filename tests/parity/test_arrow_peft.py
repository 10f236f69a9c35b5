"""Arrow routing (`--arrow TOP_K[,TEMPERATURE]`, lora/arrow.h) against PEFT 0.21's own
create_arrow_model / ArrowConfig on a tiny random Llama (test_llama.tiny_model) with four task
modules and two general ones made by PEFT (random, nonzero A and B):

* label-position logits within 1e-4 of PEFT's, with and without GenKnowSub, for two top_k and
  temperatures; greedy generation identical (routing per token also in the decode steps);
* the routing matters: top_k 1 and top_k 2 differ, and GenKnowSub changes the logits (so the
  checks above cannot pass by ignoring the options);
* bad options fail cleanly.

PEFT finds each prototype by 15 power iterations from a random start, we by an exact SVD: the
modules' A get a dominant first row, so the top singular value stands clear of the next (ratio
about 1/4, error after 15 iterations ~1e-18) and both find the same vector."""
import numpy as np
import pytest
import torch

from conftest import assert_clean_error, run_lorahub
from test_llama import (EOS, bbh_rows, hf_greedy, hf_label_logits, our_greedy,  # noqa: F401
                        our_label_logits, smollm2_hf, tiny_model)

TARGETS = ["q_proj", "v_proj", "o_proj", "up_proj", "down_proj"]


def make_modules(model_dir, out_dirs, seeds, rank=4):
    """PEFT modules on one loaded base, one per (out_dir, seed): random A and B."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=rank, lora_alpha=8, target_modules=TARGETS,
                                            lora_dropout=0.0, task_type="CAUSAL_LM"))
    for out_dir, seed in zip(out_dirs, seeds):
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_" in name:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
                    if "lora_A" in name:
                        p[0].mul_(4.0)  # a clear top singular value (see the module docstring)
        model.save_pretrained(out_dir)
    return out_dirs


@pytest.fixture(scope="module")
def fx(smollm2_hf, bbh_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("arrow")
    model = tiny_model("llama", root / "llama", smollm2_hf[0])
    names = [f"task{i}" for i in range(4)] + [f"general{i}" for i in range(2)]
    made = make_modules(root / "llama", [root / n for n in names], range(10, 16))
    tasks, general = made[:4], made[4:]
    rows = [dict(r, input=r["input"][-120:]) for r in bbh_rows(bbh_dir, 3)]
    return {"root": root, "dir": root / "llama", "tasks": tasks, "general": general,
            "rows": rows, "tok": smollm2_hf[2], "state": model.state_dict()}


def peft_arrow(fx, top_k, temperature, gks):
    from peft import ArrowConfig, create_arrow_model
    from transformers import AutoModelForCausalLM
    base = AutoModelForCausalLM.from_pretrained(fx["dir"], dtype=torch.float32)
    config = ArrowConfig(top_k=top_k, router_temperature=temperature, use_gks=gks, rng_seed=0)
    return create_arrow_model(base, [str(p) for p in fx["tasks"]], config,
                              general_adapter_paths=[str(p) for p in fx["general"]] if gks else None
                              ).eval()


def arrow_args(fx, top_k, temperature, gks):
    args = ["--lora", *fx["tasks"], "--arrow", f"{top_k},{temperature}"]
    return args + (["--gks-lora", *fx["general"]] if gks else [])


def ours(fx, tmp_path, top_k, temperature, gks):
    return our_label_logits(fx["dir"], fx["rows"], tmp_path, "--batch-size", 2,
                            *arrow_args(fx, top_k, temperature, gks))


def max_diff(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


@pytest.mark.parametrize("top_k,temperature,gks", [(2, 1.0, False), (3, 0.5, True)])
def test_arrow_logits_match_peft(fx, tmp_path, top_k, temperature, gks):
    expected = hf_label_logits(peft_arrow(fx, top_k, temperature, gks), fx["tok"], fx["rows"])
    got = ours(fx, tmp_path, top_k, temperature, gks)
    assert max_diff(got, expected) < 1e-4


def test_arrow_greedy_matches_peft(fx, tmp_path):
    prompts = [r["input"] for r in fx["rows"]]
    expected = hf_greedy(peft_arrow(fx, 2, 1.0, True), fx["tok"], prompts, 6)
    got = our_greedy(fx["dir"], prompts, tmp_path, 6, 3, *arrow_args(fx, 2, 1.0, True))
    assert got == expected


def test_routing_options_change_the_result(fx, tmp_path):
    base = our_label_logits(fx["dir"], fx["rows"], tmp_path, "--batch-size", 2)
    one = ours(fx, tmp_path, 1, 1.0, False)
    two = ours(fx, tmp_path, 2, 1.0, False)
    gks = ours(fx, tmp_path, 2, 1.0, True)
    assert max_diff(one, base) > 1e-2
    assert max_diff(one, two) > 1e-3
    assert max_diff(two, gks) > 1e-3


@pytest.mark.malformed
@pytest.mark.parametrize("extra,fragment", [
    (["--arrow", "0"], "top_k 0 must be in [1, 4]"),
    (["--arrow", "5"], "top_k 5 must be in [1, 4]"),
    (["--arrow", "2,0"], "temperature 0 must be positive"),
    (["--arrow", "two"], "is not TOP_K[,TEMPERATURE]"),
    (["--arrow", "2,"], "is not TOP_K[,TEMPERATURE]"),
    (["--arrow", "2", "--weights", "1,1,1,1"], "drop --weights and --compose"),
])
def test_bad_arrow_options(fx, tmp_path, extra, fragment):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"input": "a", "output": "b"}\n')
    res = run_lorahub("score", "--model", fx["dir"], "--data", data, "--lora", *fx["tasks"],
                      *extra, check=False)
    assert_clean_error(res, fragment)


@pytest.mark.malformed
def test_gks_without_arrow_and_mismatched_general(fx, tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"input": "a", "output": "b"}\n')
    res = run_lorahub("score", "--model", fx["dir"], "--data", data, "--lora", fx["tasks"][0],
                      "--gks-lora", fx["general"][0], check=False)
    assert_clean_error(res, "--gks-lora needs --arrow")
    [other] = make_modules(fx["dir"], [tmp_path / "rank2"], [99], rank=2)
    res = run_lorahub("score", "--model", fx["dir"], "--data", data, "--lora", *fx["tasks"],
                      "--arrow", "2", "--gks-lora", other, check=False)
    assert_clean_error(res, "--arrow", "rank2")
