#!/usr/bin/env python3
"""Builds the demo's small synthetic default: a tiny T5 and a pool of LoRA modules, each
fine-tuned with PEFT on one word-manipulation task, so that composing them does something.

Nothing is downloaded. The steps, all seeded:
  1. a SentencePiece vocabulary trained on the synthetic text (T5 settings: pad 0, eos 1, unk 2);
  2. a small random T5 (v1.1 layout), fully trained on all tasks at once with an instruction
     prefix ("reverse: cat dog owl" -> "owl dog cat"), so the base model knows the skills;
  3. one LoRA module per task (PEFT, r=8), trained on the inputs *without* the prefix: the
     module alone has to say which skill to use. The base model without prefix does not know.
The demo then hands LoraHub 5 examples of one task and the whole pool, and LoraHub has to find
the right composition from those 5 examples alone.

Usage: make_demo_modules.py --out DIR [--target sort] [--quick]
Writes DIR/t5/ (HF model dir), DIR/modules/<task>/ (PEFT adapters), DIR/modules.txt,
DIR/examples.jsonl (5 few-shot examples of the target task), DIR/test.jsonl (held-out test set).
"""
import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

import torch

WORDS = ("cat dog owl fox bee ant cow pig hen elk yak eel emu gnu ram bat "
         "red blue green gold pink gray").split()

TASKS = {
    "copy": lambda w: w,
    "reverse": lambda w: w[::-1],
    "sort": sorted,
    "first": lambda w: w[:1],
    "last": lambda w: w[-1:],
    "drop_first": lambda w: w[1:],
}


def sample_words(rng):
    return rng.sample(WORDS, rng.randint(3, 5))


def make_rows(task, count, rng, prefix):
    rows = []
    for _ in range(count):
        words = sample_words(rng)
        source = " ".join(words)
        rows.append({"input": f"{task}: {source}" if prefix else source,
                     "output": " ".join(TASKS[task](words))})
    return rows


def train_tokenizer(out_dir):
    import sentencepiece as spm

    corpus = out_dir / "corpus.txt"
    rng = random.Random(0)
    with corpus.open("w") as f:
        for task in TASKS:
            for row in make_rows(task, 200, rng, prefix=True):
                f.write(row["input"] + "\n" + row["output"] + "\n")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(out_dir / "spiece"), vocab_size=128, hard_vocab_limit=False,
        model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>",
        eos_piece="</s>", unk_piece="<unk>",
        normalization_rule_name="nmt_nfkc", character_coverage=1.0, num_threads=1,
        minloglevel=2)
    corpus.unlink()
    return out_dir / "spiece.model"


def tokenizer_for(model_dir):
    from transformers import T5Tokenizer

    return T5Tokenizer.from_pretrained(model_dir)


def batches(tok, rows, batch_size, rng):
    while True:
        batch = rng.sample(rows, batch_size)
        enc = tok([r["input"] for r in batch], padding=True, return_tensors="pt")
        labels = tok([r["output"] for r in batch], padding=True, return_tensors="pt").input_ids
        labels[labels == tok.pad_token_id] = -100
        yield enc, labels


def train(model, tok, rows, steps, lr, seed, label):
    rng = random.Random(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    model.train()
    start = time.time()
    for step, (enc, labels) in zip(range(1, steps + 1), batches(tok, rows, 32, rng)):
        loss = model(**enc, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(1, steps // 5) == 0 or step == steps:
            print(f"  {label}: step {step}/{steps} loss {loss.item():.3f} "
                  f"({time.time() - start:.0f}s)", flush=True)
    model.eval()


def save_t5(model, spiece, out_dir):
    """Saves as an HF directory our loader and transformers both read (lm_head kept separate)."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    # transformers 5 ties lm_head to shared while training; store it as FLAN-T5 does, separately.
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
             if k not in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")}
    config = model.config.to_dict()
    config.pop("scale_decoder_outputs", None)
    config["tie_word_embeddings"] = False
    config["dtype"] = "float32"
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    save_file(state, out_dir / "model.safetensors", metadata={"format": "pt"})
    shutil.copy(spiece, out_dir / "spiece.model")


def make_base(spiece, out_dir, steps):
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(spiece, out_dir / "spiece.model")
    tok = tokenizer_for(out_dir)  # as everything downstream will load it: from the directory
    config = T5Config(vocab_size=len(tok), d_model=64, d_kv=16, d_ff=128, num_heads=4,
                      num_layers=2, num_decoder_layers=2, feed_forward_proj="gated-gelu",
                      relative_attention_num_buckets=16, relative_attention_max_distance=32,
                      decoder_start_token_id=0, eos_token_id=1, pad_token_id=0,
                      tie_word_embeddings=False, dropout_rate=0.0)
    model = T5ForConditionalGeneration(config)
    rng = random.Random(1)
    rows = [r for task in TASKS for r in make_rows(task, 400, rng, prefix=True)]
    train(model, tok, rows, steps, 3e-3, seed=2, label="base model (all tasks, with prefix)")
    save_t5(model, spiece, out_dir)
    return out_dir


def make_module(base_dir, task, out_dir, steps, seed):
    from peft import LoraConfig, get_peft_model
    from transformers import T5ForConditionalGeneration

    torch.manual_seed(seed)
    base = T5ForConditionalGeneration.from_pretrained(base_dir, dtype=torch.float32)
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, task_type="SEQ_2_SEQ_LM",
                        target_modules=["q", "v", "wi_0", "wi_1", "wo"])
    model = get_peft_model(base, config)
    rows = make_rows(task, 400, random.Random(seed), prefix=False)
    train(model, tokenizer_for(base_dir), rows, steps, 5e-3, seed, f"module '{task}'")
    model.save_pretrained(out_dir)
    cfg = json.loads((out_dir / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(base_dir.resolve())
    (out_dir / "adapter_config.json").write_text(json.dumps(cfg, indent=2))


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--target", default="sort", choices=sorted(TASKS))
    ap.add_argument("--quick", action="store_true", help="fewer training steps (for tests)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # a tiny model: more threads only fight over the cores
    base_steps, module_steps = (150, 60) if args.quick else (800, 200)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    spiece = train_tokenizer(out)
    base_dir = make_base(spiece, out / "t5", base_steps)
    module_dirs = []
    for i, task in enumerate(TASKS):
        module_dirs.append(out / "modules" / task)
        make_module(base_dir, task, module_dirs[-1], module_steps, seed=100 + i)
    (out / "modules.txt").write_text("".join(f"modules/{d.name}\n" for d in module_dirs))
    rng = random.Random(12345)  # examples the modules never saw (another seed)
    write_jsonl(out / "examples.jsonl", make_rows(args.target, 5, rng, prefix=False))
    write_jsonl(out / "test.jsonl", make_rows(args.target, 50, rng, prefix=False))
    (out / "target.txt").write_text(args.target + "\n")
    print(f"demo default written to {out}: base model, {len(module_dirs)} modules, "
          f"target task '{args.target}'")


if __name__ == "__main__":
    sys.exit(main())
