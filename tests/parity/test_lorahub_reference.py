"""LoraHub side by side with the reference package (lorahub 0.1.0 from PyPI) on a tiny random
T5 with PEFT-made modules (random, nonzero A and B) and five BBH few-shot examples:
the objective at w = 0 and at random weights, the weights each side's search returns, and the
learned adapter / merged model as PEFT and transformers load them.

The reference has an aliasing bug (documented in test_reference_aliasing_quirk): its cached
state dict of the *last* module shares storage with the live adapter parameters, so every
get_score call overwrites that module's tensors with the previous composition. We compare with
the reference's get_score on a de-aliased copy of its cache, i.e. with what it means to compute.
"""
import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from conftest import run_lorahub
from lorahub_tiny import few_shot_examples, make_modules
from t5_tiny import hf_label_logits, hf_tokenizer, load_hf, make_t5, train_spm

torch.set_num_threads(1)
N_MODULES = 3
STEPS = 12


@pytest.fixture(scope="module")
def fx(bbh_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("lorahub_ref")
    spiece = train_spm(bbh_dir, root)
    model_dir = make_t5("v1.1", spiece, root / "t5")
    modules = make_modules(model_dir, root, N_MODULES)
    rows = few_shot_examples(bbh_dir, root / "examples.jsonl")
    return {"root": root, "model": model_dir, "modules": modules, "rows": rows,
            "examples": root / "examples.jsonl"}


@pytest.fixture(scope="module")
def reference(fx):
    """The reference's model, tokenizer, dataset and (de-aliased) module cache."""
    from lorahub.algorithm import load_base_model_and_lora_modules, load_dataset

    model, tok, cache = load_base_model_and_lora_modules([str(m) for m in fx["modules"]],
                                                         str(fx["model"]))
    dataset = load_dataset([r[0] for r in fx["rows"]], [r[1] for r in fx["rows"]], tok)
    fresh = {k: {n: t.clone() for n, t in d.items()} for k, d in cache.items()}
    return {"model": model, "cache": cache, "fresh": fresh, "dataset": dataset}


def reference_score(reference, w, cache="fresh"):
    from lorahub.algorithm import default_get_loss, default_l1_regularization, get_score

    return get_score(np.asarray(w, dtype=np.float64), reference["model"], reference[cache],
                     reference["dataset"], None, default_get_loss, default_l1_regularization)


def our_objective(fx, w):
    weights = ",".join(repr(float(x)) for x in w)
    return run_lorahub("objective", "--model", fx["model"], "--lora", *fx["modules"],
                       "--examples", fx["examples"], f"--weights={weights}").json()


def test_objective_matches_reference_get_score(fx, reference):
    rng = np.random.default_rng(0)
    vectors = [np.zeros(N_MODULES)] + [rng.uniform(-1.5, 1.5, N_MODULES) for _ in range(5)]
    for w in vectors:
        theirs = reference_score(reference, w)
        ours = our_objective(fx, w)
        print(f"w={np.round(w, 3)} ours={ours['objective']:.7f} reference={theirs:.7f}")
        assert ours["objective"] == pytest.approx(theirs, rel=1e-4)
        assert ours["penalty"] == pytest.approx(0.05 * np.abs(w).mean(), rel=1e-12)


def test_reference_aliasing_quirk(fx, reference):
    """Documents the reference's bug rather than relying on it: after scoring w = e_0, its
    get_score at w = e_last scores module 0's adapter again (the last module's cached tensors
    were overwritten), while the de-aliased computation, and ours, score module `last`."""
    first, last = np.eye(N_MODULES)[0], np.eye(N_MODULES)[-1]
    reference_score(reference, first, cache="cache")
    aliased = reference_score(reference, last, cache="cache")
    ours_first, ours_last = our_objective(fx, first), our_objective(fx, last)
    assert aliased == pytest.approx(ours_first["objective"], rel=1e-4)  # same loss, same |w|
    assert ours_last["objective"] == pytest.approx(reference_score(reference, last), rel=1e-4)
    assert abs(ours_last["objective"] - ours_first["objective"]) > 1e-3


def test_learned_weights_score_the_same_on_both_sides(fx, reference, tmp_path):
    from lorahub.algorithm import lorahub_learning

    ref_weights, _, _ = lorahub_learning([str(m) for m in fx["modules"]],
                                         [r[0] for r in fx["rows"]], [r[1] for r in fx["rows"]],
                                         max_inference_step=STEPS,
                                         model_name_or_path=str(fx["model"]), seed=42)
    out = tmp_path / "learned"
    run_lorahub("learn", "--model", fx["model"], "--lora", *fx["modules"], "--examples",
                fx["examples"], "--steps", STEPS, "--seed", 42, "--out", out, "--quiet")
    summary = json.loads((out / "weights.json").read_text())
    assert len(summary["history"]) == STEPS
    assert summary["history"][0]["objective"] == pytest.approx(reference_score(reference,
                                                               np.zeros(N_MODULES)), rel=1e-4)
    # The weights each side returns, scored by the other side.
    assert our_objective(fx, ref_weights)["objective"] == pytest.approx(
        reference_score(reference, ref_weights), rel=1e-4)
    assert summary["objective"] == pytest.approx(
        reference_score(reference, summary["weights"]), rel=1e-4)
    print(f"ours: {summary['objective']:.6f} at {np.round(summary['weights'], 3)}; "
          f"reference's weights {np.round(ref_weights, 3)} score "
          f"{reference_score(reference, ref_weights):.6f}")


def test_learned_adapter_and_merged_model_load_in_peft_and_transformers(fx, tmp_path):
    from peft import PeftModel

    out = tmp_path / "learned"
    run_lorahub("learn", "--model", fx["model"], "--lora", *fx["modules"], "--examples",
                fx["examples"], "--steps", 6, "--optimizer", "cmaes", "--out", out, "--merge",
                "--quiet")
    weights = json.loads((out / "weights.json").read_text())["weights"]
    assert any(abs(w) > 1e-3 for w in weights)
    dump = tmp_path / "ours.safetensors"
    run_lorahub("score", "--model", fx["model"], "--lora", out, "--data", fx["examples"],
                "--batch-size", 0, "--dump-logits", dump)
    ours = load_file(dump)
    tok = hf_tokenizer(fx["model"])
    peft_model = PeftModel.from_pretrained(load_hf(fx["model"]), out).eval()
    merged = load_hf(out / "merged")
    base = load_hf(fx["model"])
    rows = fx["rows"]
    for name, model in (("peft", peft_model), ("merged", merged)):
        theirs = hf_label_logits(model, tok, rows)
        worst = max(float(np.abs(ours[f"example.{i}"] - t).max()) for i, t in enumerate(theirs))
        scale = max(float(np.abs(t).max()) for t in theirs)
        print(f"{name}: max |logit diff| = {worst:.3g} (max |logit| {scale:.3g})")
        # f32 through a model shifted by large random LoRA updates (|w| up to 1.5): logits reach
        # ~13 and differ from PyTorch's by ~2e-4 (~1e-5 relative).
        for i, t in enumerate(theirs):
            np.testing.assert_allclose(ours[f"example.{i}"], t, rtol=1e-4, atol=5e-4)
    untouched = hf_label_logits(base, tok, rows)
    assert max(float(np.abs(ours[f"example.{i}"] - t).max()) for i, t in enumerate(untouched)) > 1e-3
