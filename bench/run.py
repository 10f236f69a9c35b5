"""The benchmark of issue 5: W1 (learning), W2 (inference), W3 (engine efficiency), one run.

Every side runs as its own child process; the harness measures its wall time and peak RSS
(os.wait4's ru_maxrss of that child). Both sides get all cores (OMP_NUM_THREADS = nproc).
Writes RESULTS (default bench/results/latest.json, exactly the schema of the issue), details
beside it (*-details.json: every number and command), and the table in bench/README.md.
A missing `lorahub` binary or subcommand is reported as missing, never as a crash. W3's two
programs are built first (bench_forward is not in the default build) where --bench-bin is a CMake
tree's bin/; where they cannot be built, the run stops at once with the command that builds them.

Usage: python bench/run.py [--size large|tiny] [--steps 40] [--w2-examples 100] [--skip-w2]
                           [--fp32 | --paths int8,fp32,bf16]
                           [--lorahub PATH] [--bench-bin DIR] [--results PATH] [--no-readme]
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

PY = sys.executable
# Our compute paths and the flags that select them (the order W3 times them in).
PATH_FLAGS = {"fp32": [], "bf16": ["--bf16"], "int8": ["--int8"]}


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine():
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((l.split(":", 1)[1].strip() for l in cpuinfo.splitlines()
                  if l.startswith("model name")), "unknown CPU")
    flags = next((l.split(":", 1)[1].split() for l in cpuinfo.splitlines()
                  if l.startswith("flags")), [])
    mem_kb = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines()
                  if l.startswith("MemTotal"))
    return {"cpu": model, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
            "avx512_bf16": "avx512_bf16" in flags}


def machine_line(m):
    return f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB"


def run_measured(cmd, log_path: Path, env=None):
    """Runs cmd as a child; returns wall seconds, the child's peak RSS in MiB, rc and stdout."""
    log("run: " + " ".join(map(str, cmd)))
    t0 = time.time()
    with open(log_path, "w") as err:
        proc = subprocess.Popen(list(map(str, cmd)), stdout=subprocess.PIPE, stderr=err,
                                env={**os.environ, **(env or {})}, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - t0
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        tail = log_path.read_text().strip().splitlines()[-3:]
        log(f"  exit {rc}: " + " | ".join(tail))
    return {"cmd": " ".join(map(str, cmd)), "seconds": wall, "rss_mb": usage.ru_maxrss / 1024,
            "rc": rc, "stdout": out, "log": str(log_path)}


def build_workload(cache: Path, size: str) -> dict:
    """bench/workload.py in a child process (it reads LORAHUB_BBH_DIR itself). Not in this one:
    Linux reports as a child's ru_maxrss at least the RSS its parent had when it forked (exec
    records the copied image's high-water mark), so a harness that had imported torch and built
    the 3.7 GB model itself made every side's peak RSS read 3.7 GB in the run that built it."""
    res = subprocess.run([sys.executable, str(HERE / "workload.py"), "--cache",
                          str(cache), "--size", size, "--modules", "20"],
                         check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(res.stdout)


def ratio(a, b):
    return a / b if a is not None and b else None


# W3's programs (bench/CMakeLists.txt). bench_forward is EXCLUDE_FROM_ALL: a plain build lacks it.
W3_TARGETS = ["bench_forward", "bench_matmul_peak"]


def build_w3_programs(bench_bin: Path):
    """Builds (or brings up to date) W3's programs in the CMake tree whose bin/ is bench_bin, so
    that W3 measures the engine as it is; a bench_bin outside a CMake tree is used as it is.
    Exits with the command that builds them (one line) where that fails or they are missing:
    W3 reported missing at the end of an hour's run helps nobody."""
    build = bench_bin.parent
    command = f"cmake --build {build} --target {' '.join(W3_TARGETS)}"
    if (build / "CMakeCache.txt").is_file():
        log(f"build: {command}")
        r = subprocess.run(["cmake", "--build", str(build), "--target", *W3_TARGETS],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            sys.stderr.write(r.stdout[-4000:])
            sys.exit(f"bench: W3's programs did not build (errors above): {command}")
    missing = [t for t in W3_TARGETS if not (bench_bin / t).is_file()]
    if missing:
        sys.exit(f"bench: W3 needs {' and '.join(missing)} in {bench_bin}: build with {command}")


def has_subcommand(lorahub, name):
    """True when `lorahub NAME --help` works: the binary exists and the subcommand has landed."""
    if not Path(lorahub).is_file():
        return False
    probe = subprocess.run([lorahub, name, "--help"], capture_output=True, text=True)
    return probe.returncode == 0


class Bench:
    def __init__(self, args, work, run_dir: Path):
        self.args, self.work, self.dir = args, work, run_dir
        self.details = {"missing": [], "notes": []}

    def missing(self, what):
        log(f"MISSING: {what}")
        self.details["missing"].append(what)

    def reference(self, command, *extra):
        report = self.dir / f"reference-{command}.json"
        r = run_measured([PY, HERE / "reference.py", command, self.args.workload_json,
                          "--report", report, *extra], self.dir / f"reference-{command}.log")
        r["report"] = json.loads(report.read_text()) if r["rc"] == 0 else None
        return r

    def ours(self, name, *argv):
        return run_measured([self.args.lorahub, *argv], self.dir / f"ours-{name}.log")

    def compute_flags(self, path=None):
        """The flags of one of our compute paths (default: the headline path, the first of
        --paths): bf16 and int8 are the fast paths, fp32 the reference path."""
        return PATH_FLAGS[path or self.args.paths[0]]

    # ---- W1 -------------------------------------------------------------------------------
    def learn(self, path, optimizer, out):
        """`lorahub learn` on one compute path with one optimizer; its weights.json under
        "weights"."""
        w = self.work
        r = self.ours(f"learn-{run_label(path, optimizer)}", "learn", "--model", w["model"],
                      "--lora", *w["modules"], "--examples", w["few_shot"],
                      "--steps", self.args.steps, "--seed", 42, "--optimizer", optimizer,
                      "--out", out, *self.compute_flags(path))
        r["path"], r["optimizer"], r["label"] = path, optimizer, run_label(path, optimizer)
        r["weights"] = json.loads((out / "weights.json").read_text()) if r["rc"] == 0 else None
        return r

    def w1(self):
        ours, others = None, {}
        if has_subcommand(self.args.lorahub, "learn"):
            runs = [(p, o) for o in self.args.optimizers for p in self.args.paths]
            ours = self.learn(*runs[0], self.dir / "ours-learned")
            for path, optimizer in runs[1:]:  # the others: timed and checked on f32 too
                label = run_label(path, optimizer)
                others[label] = self.learn(path, optimizer, self.dir / f"ours-learned-{label}")
        else:
            self.missing(f"{self.args.lorahub} learn (W1 ours)")
        ref_adapter = self.dir / "reference-learned"
        ref = self.reference("learn", "--steps", self.args.steps, "--adapter-out", ref_adapter)
        objectives = self.compare_objectives(ours, ref, ref_adapter)
        self.details["w1"] = {"ours": ours, "reference": ref, "objectives": objectives}
        self.details["w1"]["paths"] = self.path_summaries(ours, others)
        self.details["w1"]["time_to_quality"] = self.time_to_quality(ref, objectives)
        ref_s = ref["report"]["seconds"] if ref["report"] else None
        ours_s = ours["seconds"] if ours and ours["rc"] == 0 else None
        return {"reference_s": ref_s, "ours_s": ours_s, "speedup": ratio(ref_s, ours_s),
                "reference_rss_mb": ref["rss_mb"] if ref["report"] else None,
                "ours_rss_mb": ours["rss_mb"] if ours_s else None,
                "objective_abs_diff": objectives.get("max_abs_diff")}

    def compare_objectives(self, ours, ref, ref_adapter):
        """Both objectives at equal weights: ours' returned weights and the reference's. Ours is
        computed on the f32 reference path (`lorahub objective`), which must agree within 1e-4;
        the value the (bf16) search itself reported is recorded beside it."""
        points = []  # (label, weights file, our objective there)
        if ours and ours.get("weights"):
            self.details["search_objective"] = self.search_objective(ours)
            f32 = self.details["search_objective"]["fp32_value"]
            points.append(("our weights", self.dir / "ours-learned" / "weights.json", f32))
        if ref["report"]:
            points.append(("reference weights", ref_adapter / "weights.json",
                           self.our_objective(ref["report"]["weights"])))
        if not points:
            return {}
        scored = self.reference("score", "--weights", *[p[1] for p in points])
        result = {"points": [], "reference_score_run": {k: scored[k] for k in ("cmd", "seconds", "rc")}}
        for (label, _, ours_obj), ref_score in zip(points, (scored["report"] or {}).get("scores", [])):
            diff = abs(ours_obj - ref_score["objective"]) if ours_obj is not None else None
            result["points"].append({"at": label, "ours": ours_obj,
                                     "reference": ref_score["objective"], "abs_diff": diff})
        diffs = [p["abs_diff"] for p in result["points"] if p["abs_diff"] is not None]
        result["max_abs_diff"] = max(diffs) if diffs else None
        return result

    def search_objective(self, run):
        """The value a search reported at its weights and our f32 objective at the same weights."""
        searched = run["weights"].get("objective")
        f32 = self.our_objective(run["weights"]["weights"])
        return {"compute": run["path"], "value": searched, "fp32_value": f32,
                "relative_diff": abs(searched - f32) / abs(f32) if f32 and searched else None}

    def path_summaries(self, ours, others):
        """Per compute path: wall time, peak RSS, evaluation time and the f32 objective of the
        weights its search returned (the quality users get from that path)."""
        out = {}
        for path, run in ([(ours["label"], ours)] if ours else []) + list(others.items()):
            if run["rc"] != 0:
                out[path] = {"rc": run["rc"]}
                continue
            learned = run["weights"]
            objective = (self.details["search_objective"] if run is ours
                         else self.search_objective(run))
            out[path] = {"compute": run["path"], "optimizer": run["optimizer"],
                         "seconds": run["seconds"], "rss_mb": run["rss_mb"],
                         "search_seconds": learned.get("seconds"),
                         "eval_s": learned.get("seconds") / max(1, len(learned["history"])),
                         "objective": objective, "history": learned["history"]}
        return out

    def time_to_quality(self, ref, objectives):
        """How long each of our searches (compute path × optimizer) took to reach the
        reference's final objective (its returned weights scored by the reference, without its
        aliasing, bench/README.md), in wall time from the process start (loading included: the
        learn process's wall minus its search time, plus the search time at that evaluation), as
        a ratio to the reference's whole wall time. Two measures per search: the first
        evaluation whose own value (that path's objective) is at or below the target, with the
        f32 objective of its weights beside it; and, since quality is the f32 objective, the
        first evaluation at which the search's best point so far (what it would return if
        stopped there) scores at or below the target on our f32 path (every improving point is
        scored on f32, in one `lorahub objective` process)."""
        points = {p["at"]: p for p in objectives.get("points", [])}
        target = (points.get("reference weights") or {}).get("reference")
        ref_s = ref["report"]["seconds"] if ref["report"] else None
        result = {"target": target, "reference_s": ref_s, "paths": {}}
        if target is None:
            return result
        for label, summary in self.details["w1"]["paths"].items():
            history = summary.get("history") or []
            load_s = summary.get("seconds", 0) - (summary.get("search_seconds") or 0)
            timed = lambda h: {"step": h["step"], "objective": h["objective"],
                               "seconds": load_s + h["seconds"],
                               "speedup": ratio(ref_s, load_s + h["seconds"])}
            hit = next((h for h in history if h["objective"] is not None
                        and h["objective"] <= target), None)
            entry = {"reached": hit is not None and "seconds" in hit}
            if entry["reached"]:
                entry.update(timed(hit))
            bests = improving(history)
            f32 = self.f32_objectives(bests, summary.get("compute"))
            if f32 is not None:
                for h, v in zip(bests, f32):
                    h["fp32_objective"] = v
                if hit is not None:  # the hit improves on every value before it
                    entry["fp32_objective"] = next((h["fp32_objective"] for h in bests
                                                    if h["step"] == hit["step"]), None)
                good = next((h for h in bests if h["fp32_objective"] <= target), None)
                entry["fp32_reached"] = good is not None
                if good is not None:
                    entry["fp32"] = {**timed(good), "fp32_objective": good["fp32_objective"]}
                entry["best_fp32_objective"] = min(f32)
            result["paths"][label] = entry
        return result

    def f32_objectives(self, evaluations, compute):
        """Our f32 objective at each evaluation's weights: a f32 search's own values, else
        scored in one `lorahub objective` process. None where the history has no weights."""
        if compute == "fp32":
            return [h["objective"] for h in evaluations]
        points = [h.get("weights") for h in evaluations]
        if not points or any(p is None for p in points):
            return None
        w = self.work
        r = self.ours("objective-ttq", "objective", "--model", w["model"], "--lora",
                      *w["modules"], "--examples", w["few_shot"],
                      *[a for p in points for a in ("--weights", ",".join(map(repr, p)))])
        if r["rc"] != 0:
            return None
        return [json.loads(line)["objective"] for line in r["stdout"].splitlines() if line.strip()]

    def our_objective(self, weights):
        """Our objective at the reference's weights (`lorahub objective`, same modules and
        examples, reference-compatible loss mode)."""
        if not has_subcommand(self.args.lorahub, "objective"):
            self.missing(f"{self.args.lorahub} objective (objective at the reference's weights)")
            return None
        w = self.work
        r = self.ours("objective", "objective", "--model", w["model"], "--lora", *w["modules"],
                      "--examples", w["few_shot"], "--weights", ",".join(map(repr, weights)))
        return json.loads(r["stdout"])["objective"] if r["rc"] == 0 else None

    # ---- W2 -------------------------------------------------------------------------------
    def w2(self):
        if self.args.skip_w2:
            self.details["notes"].append("W2 skipped (--skip-w2)")
            return dict.fromkeys(["reference_s", "ours_s", "speedup", "reference_rss_mb",
                                  "ours_rss_mb"])  # the schema's keys, unmeasured
        adapter = self.dir / "reference-learned"  # both sides use the same composed adapter
        ref = self.reference("generate", "--adapter", adapter, "--data", self.work["test"],
                             "--batch-size", 10)
        ours = None
        if has_subcommand(self.args.lorahub, "generate"):
            ours = self.ours("generate", "generate", *self.composed_model_args(adapter),
                             "--data", self.work["test"], "--batch-size", 10,
                             "--max-new-tokens", 256, "--json", *self.compute_flags())
        else:
            self.missing(f"{self.args.lorahub} generate (W2 ours)")
        ref_s = ref["report"]["seconds"] if ref["report"] else None
        ours_s = ours["seconds"] if ours and ours["rc"] == 0 else None
        self.details["w2"] = {"reference": ref, "ours": ours,
                              **self.compare_generations(ref, ours, ref_s, ours_s)}
        return {"reference_s": ref_s, "ours_s": ours_s, "speedup": ratio(ref_s, ours_s),
                "reference_rss_mb": ref["rss_mb"] if ref_s else None,
                "ours_rss_mb": ours["rss_mb"] if ours_s else None}

    def composed_model_args(self, adapter):
        """--model/--lora for `lorahub generate` with the composed adapter. A build whose
        generate has no --lora yet gets the adapter merged into a model directory by PEFT
        (merge_and_unload, as the reference does; not timed)."""
        usage = subprocess.run([self.args.lorahub, "generate", "--help"], capture_output=True,
                               text=True).stdout
        if "--lora" in usage:
            return ["--model", self.work["model"], "--lora", adapter]
        merged = self.dir / "merged-model"
        self.details["notes"].append("lorahub generate has no --lora: W2 ours ran on the adapter "
                                     "merged into the base model by PEFT")
        self.reference("merge", "--adapter", adapter, "--out", merged)
        return ["--model", merged]

    def compare_generations(self, ref, ours, ref_s, ours_s):
        """Tokens/s on both sides (the reference's count of generated tokens, which both
        sides share when the predictions agree) and how many predictions are identical."""
        if not ref["report"]:
            return {}
        tokens = ref["report"]["generated_tokens"]
        out = {"generated_tokens": tokens, "reference_tokens_per_s": tokens / ref_s,
               "reference_accuracy": ref["report"]["accuracy"]}
        if ours_s:
            mine = json.loads(ours["stdout"])
            same = sum(a == b for a, b in zip(mine["predictions"], ref["report"]["predictions"]))
            out.update({"ours_tokens_per_s": tokens / ours_s, "ours_accuracy": mine.get("accuracy"),
                        "identical_predictions": same, "examples": ref["report"]["examples"]})
        return out

    # ---- W3 -------------------------------------------------------------------------------
    def w3(self):
        peak_bin = Path(self.args.bench_bin) / "bench_matmul_peak"
        forward_bin = Path(self.args.bench_bin) / "bench_forward"
        peaks = {}
        if peak_bin.is_file():
            r = run_measured([peak_bin, "--size", 4096, "--seconds", 3], self.dir / "peak.log")
            peaks = {p["dtype"]: p for p in json.loads(r["stdout"])["results"]} if r["rc"] == 0 else {}
        else:
            self.missing(f"{peak_bin} (W3 matmul peak)")
        forwards = {}
        if forward_bin.is_file():
            for dtype in PATH_FLAGS:  # every path, each against its own dtype's oneDNN peak
                flag = PATH_FLAGS[dtype]
                r = run_measured([forward_bin, "--model", self.work["model"], "--data",
                                  self.work["few_shot"], "--seconds", 10, *flag],
                                 self.dir / f"forward-{dtype}.log")
                if r["rc"] == 0:
                    forwards[dtype] = json.loads(r["stdout"])
        else:
            self.missing(f"{forward_bin} (W3 forward pass)")
        self.details["w3"] = {"peaks": peaks, "forwards": forwards}
        # Headline: the fastest forward we have, against the peak of its own dtype.
        best = max(forwards.values(), key=lambda f: f["gflops"], default=None)
        self.details["w3"]["fractions"] = {
            dtype: ratio(f["gflops"], peaks.get(dtype, {}).get("gflops"))
            for dtype, f in forwards.items()}
        if best is None:
            any_peak = peaks.get("bf16") or peaks.get("fp32")
            return {"gflops": None, "peak_gflops": any_peak and any_peak["gflops"],
                    "fraction": None, "dtype": any_peak and any_peak["dtype"]}
        peak = peaks.get(best["dtype"], {}).get("gflops")
        return {"gflops": best["gflops"], "peak_gflops": peak,
                "fraction": ratio(best["gflops"], peak), "dtype": best["dtype"]}


def run_label(path, optimizer):
    """A learn run's name: the path alone for COBYLA (the reference's optimizer), else both."""
    return path if optimizer == "cobyla" else f"{path}-{optimizer}"


def improving(history):
    """The evaluations at which the search's best value so far improved (copies)."""
    out, best = [], float("inf")
    for h in history:
        if h.get("objective") is not None and h["objective"] < best:
            best = h["objective"]
            out.append(dict(h))
    return out


def load_average():
    return os.getloadavg()


def slim(obj):
    """The details without bulky payloads: children's stdout and the predictions themselves."""
    if isinstance(obj, dict):
        return {k: (len(v) if k == "predictions" else slim(v)) for k, v in obj.items()
                if k != "stdout"}
    if isinstance(obj, list):
        return [slim(v) for v in obj]
    return obj


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="large", help="large, small or tiny (bench/workload.py)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--w2-examples", type=int, default=100)
    ap.add_argument("--skip-w2", action="store_true")
    ap.add_argument("--fp32", action="store_true",
                    help="run our side on the f32 reference path only (default: --bf16, our fast "
                         "path, with objectives checked on the f32 path)")
    ap.add_argument("--paths", default=None,
                    help="our compute paths, comma-separated (fp32, bf16, int8): W1 learns on "
                         "each, W2 runs on the first (the headline), W3 times each forward "
                         "(default: bf16; --fp32 = fp32)")
    ap.add_argument("--optimizers", default="cobyla",
                    help="our optimizers, comma-separated (cobyla, cmaes, ...): W1 learns with "
                         "each on each path; time to quality is reported for every search")
    ap.add_argument("--lorahub", default=os.environ.get("LORAHUB_BIN", str(ROOT / "build" / "bin" / "lorahub")))
    ap.add_argument("--bench-bin", default=str(ROOT / "build" / "bin"))
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "bench")
    ap.add_argument("--results", type=Path, default=HERE / "results" / "latest.json")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--command-line", default="scripts/bench.sh", help="recorded in the table")
    args = ap.parse_args()
    args.paths = (args.paths or ("fp32" if args.fp32 else "bf16")).split(",")
    args.optimizers = args.optimizers.split(",")
    for p in args.paths:
        if p not in PATH_FLAGS:
            ap.error(f"--paths: unknown path {p!r} (choose from {', '.join(PATH_FLAGS)})")
    os.environ["OMP_NUM_THREADS"] = str(os.cpu_count())
    # No wait policy is forced: the benchmark is meant for a quiet machine, where each side's
    # default is its fastest (lorahub spins briefly, GOMP_SPINCOUNT=3000; torch its own default).
    # On a shared, oversubscribed box set OMP_WAIT_POLICY=PASSIVE for both (bench/README.md).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    build_w3_programs(Path(args.bench_bin))  # before the workload: a failure costs nothing yet
    started = datetime.datetime.now(datetime.timezone.utc)
    loads = [load_average()]
    log(f"workload ({args.size}); built once into {args.cache}")
    work = build_workload(args.cache, args.size)
    run_dir = args.cache / "runs" / started.strftime("%Y%m%dT%H%M%S")
    run_dir.mkdir(parents=True)
    # W2 runs on the first --w2-examples rows of the test set (the whole set is 245 rows).
    w2_rows = Path(work["test"]).read_text().splitlines(keepends=True)[: args.w2_examples]
    (run_dir / "test.jsonl").write_text("".join(w2_rows))
    work = {**work, "test": str(run_dir / "test.jsonl")}
    args.workload_json = Path(work["model"]).parent / "workload.json"
    if Path(args.lorahub).is_file():  # a private copy: a rebuild during the run changes nothing
        shutil.copy2(args.lorahub, run_dir / "lorahub")
        args.lorahub = str(run_dir / "lorahub")
    bench = Bench(args, work, run_dir)

    results = {"date": started.strftime("%Y-%m-%d %H:%M UTC"), "machine": machine_line(machine())}
    empty = {"w1": ["reference_s", "ours_s", "speedup", "reference_rss_mb", "ours_rss_mb",
                    "objective_abs_diff"],
             "w2": ["reference_s", "ours_s", "speedup", "reference_rss_mb", "ours_rss_mb"],
             "w3": ["gflops", "peak_gflops", "fraction", "dtype"]}
    for name in ["w1", "w2", "w3"]:
        log(f"=== {name.upper()}")
        try:
            results[name] = getattr(bench, name)()
        except Exception as e:  # one broken workload must not cost the others' numbers
            log(f"{name} FAILED: {e!r}")
            bench.details["missing"].append(f"{name} (harness error: {e!r})")
            results[name] = dict.fromkeys(empty[name])
        loads.append(load_average())
        log(f"{name}: {json.dumps(results[name])}")

    details = {**bench.details, "machine": machine(), "size": args.size, "steps": args.steps,
               "workload": work, "run_dir": str(run_dir), "command": args.command_line,
               "load_average_1min": [l[0] for l in loads],
               "env": {k: os.environ.get(k) for k in ["OMP_NUM_THREADS", "OMP_WAIT_POLICY"]},
               "total_s": (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    details_path = args.results.with_name(args.results.stem + "-details.json")
    details = slim(details)
    details_path.write_text(json.dumps(details, indent=1, default=str) + "\n")
    log(f"wrote {args.results} and {details_path}")
    if not args.no_readme:
        import report
        report.update_readme(HERE / "README.md", results, details)
        log(f"updated {HERE / 'README.md'}")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
