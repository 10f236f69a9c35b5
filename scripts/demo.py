#!/usr/bin/env python3
"""The main job on an embedded default: LoraHub learning + inference, end to end.

Until the trained module library exists, the default is SMALL AND SYNTHETIC: a tiny T5 and six
LoRA modules that scripts/make_demo_modules.py trains here with PEFT on word-manipulation tasks
(copy, reverse, sort, first, last, drop_first). LoraHub gets 5 examples of one task, without
saying which, and the whole pool; it has to find the composition from those 5 examples.
The demo shows the base model's zero-shot accuracy, learns with live progress, then generates
with the learned adapter. Numbers on this toy say nothing about BBH; see `lorahub bbh` for that.

Usage: scripts/demo.py [--workdir .cache/demo] [--steps 40] [--optimizer cobyla] [--rebuild]
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(cmd, capture=False):
    print("$ " + " ".join(str(c) for c in cmd), flush=True)
    result = subprocess.run([str(c) for c in cmd], text=True,
                            stdout=subprocess.PIPE if capture else None)
    if result.returncode != 0:
        sys.exit(f"demo: command failed with exit code {result.returncode}")
    return result.stdout


def accuracy_run(lorahub, model, data, adapter=None):
    cmd = [lorahub, "generate", "--model", model, "--data", data, "--max-new-tokens", 16, "--json"]
    if adapter:
        cmd += ["--lora", adapter]
    return json.loads(run(cmd, capture=True))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", type=Path, default=ROOT / ".cache" / "demo")
    ap.add_argument("--lorahub", type=Path, default=ROOT / "build" / "bin" / "lorahub")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--optimizer", default="cobyla")
    ap.add_argument("--target", default="sort")
    ap.add_argument("--quick", action="store_true", help="train the default briefly (tests)")
    ap.add_argument("--rebuild", action="store_true", help="retrain the synthetic default")
    args = ap.parse_args()
    work = args.workdir
    print("=" * 78)
    print("lorahub demo: SMALL SYNTHETIC DEFAULT (a tiny T5 + 6 LoRA modules trained here on\n"
          "word-manipulation tasks). The real module library is not used by this demo yet.")
    print("=" * 78, flush=True)
    if args.rebuild or not (work / "target.txt").exists() or \
            (work / "target.txt").read_text().strip() != args.target:
        env_threads = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
        os.environ.update(env_threads)
        cmd = [sys.executable, ROOT / "scripts" / "make_demo_modules.py", "--out", work,
               "--target", args.target] + (["--quick"] if args.quick else [])
        run(cmd)
    model, examples, test = work / "t5", work / "examples.jsonl", work / "test.jsonl"
    print(f"\ntarget task: '{args.target}' (LoraHub is not told); 5 examples:")
    for line in examples.read_text().splitlines():
        row = json.loads(line)
        print(f"  {row['input']!r:40} -> {row['output']!r}")

    print("\n[1/3] zero-shot: the base model, no modules", flush=True)
    zero = accuracy_run(args.lorahub, model, test)
    print(f"zero-shot accuracy on {len(zero['predictions'])} test inputs: {zero['accuracy']:.1f}%")

    print(f"\n[2/3] lorahub learn: {args.optimizer}, {args.steps} evaluations", flush=True)
    out = work / "learned"
    run([args.lorahub, "learn", "--model", model, "--lora-list", work / "modules.txt",
         "--examples", examples, "--steps", args.steps, "--optimizer", args.optimizer,
         "--out", out, "--overwrite"])
    summary = json.loads((out / "weights.json").read_text())
    print("learned weights:")
    for path, w in zip(summary["modules"], summary["weights"]):
        print(f"  {Path(path).name:12} {w:+.3f}")

    print("\n[3/3] lorahub generate with the learned adapter", flush=True)
    learned = accuracy_run(args.lorahub, model, test, adapter=out)
    rows = [json.loads(l) for l in test.read_text().splitlines()]
    for row, pred in list(zip(rows, learned["predictions"]))[:5]:
        print(f"  {row['input']!r:40} -> {pred!r} (expected {row['output']!r})")
    print(f"\naccuracy on {len(rows)} test inputs: zero-shot {zero['accuracy']:.1f}% -> "
          f"LoraHub {learned['accuracy']:.1f}%  (adapter in {out})")
    print("(a small synthetic default: shows the pipeline works end to end, not BBH quality)")


if __name__ == "__main__":
    main()
