"""The reference side of the SmolLM2 learning benchmark: lorahub 0.1.0's algorithm on a causal LM.

lorahub.algorithm only loads Seq2Seq models, so this file does what lorahub_learning does, step
for step, with AutoModelForCausalLM: same seeds (random, numpy), the base model wrapped by
PeftModel.from_pretrained(first module), one cached state dict per module, the objective
lorahub.algorithm.get_score (which composes the cache with the weights, loads the result with
set_peft_model_state_dict, and adds default_l1_regularization = 0.05·mean|w|), and NGOpt over
ng.p.Array(init 0, bounds ±1.5) with budget = steps. Two deliberate differences:

  * the loss is our decoder-only convention (DESIGN §3, src/models/llama.cpp make_example):
    ids(input) with the tokenizer's default special tokens + ids(" " + output) without them +
    EOS (<|im_end|>, id 2); labels -100 on the input and on padding; one right-padded batch of
    all examples with an attention mask; loss = model(...).loss (token mean over the batch)
    divided by the number of examples, as default_get_loss does;
  * each cached state dict is cloned: in lorahub 0.1.0 the last module's cache aliases the live
    adapter (see src/adapt/objective.h), which makes its objective history-dependent.

Each subcommand is one process, so the caller measures its wall time and peak RSS.

  learn  NGOpt search; reports load seconds, loop seconds, per-evaluation seconds, weights.
  score  The objective at given weight vectors (a fresh process, so a fresh de-aliased cache).

Usage: python bench/reference_causal.py learn --gguf F --modules M... --examples few.jsonl
                                              --steps 40 --threads 2 --report R.json
       python bench/reference_causal.py score --gguf F --modules M... --examples few.jsonl
                                              --weights W.json --threads 2 --report R.json
"""
import time

START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy  # noqa: E402
import torch  # noqa: E402
from lorahub import algorithm  # noqa: E402

EOS_ID = 2  # <|im_end|>; transformers' GGUF converter copies BOS into the tokenizer's EOS


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def load_model_and_cache(gguf: str, modules):
    """As load_base_model_and_lora_modules, for a causal LM from a GGUF file, cache cloned."""
    from peft import PeftModel
    from peft.utils.save_and_load import get_peft_model_state_dict
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = dict(gguf_file=os.path.basename(gguf))
    base = AutoModelForCausalLM.from_pretrained(os.path.dirname(gguf), dtype=torch.float32, **kw)
    tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(gguf), **kw)
    model = PeftModel.from_pretrained(base, modules[0]).eval()
    cache = {}
    for module in modules:
        loaded = PeftModel.from_pretrained(base, module)
        cache[module] = {k: v.detach().clone() for k, v in get_peft_model_state_dict(loaded).items()}
        first = cache[modules[0]]
        if any(first[k].shape != v.shape for k, v in cache[module].items()):
            raise SystemExit(f"{module}: LoRA shapes differ from {modules[0]}")
    return model, tokenizer, cache


def build_batch(tokenizer, rows):
    """One right-padded batch: input ids, attention mask, labels only on output + EOS."""
    seqs, labels = [], []
    for row in rows:
        prompt = tokenizer(row["input"]).input_ids
        answer = tokenizer(" " + row["output"], add_special_tokens=False).input_ids + [EOS_ID]
        seqs.append(prompt + answer)
        labels.append([-100] * len(prompt) + answer)
    width = max(len(s) for s in seqs)
    pad = lambda xs, value: [x + [value] * (width - len(x)) for x in xs]  # noqa: E731
    return {"input_ids": torch.tensor(pad(seqs, EOS_ID)),
            "attention_mask": torch.tensor(pad([[1] * len(s) for s in seqs], 0)),
            "labels": torch.tensor(pad(labels, -100)),
            "examples": len(rows)}


class CausalLoss:
    """default_get_loss for our batch: the batch's token-mean CE / number of examples. Timed."""

    def __init__(self):
        self.seconds = []

    def __call__(self, batch, model, batch_size):
        t0 = time.perf_counter()
        tensors = {k: v for k, v in batch.items() if k != "examples"}
        with torch.no_grad():
            loss = float(model(**tensors).loss.float()) / batch["examples"]
        self.seconds.append(time.perf_counter() - t0)
        return loss


def setup(args):
    torch.set_num_threads(args.threads)
    model, tokenizer, cache = load_model_and_cache(args.gguf, args.modules)
    batch = build_batch(tokenizer, read_jsonl(args.examples))
    loss = CausalLoss()
    score = partial(algorithm.get_score, model=model, cache=cache, example_dataset=batch,
                    batch_size=None, get_loss=loss, get_regular=algorithm.default_l1_regularization)
    return score, loss, cache


def learn(args):
    import nevergrad as ng

    random.seed(args.seed)  # as lorahub_learning
    numpy.random.seed(args.seed)
    score, loss, cache = setup(args)
    load_s = time.perf_counter() - START
    n = len(args.modules)
    t0 = time.perf_counter()
    instrum = ng.p.Array(init=[0] * n, upper=[1.5] * n, lower=[-1.5] * n)
    optimizer = ng.optimizers.NGOpt(parametrization=instrum, budget=args.steps)
    recommendation = optimizer.minimize(score)
    weights = [float(w) for w in recommendation.value]
    # lorahub_learning composes the final adapter; part of its timed work.
    algorithm.set_peft_model_state_dict(score.keywords["model"],
                                        algorithm.get_final_weights(weights, args.modules, cache))
    loop_s = time.perf_counter() - t0
    return {"load_s": load_s, "loop_s": loop_s, "total_s": time.perf_counter() - START,
            "evaluations": len(loss.seconds), "eval_s": loss.seconds,
            "eval_s_mean": sum(loss.seconds) / max(1, len(loss.seconds)), "weights": weights}


def score_at(args):
    score, _, _ = setup(args)
    points = json.loads(Path(args.weights).read_text())
    return {"objectives": [float(score(w)) for w in points]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["learn", "score"])
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--modules", nargs="+", required=True)
    ap.add_argument("--examples", required=True)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", help="score: JSON list of weight vectors")
    ap.add_argument("--report", required=True)
    args = ap.parse_args()
    report = learn(args) if args.command == "learn" else score_at(args)
    Path(args.report).write_text(json.dumps(report))


if __name__ == "__main__":
    main()
