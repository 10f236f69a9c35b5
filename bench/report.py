"""Renders a benchmark run (bench/run.py) as the results table of bench/README.md.

The table sits between two marker comments in the README and is replaced on every run; the
rest of the README is prose kept by hand. `python bench/report.py` re-renders the table from
bench/results/latest.json and latest-details.json without rerunning anything.
"""
import json
import sys
from pathlib import Path

BEGIN, END = "<!-- bench-results:begin -->", "<!-- bench-results:end -->"
GOALS = {"w1": 4.0, "w2": 5.0, "rss": 0.5, "w3": 0.7}
TOLERANCE = {"bf16": "1e-2", "int8": "2e-2"}  # a fast path's objective, relative to f32


def fmt(x, digits=1):
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.{digits}f}" if abs(x) >= 10 ** -digits or x == 0 else f"{x:.2e}"
    return str(x)


def verdict(value, goal, higher_is_better=True):
    if value is None:
        return "not measured"
    met = value >= goal if higher_is_better else value <= goal
    return "**met**" if met else "not met"


def per_eval(details):
    """(reference, ours) seconds per objective evaluation. The reference's is timed inside the
    process around each loss; ours is the learn command's own optimisation time per
    evaluation (weights.json "seconds" / len(history)) or, failing that, wall / evaluations."""
    w1 = details.get("w1", {})
    ref = (w1.get("reference") or {}).get("report") or {}
    ours = (w1.get("ours") or {}) or {}
    learned = ours.get("weights") or {}
    history = learned.get("history") or []
    ours_eval = None
    if history:
        ours_eval = (learned.get("seconds") or ours.get("seconds")) / len(history)
    return ref.get("eval_s_mean"), ours_eval


def objective_rows(details):
    rows = []
    for p in (details.get("w1", {}).get("objectives") or {}).get("points", []):
        rows.append(f"| W1 objective at {p['at']} (our f32 path) | {fmt(p['reference'], 6)} |"
                    f" {fmt(p['ours'], 6)} | abs diff {fmt(p['abs_diff'], 6)} | fp32 1e-4 | |")
    s = details.get("search_objective")
    if s and s.get("compute") in TOLERANCE and s.get("relative_diff") is not None:
        rows.append(f"| W1 objective our {s['compute']} search reported at its weights | |"
                    f" {fmt(s['value'], 6)} | {s['relative_diff']:.2e} relative to our f32 path |"
                    f" {s['compute']} {TOLERANCE[s['compute']]} | |")
    return rows


