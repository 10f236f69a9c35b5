"""Builds the benchmark workload (issue 5) into a cache directory, once per configuration.

Nothing can be downloaded here, so everything is made locally and deterministically:
  - a T5 with google/flan-t5-large's shape (or a tiny one for smoke runs) and random weights
    from transformers' own initialisation under a fixed torch seed, saved as fp32 safetensors;
  - a T5 SentencePiece tokenizer trained on the BBH inputs and targets (unigram, pad=0, eos=1,
    unk=2), padded with placeholder pieces so that with T5's 100 extra ids it covers every id
    of the model's vocabulary, converted and saved by transformers' T5Tokenizer;
  - N PEFT LoRA modules (r=16, lora_alpha=32, targets q and v) whose A and B are drawn from
    fixed seeds, B nonzero so every module changes the model;
  - trained-like statistics (tests/parity/tiny_models.py, shared with the T5 tolerance test):
    the decoder output scaled by d_model^-0.5 before the LM head, as T5 v1.0 does (transformers
    5 ties every T5 made from a config, whatever tie_word_embeddings says, but scales only with
    scale_decoder_outputs, which we switch on: CE ~ ln(vocab), not ~130 as the unscaled head of
    std 1 gave), and each module's update 5 % of the norm of the weight it adapts (the
    objective is smooth over LoraHub's box, not chaotic);
  - date_understanding split as DESIGN §1 says: prompts ordered by the SHA-256 hex digest of the
    input, the first 5 are the few-shot examples, the rest the test set.

Usage: python bench/workload.py --cache DIR [--size large|tiny] [--modules 20]
Prints the workload description (paths, shapes, token counts) as JSON on stdout.
"""
import argparse
import hashlib
import io
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "parity"))
from tiny_models import (CONSTRUCTION, LORA_ALPHA, LORA_R, LORA_TARGETS,  # noqa: E402
                         save_lora_modules, trained_like_t5)
DEFAULT_BBH = ROOT.parent / "shared" / "data" / "bbh"
TASK = "date_understanding"

# google/flan-t5-large's config.json values (the architecture, not the weights).
FLAN_T5_LARGE = dict(
    d_model=1024, d_ff=2816, d_kv=64, num_layers=24, num_decoder_layers=24, num_heads=16,
    relative_attention_num_buckets=32, relative_attention_max_distance=128,
    # FLAN-T5-large's tie_word_embeddings=False; transformers 5 ties the model anyway (docstring)
    feed_forward_proj="gated-gelu", vocab_size=32128, tie_word_embeddings=False,
    layer_norm_epsilon=1e-6, dropout_rate=0.1, decoder_start_token_id=0, pad_token_id=0,
    eos_token_id=1)
# Same architecture family, small enough for a smoke run of the whole harness in a minute.
TINY = dict(FLAN_T5_LARGE, d_model=64, d_ff=128, d_kv=16, num_layers=2, num_decoder_layers=2,
            num_heads=4)
# google/flan-t5-small's shape with FLAN-T5-large's depth (24 + 24 layers: depth is what
# amplifies a perturbation), for tolerance measurements that build in a minute.
SMALL = dict(FLAN_T5_LARGE, d_model=512, d_ff=1024, num_heads=8)
SIZES = {"large": FLAN_T5_LARGE, "small": SMALL, "tiny": TINY}

SPM_VOCAB = 8000  # BBH text is too small for T5's 32000 pieces; ids stay below vocab_size.


def bbh_split(bbh_dir: Path, task: str):
    """(few_shot, test): rows {"input", "output"} in our deterministic split (DESIGN §1)."""
    prompt_lines = (bbh_dir / "task-prompts" / f"{task}.txt").read_text().splitlines()
    description = prompt_lines[2]
    examples = json.loads((bbh_dir / "tasks" / f"{task}.json").read_text())["examples"]
    ordered = sorted(examples, key=lambda e: hashlib.sha256(e["input"].encode()).hexdigest())
    rows = [{"input": f"{description}\n\nQ: {e['input']}\nA:", "output": e["target"]}
            for e in ordered]
    return rows[:5], rows[5:]


