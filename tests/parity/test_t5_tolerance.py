"""The --bf16 and --int8 LoraHub objective within 2e-2 relative of the f32 path on a T5
LoraHub workload, at LoraHub's box points and near w = 0 (issue 20).

The model and its modules use the construction of the benchmark workload (bench/workload.py;
both from tests/parity/tiny_models.py: a tied T5 (transformers 5 ties any T5 made from a
config) whose decoder output is scaled by d_model^-0.5 as T5 v1.0's, each module 5 % of
the weight it adapts), on a small random T5 made here (4 + 4 layers, d_model 64: seconds).
The old construction (LM head of std 1, B ~ N(0, 0.02^2)) made the objective chaotic at box
points: 16-bit weights alone moved it 7.5 % on the FLAN-T5-large shape (bench/README.md,
"T5 tolerance workload"). So this file also asserts the statistics that make the bound
meaningful: CE near ln(vocab), attention not collapsed, the objective insensitive to 16-bit
weight rounding (1e-4), and coarse weight quantizers (3-bit, ternary) failing the tight bound
(an error under a tenth of the box points' spread), which bf16 and int8 must meet beside 2e-2.
"""
import json
import shutil

import pytest
import torch

from conftest import run_lorahub
from test_t5_parity import spiece  # noqa: F401 (fixture)
from t5_tiny import SPM_VOCAB, bbh_prompts, hf_tokenizer, write_jsonl
from tiny_models import (box_points, compose_into, objective_args, objectives_of,
                         relative_errors as relative, save_lora_modules, t5_statistics,
                         trained_like_t5, write_rounded_copy)

MODULES = 8
POINTS = box_points(MODULES)
RTOL = 2e-2
SPREAD_SHARE = 0.1  # of the objective's spread over the box points


def t5_config():
    from transformers import T5Config

    return T5Config(vocab_size=SPM_VOCAB + 100, d_model=64, d_kv=16, d_ff=128, num_heads=4,
                    num_layers=4, num_decoder_layers=4, feed_forward_proj="gated-gelu",
                    relative_attention_num_buckets=8, relative_attention_max_distance=24,
                    tie_word_embeddings=False, decoder_start_token_id=0, eos_token_id=1,
                    pad_token_id=0)


@pytest.fixture(scope="module")
def workload(spiece, bbh_dir, tmp_path_factory):  # noqa: F811
    from transformers import T5ForConditionalGeneration

    tmp = tmp_path_factory.mktemp("t5tol")
    torch.manual_seed(0)
    model = trained_like_t5(T5ForConditionalGeneration(t5_config()).eval())
    model.save_pretrained(str(tmp / "model"), safe_serialization=True)
    shutil.copy(spiece, tmp / "model" / "spiece.model")
    modules = save_lora_modules(model, tmp / "model", tmp / "modules", MODULES, seed=1000)
    rows = [{"input": i, "output": o} for i, o in bbh_prompts(bbh_dir, per_task=1)[:5]]
    return {"model": tmp / "model", "modules": modules, "rows": rows,
            "examples": write_jsonl(tmp / "few.jsonl", rows), "tmp": tmp}


def objectives(work, *flags, model=None):
    """The objective at every point of POINTS, one process."""
    out = run_lorahub(*objective_args(model or work["model"], work["modules"], work["examples"],
                                      POINTS, *flags))
    return objectives_of(out.stdout)


@pytest.fixture(scope="module")
def f32(workload):
    return objectives(workload)


def test_workload_statistics_are_trained_like(workload, f32):
    """CE ~ ln(vocab) (not ~130), attention entropies far from 0, at w = 0 and at a box point,
    and the modules move the objective (the box points differ from w = 0 by over 1 %)."""
    from safetensors import safe_open
    from transformers import T5ForConditionalGeneration

    # The model these statistics describe: tied and scaled (tiny_models.trained_like_t5),
    # saved with the shared embedding only.
    config = json.loads((workload["model"] / "config.json").read_text())
    assert config["tie_word_embeddings"] and config["scale_decoder_outputs"]
    with safe_open(workload["model"] / "model.safetensors", "pt") as f:
        assert "lm_head.weight" not in f.keys() and "shared.weight" in f.keys()
    tok = hf_tokenizer(workload["model"])
    for weights in [None, [float(x) for x in POINTS[1].split(",")]]:
        model = T5ForConditionalGeneration.from_pretrained(workload["model"], attn_implementation="eager").eval()
        if weights:
            compose_into(model, workload["modules"], weights)
        stats = t5_statistics(model, workload["rows"], tok)
        print(f"weights {weights}: {stats}")
        assert 1.0 < stats["ce"] < stats["ln_vocab"] + 2
        assert stats["attention_entropy"] > 0.5 and stats["attention_entropy_p10"] > 0.1
    print(f"f32 objectives {f32}; box points vs near-zero: spread {spread_of(f32):.2%}")
    assert spread_of(f32) > 1e-2


def test_objective_is_smooth_in_the_weights(workload, f32):
    """16-bit weights (per row, f32 products) move the objective by under 1e-4 at every point:
    the workload is not chaotic, so a reduced-precision path is judged by its own error."""
    rounded = write_rounded_copy(workload["model"], workload["tmp"] / "w16", 32767)
    rel = relative(f32, objectives(workload, model=rounded))
    print(f"16-bit weights: {[f'{r:+.2e}' for r in rel]}")
    assert max(map(abs, rel)) < 1e-4


def spread_of(f32):
    """How far LoraHub's box points move the f32 objective from its value near w = 0."""
    return max(abs(v / f32[0] - 1) for v in f32[1:])


def test_bounds_fail_for_a_coarse_weight_quantizer(workload, f32):
    """The bounds discriminate. On this random T5 the objective moves only a few % across the box
    (CE ~ ln V), so the issue's 2e-2 relative bound is loose: weights rounded per row to 7 values
    (~3 bits) move it 1.6 %, and ternary weights barely break it (2.0 %, measured in session 15).
    The tighter bound, an error under SPREAD_SHARE of the box's spread, fails for both."""
    for levels, name in [(3, "3-bit"), (1, "ternary")]:
        rounded = write_rounded_copy(workload["model"], workload["tmp"] / f"w{levels}", levels)
        rel = relative(f32, objectives(workload, model=rounded))
        print(f"{name} weights: {[f'{r:+.2%}' for r in rel]}, spread {spread_of(f32):.2%}")
        assert max(map(abs, rel)) > SPREAD_SHARE * spread_of(f32)


@pytest.mark.parametrize("flag", ["--bf16", "--int8"])
def test_reduced_precision_objective_within_2e2_of_f32(flag, workload, f32):
    """The issue's bound (2e-2 relative) and the discriminating one: the error is under
    SPREAD_SHARE of how far the box points move the objective (measured: bf16 0.03 %, int8
    0.18 %, spread 3.6 %), so the search sees the same landscape."""
    rel = relative(f32, objectives(workload, flag))
    for w, a, r in zip(POINTS, f32, rel):
        print(f"{flag} at {w[:40]}...: f32 {a:.6f} {r:+.3%}")
    assert len(rel) == len(POINTS)
    assert max(map(abs, rel)) < RTOL
    assert max(map(abs, rel)) < SPREAD_SHARE * spread_of(f32)