def path_rows(results, details):
    """The other compute paths W1 learned on (bench/run.py --paths), then time to quality."""
    w1 = details.get("w1", {})
    ref_s = results["w1"]["reference_s"]
    rows = []
    for path, p in list((w1.get("paths") or {}).items())[1:]:
        if "seconds" not in p:
            rows.append(f"| W1 learn on {path} | | failed (exit {p.get('rc')}) | | | |")
            continue
        o = p.get("objective") or {}
        rows.append(f"| W1 learn wall time (s), ours on {path} | {fmt(ref_s)} | {fmt(p['seconds'])} |"
                    f" {fmt(ratio(ref_s, p['seconds']), 2)}x speed-up ({fmt(p['eval_s'], 2)} s per"
                    f" evaluation) | >= 4x | {verdict(ratio(ref_s, p['seconds']), GOALS['w1'])} |")
        rows.append(f"| W1 objective at our {path} weights (our f32 path) | | {fmt(o.get('fp32_value'), 6)}"
                    f" | search reported {fmt(o.get('value'), 6)} | | |")
    ttq = w1.get("time_to_quality") or {}
    target = f"the reference's final objective {fmt(ttq.get('target'), 4)}"
    for path, t in (ttq.get("paths") or {}).items():
        compute = ((w1.get("paths") or {}).get(path) or {}).get("compute", path)
        if t.get("reached"):
            # A fast path's values are its own objective: say what that point is worth on f32.
            on_f32 = ("" if compute == "fp32" or t.get("fp32_objective") is None else
                      f"; its weights score {fmt(t['fp32_objective'], 4)} on f32")
            rows.append(f"| W1 time to {target}, ours on {path}, its own values (s) |"
                        f" {fmt(ttq['reference_s'])} | {fmt(t['seconds'])} (evaluation"
                        f" {t['step']}, {fmt(t['objective'], 4)}{on_f32}) |"
                        f" {fmt(t['speedup'], 2)}x | | |")
        else:
            rows.append(f"| W1 time to {target}, ours on {path}, its own values (s) |"
                        f" {fmt(ttq['reference_s'])} | not reached in {details.get('steps')}"
                        f" steps | | | |")
        if compute == "fp32" or "fp32_reached" not in t:
            continue
        if t["fp32_reached"]:
            g = t["fp32"]
            rows.append(f"| W1 time to {target} on f32 (quality), ours on {path} (s) |"
                        f" {fmt(ttq['reference_s'])} | {fmt(g['seconds'])} (best point at"
                        f" evaluation {g['step']}: {fmt(g['fp32_objective'], 4)} on f32) |"
                        f" {fmt(g['speedup'], 2)}x | | |")
        else:
            rows.append(f"| W1 time to {target} on f32 (quality), ours on {path} (s) |"
                        f" {fmt(ttq['reference_s'])} | not reached in {details.get('steps')}"
                        f" steps (best point {fmt(t.get('best_fp32_objective'), 4)} on f32) |"
                        f" | | |")
    return rows


def ratio(a, b):
    return a / b if a is not None and b else None


def table(results, details):
    w1, w2, w3 = results["w1"], results["w2"], results["w3"]
    ref_eval, ours_eval = per_eval(details)
    d2 = details.get("w2", {})
    rss1 = (w1["ours_rss_mb"] / w1["reference_rss_mb"]
            if w1["ours_rss_mb"] and w1["reference_rss_mb"] else None)
    rss2 = (w2["ours_rss_mb"] / w2["reference_rss_mb"]
            if w2["ours_rss_mb"] and w2["reference_rss_mb"] else None)
    identical = (f"{d2['identical_predictions']}/{d2['examples']}"
                 if "identical_predictions" in d2 else "—")
    lines = [
        "| measure | reference | ours | ours vs reference | goal | |",
        "|---|---|---|---|---|---|",
        f"| W1 learn wall time (s) | {fmt(w1['reference_s'])} | {fmt(w1['ours_s'])} |"
        f" {fmt(w1['speedup'], 2)}x speed-up | >= 4x | {verdict(w1['speedup'], GOALS['w1'])} |",
        f"| W1 time per objective evaluation (s) | {fmt(ref_eval, 2)} | {fmt(ours_eval, 2)} |"
        f" {fmt(ref_eval / ours_eval if ref_eval and ours_eval else None, 2)}x | | |",
        f"| W1 peak RSS (MiB) | {fmt(w1['reference_rss_mb'], 0)} | {fmt(w1['ours_rss_mb'], 0)} |"
        f" {fmt(rss1, 2)}x | <= 0.5x | {verdict(rss1, GOALS['rss'], False)} |",
        *objective_rows(details),
        *path_rows(results, details),
        f"| W2 generate wall time (s) | {fmt(w2['reference_s'])} | {fmt(w2['ours_s'])} |"
        f" {fmt(w2['speedup'], 2)}x speed-up | >= 5x | {verdict(w2['speedup'], GOALS['w2'])} |",
        f"| W2 tokens/s | {fmt(d2.get('reference_tokens_per_s'))} | {fmt(d2.get('ours_tokens_per_s'))} |"
        f" | | |",
        f"| W2 peak RSS (MiB) | {fmt(w2['reference_rss_mb'], 0)} | {fmt(w2['ours_rss_mb'], 0)} |"
        f" {fmt(rss2, 2)}x | <= 0.5x | {verdict(rss2, GOALS['rss'], False)} |",
        f"| W2 predictions identical to the reference | | {identical} | | | |",
        *w3_rows(results, details),
    ]
    return lines


