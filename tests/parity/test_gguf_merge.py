"""`learn --merge` on a GGUF base writes merged/model.gguf, a model that loads on its own: in
lorahub (same logits as the base with the learned adapter) and in transformers (gguf_file=)."""
import json

import numpy as np
import pytest
import torch

from conftest import run_lorahub
from test_llama import (bbh_rows, our_label_logits, smollm2_gguf, smollm2_hf,  # noqa: F401
                        smollm2_loras, write_jsonl)


@pytest.mark.slow
def test_merged_gguf_loads_and_matches_base_plus_adapter(smollm2_loras, bbh_dir, tmp_path):
    from transformers import AutoModelForCausalLM
    rows = bbh_rows(bbh_dir, 2, per_task=1)
    examples = write_jsonl(tmp_path / "ex.jsonl", rows)
    out = tmp_path / "learned"
    res = run_lorahub("learn", "--model", smollm2_gguf(), "--lora", *smollm2_loras, "--examples",
                      examples, "--steps", 3, "--out", out, "--merge", "--quiet")
    merged = out / "merged" / "model.gguf"
    assert "merged/model.gguf" in res.stdout and merged.exists()
    assert sorted(p.name for p in (out / "merged").iterdir()) == ["model.gguf"]
    weights = json.loads((out / "weights.json").read_text())["weights"]
    assert any(abs(w) > 1e-3 for w in weights)

    with_adapter = our_label_logits(smollm2_gguf(), rows, tmp_path, "--lora", out)
    ours = our_label_logits(merged, rows, tmp_path)
    base = our_label_logits(smollm2_gguf(), rows, tmp_path)
    for a, m, b in zip(with_adapter, ours, base):
        np.testing.assert_allclose(m, a, atol=1e-4, rtol=0)
        assert np.abs(m - b).max() > 1e-3  # the adapter changed something

    hf = AutoModelForCausalLM.from_pretrained(str(merged.parent), gguf_file=merged.name,
                                              dtype=torch.float32).eval()
    for r, m in zip(rows, ours):
        ids = json.loads(run_lorahub("tokenize", "--model", merged,
                                     input=json.dumps(r["input"]) + "\n").stdout)
        with torch.no_grad():
            z = hf(torch.tensor([ids])).logits[0, -1].numpy()
        np.testing.assert_allclose(z, m[0], atol=1e-3, rtol=0)
