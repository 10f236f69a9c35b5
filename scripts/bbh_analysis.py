#!/usr/bin/env python3
"""Per-task facts behind the analysis in docs/results.md, read from a `lorahub bbh` cache.

For each task: the class balance of the test examples that were scored (what a constant answer
scores), and for every cached method and seed its accuracy, its most frequent predictions, how
many answers are empty, and (LoraHub) the largest weights with their modules. Reads only the
cache and the BBH data; computes nothing with the model.

  .venv/bin/python scripts/bbh_analysis.py --out results/bbh-smollm2 --tasks navigate,snarks
"""
import argparse
import collections
import hashlib
import json
import os
import sys


def normalize(answer):
    """The exact-match normalization of the BBH convention: strip, lower-case, drop periods."""
    return answer.strip().lower().replace(".", "")


def test_targets(data_dir, task, max_test):
    """Targets of our split's test set (DESIGN §1): order by SHA-256 of the input, skip 5."""
    with open(os.path.join(data_dir, "tasks", task + ".json"), encoding="utf-8") as f:
        examples = json.load(f)["examples"]
    examples.sort(key=lambda e: hashlib.sha256(e["input"].encode("utf-8")).hexdigest())
    test = examples[5:]
    return [e["target"] for e in (test[:max_test] if max_test else test)]


def answer_histogram(predictions, top=3):
    counts = collections.Counter(normalize(p) or "<empty>" for p in predictions)
    return ", ".join(f"{a!r}×{n}" for a, n in counts.most_common(top))


def largest_weights(result, top=3):
    pairs = zip(result.get("weights", []), result.get("modules", []))
    ranked = sorted(pairs, key=lambda p: -abs(p[0]))[:top]
    return ", ".join(f"{os.path.basename(m)} {w:+.2f}" for w, m in ranked)


def cached_runs(cache_dir, task):
    """(method label, result) for every cached result of the task, in a stable order."""
    names = sorted(n for n in os.listdir(cache_dir) if n.startswith(task + ".") and n.endswith(".json"))
    for name in names:
        label = name[len(task) + 1 : -len(".json")]
        with open(os.path.join(cache_dir, name), encoding="utf-8") as f:
            yield label, json.load(f)["result"]


def describe_task(task, out_dir, data_dir, max_test):
    targets = test_targets(data_dir, task, max_test)
    balance = collections.Counter(normalize(t) for t in targets).most_common()
    most_common, most_count = balance[0]
    print(f"## {task}: {len(targets)} test examples, {len(balance)} distinct targets")
    print(f"   most frequent {most_common!r} {most_count}× (constant answer {100 * most_count / len(targets):.0f}%),"
          f" balance: {', '.join(f'{a!r}×{n}' for a, n in balance[:6])}")
    for label, result in cached_runs(os.path.join(out_dir, "cache"), task):
        predictions = result.get("predictions", [])
        empty = sum(1 for p in predictions if not normalize(p))
        line = f"   {label:24s} {result['accuracy']:5.1f}%  {answer_histogram(predictions)}"
        if empty:
            line += f"  (empty {empty})"
        if "objective" in result:  # learned weights (uniform ones are all 1/n: nothing to show)
            line += f"  | obj {result['objective']:.3f} | {largest_weights(result)}"
        if "module" in result:
            losses = sorted(result.get("few_shot_losses", []))[:2]
            line += f"  | module {os.path.basename(result['module'])} (losses {', '.join(f'{x:.3f}' for x in losses)})"
        print(line)
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/bbh-smollm2", help="the --out folder of `lorahub bbh`")
    parser.add_argument("--data-dir", default="../shared/data/bbh")
    parser.add_argument("--tasks", required=True, help="comma-separated task names")
    parser.add_argument("--max-test", type=int, default=50)
    args = parser.parse_args()
    for task in args.tasks.split(","):
        try:
            describe_task(task, args.out, args.data_dir, args.max_test)
        except (OSError, KeyError, ValueError) as error:
            sys.exit(f"bbh_analysis: {task}: {error}")


if __name__ == "__main__":
    main()
