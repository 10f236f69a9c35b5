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


def split_targets(data_dir, task, max_test):
    """(few-shot targets, test targets) of our split (DESIGN §1): examples ordered by SHA-256 of
    the input, the first 5 few-shot, the rest test (the first max_test of them)."""
    with open(os.path.join(data_dir, "tasks", task + ".json"), encoding="utf-8") as f:
        examples = json.load(f)["examples"]
    examples.sort(key=lambda e: hashlib.sha256(e["input"].encode("utf-8")).hexdigest())
    test = examples[5:]
    return [e["target"] for e in examples[:5]], [e["target"] for e in (test[:max_test] if max_test else test)]


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
    _, targets = split_targets(data_dir, task, max_test)
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


def constant_answer_table(tasks, out_dir, data_dir, max_test):
    """Markdown rows: what answering one thing every time scores per task — the few-shot
    majority floor (a method: it uses only the 5 examples; computed by `lorahub bbh`, eval/bbh.h,
    read from OUT/results.json: on a tie, the mean of the tied answers) and the test majority (an
    oracle: it peeks at the test answers). A method must clear them to show it learned more than
    the answer format."""
    with open(os.path.join(out_dir, "results.json"), encoding="utf-8") as f:
        floors = {t["task"]: t["few_shot_majority"] for t in json.load(f)["tasks"]}
    rows = ["| task | few-shot majority answer | its accuracy (floor) | test majority (oracle) | its accuracy |",
            "|---|---|---:|---|---:|"]
    few_scores, test_scores = [], []
    for task in tasks:
        _, test = split_targets(data_dir, task, max_test)
        test_answer, test_count = collections.Counter(normalize(t) for t in test).most_common(1)[0]
        few_scores.append(floors[task]["accuracy"])
        test_scores.append(100 * test_count / len(test))
        short = lambda a: a if len(a) <= 16 else a[:13] + "..."
        tied = floors[task]["answers"]
        few_answer = " / ".join(short(a) for a in tied) if len(tied) <= 2 else f"{len(tied)} tied"
        rows.append(f"| {task} | {few_answer} | {few_scores[-1]:.1f} | {short(test_answer)} |"
                    f" {test_scores[-1]:.1f} |")
    mean = lambda xs: sum(xs) / len(xs)
    rows.append(f"| **average** | | **{mean(few_scores):.1f}** | | **{mean(test_scores):.1f}** |")
    print("\n".join(rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/bbh-smollm2", help="the --out folder of `lorahub bbh`")
    parser.add_argument("--data-dir", default="../shared/data/bbh")
    parser.add_argument("--tasks", required=True, help="comma-separated task names")
    parser.add_argument("--max-test", type=int, default=50)
    parser.add_argument("--constant-answer", action="store_true",
                        help="print only the constant-answer table (the floor from OUT/results.json)")
    args = parser.parse_args()
    if args.constant_answer:
        constant_answer_table(args.tasks.split(","), args.out, args.data_dir, args.max_test)
        return
    for task in args.tasks.split(","):
        try:
            describe_task(task, args.out, args.data_dir, args.max_test)
        except (OSError, KeyError, ValueError) as error:
            sys.exit(f"bbh_analysis: {task}: {error}")


if __name__ == "__main__":
    main()
