"""Tiny random T5 models and a SentencePiece model trained on BBH text, made at test time with
transformers / sentencepiece (nothing is downloaded), for the T5 and tokenizer parity tests."""
import hashlib
import json
import shutil
from pathlib import Path

import torch

SPM_VOCAB = 1000  # pieces; T5Tokenizer adds 100 <extra_id_N> after them


def bbh_tasks(bbh_dir: Path):
    """(task name, description, examples) for every task file, as DESIGN §1 describes them."""
    for path in sorted((bbh_dir / "tasks").glob("*.json")):
        prompt_lines = (bbh_dir / "task-prompts" / f"{path.stem}.txt").read_text().splitlines()
        yield path.stem, prompt_lines[2], json.loads(path.read_text())["examples"]


def bbh_prompt(description: str, example_input: str) -> str:
    return f"{description}\n\nQ: {example_input}\nA:"


def bbh_prompts(bbh_dir: Path, per_task: int):
    """(prompt, target) pairs: the first `per_task` examples of each task by SHA-256 of the input
    (the few-shot set of our split)."""
    rows = []
    for _, description, examples in bbh_tasks(bbh_dir):
        ordered = sorted(examples, key=lambda e: hashlib.sha256(e["input"].encode()).hexdigest())
        rows += [(bbh_prompt(description, e["input"]), e["target"]) for e in ordered[:per_task]]
    return rows


def train_spm(bbh_dir: Path, out_dir: Path) -> Path:
    """A unigram SentencePiece model with T5's settings (pad 0, eos 1, unk 2, no bos, nmt_nfkc)."""
    import sentencepiece as spm

    corpus = out_dir / "corpus.txt"
    with corpus.open("w") as f:
        for _, description, examples in bbh_tasks(bbh_dir):
            f.write(description + "\n")
            for e in examples:
                f.write(e["input"] + "\n" + e["target"] + "\n")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(out_dir / "spiece"), vocab_size=SPM_VOCAB,
        model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>",
        eos_piece="</s>", unk_piece="<unk>", normalization_rule_name="nmt_nfkc",
        character_coverage=1.0, num_threads=1, minloglevel=2)
    return out_dir / "spiece.model"


def t5_config(version: str, vocab_size: int):
    from transformers import T5Config

    common = dict(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=48, num_heads=4,
                  decoder_start_token_id=0, eos_token_id=1, pad_token_id=0)
    if version == "v1.0":  # relu, tied embeddings (decoder output scaled by d_model^-0.5)
        return T5Config(**common, num_layers=3, num_decoder_layers=2, feed_forward_proj="relu",
                        relative_attention_num_buckets=16, relative_attention_max_distance=40,
                        tie_word_embeddings=True)
    # v1.1 / FLAN-T5: gated-gelu; the LM head gets its own weights below
    return T5Config(**common, num_layers=2, num_decoder_layers=3, feed_forward_proj="gated-gelu",
                    relative_attention_num_buckets=8, relative_attention_max_distance=24,
                    tie_word_embeddings=False)


def make_t5(version: str, spiece: Path, out_dir: Path, dtype=torch.float32, layout="safetensors",
            seed=0) -> Path:
    """Saves a random T5 `version` ("v1.0" or "v1.1") with `spiece` as its tokenizer in out_dir.
    layout: "safetensors", "sharded" (model.safetensors.index.json) or "bin" (pytorch_model.bin)."""
    from safetensors.torch import save_file
    from transformers import T5ForConditionalGeneration

    vocab = SPM_VOCAB + 100
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(t5_config(version, vocab)).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    for tied in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"):
        state.pop(tied, None)
    config = model.config.to_dict()
    config.pop("scale_decoder_outputs", None)
    if version == "v1.1":
        # transformers 5 always ties lm_head to shared unless the checkpoint holds its own
        # lm_head.weight (as FLAN-T5's does) and the config says tie_word_embeddings=false.
        state["lm_head.weight"] = (torch.randn(vocab, 32) * 0.5).to(dtype)
        config["tie_word_embeddings"] = False
    else:
        config["tie_word_embeddings"] = True
    config["dtype"] = str(dtype).removeprefix("torch.")
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    if layout == "safetensors":
        save_file(state, out_dir / "model.safetensors", metadata={"format": "pt"})
    elif layout == "sharded":
        names = sorted(state)
        shards = [names[i::3] for i in range(3)]
        weight_map = {}
        for i, shard in enumerate(shards):
            file = f"model-{i + 1:05d}-of-00003.safetensors"
            save_file({n: state[n] for n in shard}, out_dir / file, metadata={"format": "pt"})
            weight_map.update({n: file for n in shard})
        (out_dir / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {}, "weight_map": weight_map}))
    elif layout == "bin":
        torch.save(state, out_dir / "pytorch_model.bin")
    else:
        raise ValueError(layout)
    shutil.copy(spiece, out_dir / "spiece.model")
    return out_dir


def load_hf(model_dir: Path):
    """transformers' model from our directory, computing in fp32 (bf16 weights are widened)."""
    from transformers import T5ForConditionalGeneration

    return T5ForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()


def hf_label_logits(model, tok, rows):
    """transformers' logits at each target token of (input, target) rows, teacher-forced: one
    [target tokens, vocabulary] array per row (what our label_logits returns)."""
    enc = tok([r[0] for r in rows], padding="longest", return_tensors="pt")
    labels = tok([r[1] for r in rows], padding="longest", return_tensors="pt").input_ids
    labels[labels == tok.pad_token_id] = -100
    with torch.no_grad():
        logits = model(**enc, labels=labels).logits
    return [logits[i, :int((labels[i] != -100).sum())].numpy() for i in range(len(rows))]


def hf_tokenizer(model_dir: Path):
    from transformers import T5Tokenizer

    return T5Tokenizer.from_pretrained(model_dir)


def write_jsonl(path: Path, rows):
    with path.open("w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return path
