"""Writes examples of one task as JSON lines: python -m lorahub_tasks TASK [--count N] [--seed S].

Each line is {"input": "<instruction>\\n\\nQ: <question>\\nA:", "output": "<answer>"}, the
examples.jsonl layout the lorahub CLI reads. `--list` prints the tasks, held-out ones marked.
"""
import argparse
import json
import sys

from . import TASKS, generate


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lorahub_tasks", description=__doc__)
    parser.add_argument("task", nargs="?")
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--list", action="store_true", help="list the tasks and exit")
    args = parser.parse_args(argv)
    if args.list or not args.task:
        for name, task in TASKS.items():
            print(f"{name}{'  (held out)' if task.held_out else ''}\t{task.instruction}")
        return 0
    if args.task not in TASKS:
        parser.error(f"unknown task {args.task!r}; see --list")
    for example in generate(args.task, args.count, args.seed):
        print(json.dumps({"input": example["input"], "output": example["target"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