def w3_rows(results, details):
    """One row per forward path against its own dtype's peak (oneDNN, same run); the headline
    (the fastest forward, results["w3"]) first."""
    w3, d3 = results["w3"], details.get("w3", {})
    peaks, forwards = d3.get("peaks") or {}, d3.get("forwards") or {}
    rows = [f"| W3 forward pass GFLOP/s ({w3['dtype'] or '—'}, fastest) | matmul peak"
            f" {fmt(w3['peak_gflops'])} | {fmt(w3['gflops'])} | {fmt(w3['fraction'], 2)} of peak |"
            f" >= 0.7 | {verdict(w3['fraction'], GOALS['w3'])} |"]
    for dtype, f in forwards.items():
        if dtype == w3["dtype"]:
            continue
        peak = (peaks.get(dtype) or {}).get("gflops")
        fraction = ratio(f["gflops"], peak)
        rows.append(f"| W3 forward pass GFLOP/s ({dtype}) | matmul peak {fmt(peak)} |"
                    f" {fmt(f['gflops'])} | {fmt(fraction, 2)} of peak | >= 0.7 |"
                    f" {verdict(fraction, GOALS['w3'])} |")
    return rows


def w3_detail(details):
    w3 = details.get("w3", {})
    parts = [f"{p['dtype']} peak {p['gflops']:.1f} GFLOP/s ({p['library']}"
             + (f", isa {p['isa']}" if p.get("isa") else "") + f", n={p['size']})"
             for p in (w3.get("peaks") or {}).values() if "gflops" in p]
    fractions = w3.get("fractions") or {}
    parts += [f"forward {f['dtype']} {f['gflops']:.1f} GFLOP/s ({f['seconds']:.3f} s per"
              f" {f['examples']}-example batch"
              + (f", {fractions[d]:.2f} of the {d} peak" if fractions.get(d) else "") + ")"
              for d, f in (w3.get("forwards") or {}).items()]
    return "; ".join(parts) or "not measured"


def env_line(details):
    return " ".join(f"{k}={'(unset)' if v is None else v}" for k, v in details.get("env", {}).items())


def render(results, details):
    loads = details.get("load_average_1min", [])
    missing = details.get("missing", [])
    lines = [
        BEGIN,
        f"Run **{results['date']}** on **{results['machine']}**"
        f" (avx512_bf16: {details.get('machine', {}).get('avx512_bf16')}),"
        f" command `{details.get('command', 'scripts/bench.sh')}`, model size `{details.get('size')}`,"
        f" {details.get('steps')} steps, total {fmt(details.get('total_s'), 0)} s, environment of"
        f" both sides: {env_line(details)}.",
        "",
        *table(results, details),
        "",
        f"W3 detail: {w3_detail(details)}.",
        "",
        "1-minute load average at the start and after W1, W2, W3: "
        + ", ".join(f"{l:.1f}" for l in loads)
        + f" on {details.get('machine', {}).get('cores')} cores (the machine is shared; the"
        " others' work slows both sides alike, and best-of timings are used where we repeat).",
    ]
    if missing:
        lines += ["", "Missing in this run: " + "; ".join(missing) + "."]
    lines += [f"", *[f"Note: {n}" for n in details.get("notes", [])]] if details.get("notes") else []
    lines += [END]
    return "\n".join(lines)


def update_readme(readme: Path, results, details):
    text = readme.read_text() if readme.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + render(results, details) + tail)


def main():
    results_path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results" / "latest.json"
    details_path = results_path.with_name(results_path.stem + "-details.json")
    update_readme(Path(__file__).parent / "README.md", json.loads(results_path.read_text()),
                  json.loads(details_path.read_text()))


if __name__ == "__main__":
    main()
