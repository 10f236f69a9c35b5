"""The reference side of the benchmark: the official LoraHub code (PyPI `lorahub` 0.1.0) on the CPU.

Each subcommand is one process so that the harness measures its own wall time and peak RSS.
Timing starts before the heavy imports: what a user of the reference waits for.

  learn    W1: lorahub.algorithm.lorahub_learning (imports, model + module loading, NGOpt search);
           saves the composed adapter of its recommendation as a PEFT directory.
  score    The reference objective (algorithm.get_score) at given weight vectors.
  merge    The composed adapter merged into the base model, saved as a model directory.
  generate W2: lorahub_inference (batch 10, max_new_tokens 256) with a composed adapter merged
           into the base model (as lorahub_learning returns it).

Usage: python bench/reference.py learn WORKLOAD.json --steps 40 --report R.json --adapter-out DIR
       python bench/reference.py score WORKLOAD.json --weights W.json... --report R.json
       python bench/reference.py generate WORKLOAD.json --adapter DIR --data TEST.jsonl --report R.json
"""
import time

START = time.time()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from lorahub import algorithm  # noqa: E402


def read_jsonl(path):
    return [json.loads(l) for l in Path(path).read_text().splitlines() if l.strip()]


class TimedLoss:
    """Wraps the reference's default_get_loss to time each objective evaluation."""

    def __init__(self):
        self.seconds = []

    def __call__(self, dataset, model, batch_size):
        t0 = time.time()
        loss = algorithm.default_get_loss(dataset, model, batch_size)
        self.seconds.append(time.time() - t0)
        return loss


def save_adapter(state_dict, module_dir: str, out: Path):
    """A composed adapter as a PEFT directory: the first module's config + the composed tensors."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    (out / "adapter_config.json").write_text(Path(module_dir, "adapter_config.json").read_text())
    tensors = {k: v.detach().contiguous() for k, v in state_dict.items()}
    save_file(tensors, str(out / "adapter_model.safetensors"))


def learn(work, args):
    rows = read_jsonl(work["few_shot"])
    timed = TimedLoss()
    weights, _, _ = algorithm.lorahub_learning(
        work["modules"], [r["input"] for r in rows], [r["output"] for r in rows], args.steps,
        model_name_or_path=work["model"], get_loss=timed)
    learn_s = time.time() - START
    weights = [float(w) for w in weights]
    # Composing again from the saved modules costs seconds, outside the timed part.
    cache = {m: _adapter_tensors(m) for m in work["modules"]}
    save_adapter(algorithm.get_final_weights(weights, work["modules"], cache), work["modules"][0],
                 args.adapter_out)
    (args.adapter_out / "weights.json").write_text(json.dumps({"weights": weights}))
    return {"seconds": learn_s, "evaluations": len(timed.seconds),
            "eval_s_mean": sum(timed.seconds) / max(1, len(timed.seconds)),
            "eval_s": timed.seconds, "weights": weights}


def _adapter_tensors(module_dir):
    """A module's state dict with the keys get_peft_model_state_dict gives (no adapter name)."""
    from safetensors.torch import load_file

    return load_file(str(Path(module_dir, "adapter_model.safetensors")))


def score(work, args):
    rows = read_jsonl(work["few_shot"])
    model, tokenizer, cache = algorithm.load_base_model_and_lora_modules(work["modules"], work["model"])
    # The reference's cache entry for the LAST module aliases the live LoRA parameters (each
    # PeftModel.from_pretrained on the same base model replaces the "default" adapter), so every
    # get_score overwrites that module with the previous composition and lorahub_learning's
    # objective depends on its history. Cloning gives the objective DESIGN §1.3 defines, the
    # same for any order of evaluations.
    cache = {m: {k: v.detach().clone() for k, v in sd.items()} for m, sd in cache.items()}
    dataset = algorithm.load_dataset([r["input"] for r in rows], [r["output"] for r in rows], tokenizer)
    results = []
    for path in args.weights:
        weights = json.loads(Path(path).read_text())["weights"]
        objective = algorithm.get_score(weights, model, cache, dataset, None,
                                        algorithm.default_get_loss, algorithm.default_l1_regularization)
        results.append({"weights_file": str(path), "weights": weights, "objective": objective})
    return {"seconds": time.time() - START, "scores": results}


class CountingGenerate:
    """Wraps model.generate to count the tokens each sequence generated (up to its EOS)."""

    def __init__(self, model, eos_id):
        self.model, self.eos_id, self.tokens = model, eos_id, []
        self.generate = model.generate

    def __call__(self, *a, **k):
        out = self.generate(*a, **k)
        for row in out[:, 1:].tolist():  # column 0 is the decoder start token
            self.tokens.append(row.index(self.eos_id) + 1 if self.eos_id in row else len(row))
        return out


def generate(work, args):
    from peft import PeftModel
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    rows = read_jsonl(args.data or work["test"])
    tokenizer = AutoTokenizer.from_pretrained(work["model"])
    base = AutoModelForSeq2SeqLM.from_pretrained(work["model"])
    model = PeftModel.from_pretrained(base, str(args.adapter)).merge_and_unload().eval()
    counter = CountingGenerate(model, tokenizer.eos_token_id)
    model.generate = counter
    predictions, accuracy = algorithm.lorahub_inference(
        [r["input"] for r in rows], model, tokenizer, args.batch_size, [r["output"] for r in rows])
    return {"seconds": time.time() - START, "predictions": predictions, "accuracy": accuracy,
            "generated_tokens": sum(counter.tokens), "examples": len(rows)}


def merge(work, args):
    """The composed adapter merged into the base model and saved as an HF model directory."""
    import shutil

    from peft import PeftModel
    from transformers import AutoModelForSeq2SeqLM

    base = AutoModelForSeq2SeqLM.from_pretrained(work["model"])
    model = PeftModel.from_pretrained(base, str(args.adapter)).merge_and_unload()
    model.save_pretrained(str(args.out), safe_serialization=True)
    for name in ["spiece.model", "tokenizer.json", "tokenizer_config.json"]:
        shutil.copy2(Path(work["model"], name), args.out / name)
    return {"seconds": time.time() - START}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["learn", "score", "generate", "merge"])
    ap.add_argument("workload", type=Path)
    ap.add_argument("--report", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--adapter-out", type=Path)
    ap.add_argument("--weights", type=Path, nargs="*", default=[])
    ap.add_argument("--adapter", type=Path)
    ap.add_argument("--data", type=Path, help="generate: JSONL rows (default: the whole test set)")
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--out", type=Path, help="merge: output model directory")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    work = json.loads(args.workload.read_text())
    commands = {"learn": learn, "score": score, "generate": generate, "merge": merge}
    report = commands[args.command](work, args)
    report["threads"] = torch.get_num_threads()
    args.report.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