def write_jsonl(path: Path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def bbh_texts(bbh_dir: Path):
    for f in sorted((bbh_dir / "tasks").glob("*.json")):
        for e in json.loads(f.read_text())["examples"]:
            yield e["input"]
            yield e["target"]


def tokenizer_pieces(shape: dict) -> int:
    """SentencePiece pieces so that, with T5's 100 extra ids, every model id decodes: a random
    model emits any id below vocab_size, and a real T5 tokenizer covers (nearly) all of them."""
    return shape["vocab_size"] - 100


def build_tokenizer(model_dir: Path, bbh_dir: Path, pieces: int):
    """Unigram pieces learned from BBH text (SPM_VOCAB of them; BBH is too small for T5's 32000)
    plus placeholder pieces "<unused_N>" (user-defined symbols, never in the text) up to
    `pieces`. Kept when an existing spiece.model already has that many pieces."""
    import sentencepiece as spm
    from transformers import T5Tokenizer

    spiece = model_dir / "spiece.model"
    if not (spiece.exists() and spm.SentencePieceProcessor(model_file=str(spiece)).get_piece_size() == pieces):
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=bbh_texts(bbh_dir), model_writer=model, vocab_size=pieces,
            model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
            user_defined_symbols=[f"<unused_{i}>" for i in range(pieces - SPM_VOCAB)],
            num_threads=1, minloglevel=2)
        spiece.write_bytes(model.getvalue())
    for stale in ["tokenizer.json", "tokenizer_config.json"]:
        (model_dir / stale).unlink(missing_ok=True)
    T5Tokenizer.from_pretrained(str(model_dir)).save_pretrained(str(model_dir))


def build_model(model_dir: Path, shape: dict, seed: int):
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    model = trained_like_t5(T5ForConditionalGeneration(T5Config(**shape)).eval())
    model.save_pretrained(str(model_dir), safe_serialization=True)
    return model


def build_modules(model, model_dir: Path, modules_dir: Path, count: int, seed: int):
    """count adapters on one PEFT wrapper; only the LoRA tensors differ between them."""
    return [str(p) for p in save_lora_modules(model, model_dir, modules_dir, count, seed)]


def count_tokens(model_dir: Path, rows):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    return {"input_tokens": [len(tok(r["input"]).input_ids) for r in rows],
            "label_tokens": [len(tok(r["output"]).input_ids) for r in rows]}


def build(cache: Path, size: str, modules: int, bbh_dir: Path, seed: int = 0):
    key = f"{size}-m{modules}-s{seed}"
    root = cache / key
    done = root / "workload.json"
    if done.exists():
        info = json.loads(done.read_text())
        if info.get("construction") != CONSTRUCTION:
            # Weights and modules of an older construction (e.g. the chaotic one whose LM head
            # had std 1): rebuilt, never reused under the same key.
            print(f"workload: {key} is of another construction; rebuilding", file=sys.stderr)
        elif info.get("tokenizer_pieces") == tokenizer_pieces(SIZES[size]):
            return info
        else:
            # An older workload whose tokenizer did not cover the model's vocabulary: only the
            # tokenizer (and the token counts) change; weights and modules stay.
            print(f"workload: rebuilding the tokenizer of {key}", file=sys.stderr)
            model_dir = Path(info["model"])
            build_tokenizer(model_dir, bbh_dir, tokenizer_pieces(SIZES[size]))
            return write_info(done, info, model_dir)
    shutil.rmtree(root, ignore_errors=True)
    model_dir, modules_dir = root / "model", root / "modules"
    model_dir.mkdir(parents=True)
    print(f"workload: building {key} in {root} (once)", file=sys.stderr)
    few_shot, test_rows = bbh_split(bbh_dir, TASK)
    write_jsonl(root / "few_shot.jsonl", few_shot)
    write_jsonl(root / "test.jsonl", test_rows)
    model = build_model(model_dir, SIZES[size], seed)
    build_tokenizer(model_dir, bbh_dir, tokenizer_pieces(SIZES[size]))
    paths = build_modules(model, model_dir, modules_dir, modules, seed + 1000)
    info = {
        "key": key, "size": size, "config": SIZES[size], "model": str(model_dir),
        "modules": paths, "few_shot": str(root / "few_shot.jsonl"),
        "test": str(root / "test.jsonl"), "task": TASK,
        "lora": {"r": LORA_R, "alpha": LORA_ALPHA, "targets": LORA_TARGETS},
        "construction": CONSTRUCTION,
    }
    return write_info(done, info, model_dir)


def write_info(done: Path, info: dict, model_dir: Path):
    rows = {name: [json.loads(l) for l in Path(info[name]).read_text().splitlines()]
            for name in ["few_shot", "test"]}
    info = {**info, "tokenizer_pieces": tokenizer_pieces(info["config"]),
            "few_shot_tokens": count_tokens(model_dir, rows["few_shot"]),
            "test_tokens": count_tokens(model_dir, rows["test"])}
    done.write_text(json.dumps(info, indent=1))
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "bench")
    ap.add_argument("--size", choices=sorted(SIZES), default="large")
    ap.add_argument("--modules", type=int, default=20)
    ap.add_argument("--bbh-dir", type=Path, default=Path(os.environ.get("LORAHUB_BBH_DIR", DEFAULT_BBH)))
    args = ap.parse_args()
    print(json.dumps(build(args.cache, args.size, args.modules, args.bbh_dir), indent=1))


if __name__ == "__main__":
    main()
