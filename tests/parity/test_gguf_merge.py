"""`learn --merge` on a GGUF base writes merged/model.gguf, a model that loads on its own: in
lorahub (the logits of the base with the learned adapter, up to the 16-bit rounding of the merged
matrices), in transformers (gguf_file=) and in llama.cpp.

The merged matrices are written in f16 (bf16 where a value exceeds f16's range), vectors in f32,
as llama.cpp's converter writes models: half the bytes of f32 (SmolLM2: 270 MB for 540)."""
import json

import numpy as np
import pytest
import torch

import llamacpp_oracle
from conftest import run_lorahub
from test_llama import (bbh_rows, our_label_logits, smollm2_gguf, smollm2_hf,  # noqa: F401
                        smollm2_loras, write_jsonl)


F16_ATOL = 0.05  # logits: merged f16 matrices against f32 base + adapter
LLAMA_CPP_ATOL = 0.1  # logits: llama.cpp rounds activations to f16 for f16 matrices


@pytest.mark.slow
def test_merged_gguf_loads_and_matches_base_plus_adapter(smollm2_loras, bbh_dir, tmp_path):
    from transformers import AutoModelForCausalLM
    rows = bbh_rows(bbh_dir, 2, per_task=1)
    examples = write_jsonl(tmp_path / "ex.jsonl", rows)
    out = tmp_path / "learned"
    res = run_lorahub("learn", "--model", smollm2_gguf(), "--lora", *smollm2_loras, "--examples",
                      examples, "--steps", 6, "--optimizer", "cmaes", "--out", out, "--merge")
    merged = out / "merged" / "model.gguf"
    assert "merged/model.gguf" in res.stdout and merged.exists()
    assert sorted(p.name for p in (out / "merged").iterdir()) == ["model.gguf"]
    weights = json.loads((out / "weights.json").read_text())["weights"]
    assert any(abs(w) > 1e-3 for w in weights)

    with_adapter = our_label_logits(smollm2_gguf(), rows, tmp_path, "--lora", out)
    ours = our_label_logits(merged, rows, tmp_path)
    base = our_label_logits(smollm2_gguf(), rows, tmp_path)
    import gguf
    types = {t.tensor_type.name for t in gguf.GGUFReader(str(merged)).tensors}
    assert types == {"F16", "F32"}, types
    for a, m, b in zip(with_adapter, ours, base):
        rounding, effect = np.abs(m - a).max(), np.abs(a - b).max()
        to_adapter, to_base = np.sqrt(np.mean((m - a) ** 2)), np.sqrt(np.mean((m - b) ** 2))
        print(f"merged vs base + adapter: max {rounding:.4f} rms {to_adapter:.5f}; "
              f"vs base: rms {to_base:.5f}; base + adapter vs base: max {effect:.4f}")
        assert rounding < F16_ATOL  # measured 0.018
        # The learned adapter moves logits by about as much as the rounding does (measured rms
        # 0.007 vs 0.004): the merged model must still be nearer base + adapter than the base.
        assert to_adapter < 0.75 * to_base

    llm = llamacpp_oracle.load(merged, n_ctx=256, f32_cache=True, logits_all=False)
    for r, m in zip(rows, ours):
        ids = llm.tokenize(r["input"].encode(), add_bos=True, special=False)
        llm.reset()
        llm.eval(ids)
        gap = np.abs(llamacpp_oracle.last_logits(llm) - m[0]).max()
        print(f"llama.cpp on the merged file vs ours: {gap:.4f}")
        assert gap < LLAMA_CPP_ATOL
    del llm

    hf = AutoModelForCausalLM.from_pretrained(str(merged.parent), gguf_file=merged.name,
                                              dtype=torch.float32).eval()
    for r, m in zip(rows, ours):
        ids = json.loads(run_lorahub("tokenize", "--model", merged,
                                     input=json.dumps(r["input"]) + "\n").stdout)
        with torch.no_grad():
            z = hf(torch.tensor([ids])).logits[0, -1].numpy()
        np.testing.assert_allclose(z, m[0], atol=1e-3, rtol=0)
