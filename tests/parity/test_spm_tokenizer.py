"""Our SentencePiece tokenizer against transformers' T5Tokenizer (which in transformers 5 is the
`tokenizers` Unigram converted from spiece.model): identical ids on every input, target and
prompt of every BBH task, and identical decoding."""
import json

import pytest

from conftest import run_lorahub
from t5_tiny import bbh_prompt, bbh_tasks, hf_tokenizer, train_spm

EDGE_CASES = [
    "", " ", "  leading and trailing  ", "tabs\tand\nnew\n\nlines", "x </s> y", "<pad>x<unk>",
    "fill <extra_id_0> and <extra_id_99>, not <extra_id_100> or <extra_id_01>",
    "ﬁ ligature, café, naïve, ＦＵＬＬＷＩＤＴＨ", "unknown ☃ snowman 日本", "(A) (B)\n(C)",
]


@pytest.fixture(scope="module")
def tok_dir(bbh_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("spm")
    train_spm(bbh_dir, d)
    return d


def all_bbh_texts(bbh_dir):
    texts = []
    for _, description, examples in bbh_tasks(bbh_dir):
        for e in examples:
            texts += [e["input"], e["target"], bbh_prompt(description, e["input"])]
    return texts


def our_encode(tok_dir, texts):
    stdin = "".join(json.dumps(t) + "\n" for t in texts)
    out = run_lorahub("tokenize", "--model", tok_dir, input=stdin).stdout
    return [json.loads(line) for line in out.splitlines()]


def our_decode(tok_dir, id_lists):
    stdin = "".join(json.dumps(ids) + "\n" for ids in id_lists)
    out = run_lorahub("tokenize", "--model", tok_dir, "--decode", input=stdin).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_ids_identical_on_every_bbh_text(bbh_dir, tok_dir):
    texts = all_bbh_texts(bbh_dir)
    assert len(texts) > 10000
    theirs = hf_tokenizer(tok_dir)(texts)["input_ids"]
    ours = our_encode(tok_dir, texts)
    mismatches = [(t, a, b) for t, a, b in zip(texts, ours, theirs) if a != b]
    assert not mismatches, f"{len(mismatches)} of {len(texts)} differ, first: {mismatches[0]}"


def test_decoding_matches_and_round_trips(bbh_dir, tok_dir):
    hf = hf_tokenizer(tok_dir)
    texts = all_bbh_texts(bbh_dir)[::7]
    ids = hf(texts)["input_ids"]
    decoded = our_decode(tok_dir, ids)
    assert decoded == [hf.decode(i, skip_special_tokens=True) for i in ids]
    # BBH text survives encode -> decode up to SentencePiece's whitespace normalisation
    assert decoded == [" ".join(t.split()) for t in texts]


def test_special_tokens_and_unusual_text(tok_dir):
    hf = hf_tokenizer(tok_dir)
    theirs = hf(EDGE_CASES)["input_ids"]
    assert our_encode(tok_dir, EDGE_CASES) == theirs
    assert our_decode(tok_dir, theirs) == [hf.decode(i, skip_special_tokens=True) for i in theirs]
    assert hf.convert_tokens_to_ids("<extra_id_0>") == len(hf) - 1


@pytest.mark.malformed
def test_missing_or_broken_spiece_model(tmp_path):
    from conftest import assert_clean_error

    (tmp_path / "spiece.model").write_bytes(b"not a sentencepiece model")
    r = run_lorahub("tokenize", "--model", tmp_path, input='"hi"\n', check=False)
    assert_clean_error(r, "spiece.model")
