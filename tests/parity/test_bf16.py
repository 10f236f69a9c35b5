"""The bf16 fast path (`--bf16`: bf16 weights, oneDNN bf16 products with f32 accumulation)
against our f32 reference path, which the other parity tests hold to transformers.

Stated tolerance (README, bench/README.md): losses and the LoraHub objective within 1e-2
relative of the f32 path for a batch, each example's token-mean loss within 5e-2 relative;
greedy outputs identical on most prompts (a near-tie may flip the argmax). Measured on SmolLM2
with 40 BBH examples: batch loss 0.1 %, worst example 3.0 %, mean 0.8 %.
"""
import json
from pathlib import Path

import pytest

from conftest import run_lorahub
from test_llama import bbh_rows, smollm2_gguf, write_jsonl
from test_t5_parity import VARIANTS, hf_batch, make_t5, spiece  # noqa: F401 (fixture)
from t5_tiny import bbh_prompts

ROOT = Path(__file__).resolve().parents[2]


def scores(model, data, *extra):
    return run_lorahub("score", "--model", model, "--data", data, "--json", *extra).json()


def assert_close_losses(f32, bf16):
    assert bf16["batch_loss"] == pytest.approx(f32["batch_loss"], rel=1e-2)
    worst = max(abs(b["loss"] - a["loss"]) / abs(a["loss"])
                for a, b in zip(f32["examples"], bf16["examples"]))
    print(f"batch loss {f32['batch_loss']:.5f} vs {bf16['batch_loss']:.5f}, worst example {worst:.3%}")
    assert worst < 5e-2
    assert [a["tokens"] for a in f32["examples"]] == [b["tokens"] for b in bf16["examples"]]


def test_smollm2_bf16_losses_and_greedy_match_f32(bbh_dir, tmp_path):
    rows = bbh_rows(bbh_dir, 20, per_task=1)
    data = write_jsonl(tmp_path / "rows.jsonl", rows)
    assert_close_losses(scores(smollm2_gguf(), data), scores(smollm2_gguf(), data, "--bf16"))

    prompts = write_jsonl(tmp_path / "p.jsonl", [{"input": r["input"]} for r in rows[::2]])
    gen = ["generate", "--model", smollm2_gguf(), "--data", prompts, "--chat", "--json",
           "--max-new-tokens", 8, "--batch-size", 10]
    f32 = run_lorahub(*gen).json()["prediction_ids"]
    bf16 = run_lorahub(*gen, "--bf16").json()["prediction_ids"]
    same = sum(a == b for a, b in zip(f32, bf16))
    print(f"greedy: {same} of {len(f32)} identical")
    assert same >= 0.8 * len(f32)


def test_smollm2_bf16_objective_with_library_modules_matches_f32(bbh_dir, tmp_path):
    """The LoraHub objective with real modules (library/smollm2) at non-trivial weights."""
    modules = sorted(str(p.parent) for p in (ROOT / "library" / "smollm2").glob("*/adapter_config.json"))[:4]
    data = write_jsonl(tmp_path / "few.jsonl", bbh_rows(bbh_dir, 5))
    args = ["objective", "--model", smollm2_gguf(), "--lora", *modules, "--examples", data,
            "--weights", "0.9,-0.4,0.3,0.6"]
    f32 = json.loads(run_lorahub(*args).stdout)["objective"]
    bf16 = json.loads(run_lorahub(*args, "--bf16").stdout)["objective"]
    print(f"objective f32 {f32:.6f} bf16 {bf16:.6f}")
    assert bf16 == pytest.approx(f32, rel=1e-2)


@pytest.mark.parametrize("variant", VARIANTS[:2], ids=lambda v: v[0])
def test_t5_bf16_losses_match_f32(variant, spiece, bbh_dir, tmp_path):  # noqa: F811
    version, dtype, layout = variant
    model = make_t5(version, spiece, tmp_path / "t5", dtype=dtype, layout=layout)
    rows = bbh_prompts(bbh_dir, per_task=1)
    data = write_jsonl(tmp_path / "d.jsonl", [{"input": i, "output": o} for i, o in rows])
    assert_close_losses(scores(model, data), scores(model, data, "--bf16"))


@pytest.mark.slow
def test_gemma3_270m_bf16_losses_match_f32(bbh_dir, tmp_path):
    """The real Gemma 3 file (sandwich norms, q/k norms, sliding layers, GELU) on the bf16 path,
    at the same tolerance as SmolLM2."""
    from real_models import gemma3_270m_gguf
    data = write_jsonl(tmp_path / "rows.jsonl", bbh_rows(bbh_dir, 20, per_task=1))
    gemma = gemma3_270m_gguf()
    assert_close_losses(scores(gemma, data), scores(gemma, data, "--bf16"))
