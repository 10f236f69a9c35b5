"""The T5 workload's tolerance measurement (bench/README.md, "T5 tolerance workload"): on a
workload built by bench/workload.py, the statistics of tiny_models.t5_statistics (f32 CE,
attention entropy) at w = 0 and at a box point, and `lorahub objective` at the box points of
tiny_models.box_points on f32, --bf16, --int8 and on f32 with the weights rounded per row to
16 bits (a copy of the model, so use a small size). Prints JSON.

Usage: python bench/t5_tolerance.py --workload .cache/bench/small-m20-s0 [--no-stats]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "parity"))
from tiny_models import (box_points, compose_into, objective_args, objectives_of,  # noqa: E402
                         relative_errors, t5_statistics, write_rounded_copy)

BIN = os.environ.get("LORAHUB_BIN", str(ROOT / "build" / "bin" / "lorahub"))


def objectives(info, points, *flags, model=None):
    cmd = [BIN, *objective_args(model or info["model"], info["modules"], info["few_shot"], points,
                                *flags)]
    return objectives_of(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", type=Path, required=True)
    ap.add_argument("--no-stats", action="store_true")
    args = ap.parse_args()
    info = json.loads((args.workload / "workload.json").read_text())
    info.update(model=str(args.workload / "model"), few_shot=str(args.workload / "few_shot.jsonl"),
                modules=[str(args.workload / "modules" / Path(m).name) for m in info["modules"]])
    points = box_points(len(info["modules"]))
    result = {"construction": info.get("construction"), "points": points}
    if not args.no_stats:
        from transformers import T5ForConditionalGeneration, T5Tokenizer
        tok = T5Tokenizer.from_pretrained(info["model"])
        rows = [json.loads(l) for l in Path(info["few_shot"]).read_text().splitlines()]
        for name, w in [("w0", None), ("box1", [float(x) for x in points[1].split(",")])]:
            model = T5ForConditionalGeneration.from_pretrained(info["model"], attn_implementation="eager").eval()
            if w:
                compose_into(model, info["modules"], w)
            result[f"stats_{name}"] = t5_statistics(model, rows, tok)
            del model
    f32 = objectives(info, points)
    result["f32"] = f32
    with tempfile.TemporaryDirectory(dir=args.workload) as tmp:
        w16 = objectives(info, points, model=write_rounded_copy(Path(info["model"]), Path(tmp), 32767))
    for name, vals in [("w16", w16), ("bf16", objectives(info, points, "--bf16")),
                       ("int8", objectives(info, points, "--int8"))]:
        result[name] = relative_errors(f32, vals)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
