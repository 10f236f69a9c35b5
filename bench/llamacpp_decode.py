"""Batch-1 decoding and prefill speed on a GGUF (SmolLM2-135M by default, --qwen: Qwen2.5-Coder
1.5B Q4_K_M from its PyPI parts, --model: any file): lorahub generate (--quantized, --bf16,
--int8, f32: --paths) against llama.cpp through llama-cpp-python on the same file and the same chat-wrapped
BBH prompts, greedy, same thread count.

    .venv/bin/python bench/llamacpp_decode.py [--prompts 10] [--max-new-tokens 32] [--threads 2]
        [--paths quantized,bf16,int8,f32] [--qwen | --model GGUF] [--rounds 1]

Ours: prefill and decoding timed inside the engine around its own calls (generate --json's
"timings": the prefill forwards, and each decoding step with the pick of its token), as llama.cpp's
are here: prefill and each decoding step timed directly (llm.eval). Both: decoding tokens/s =
(new tokens − prompts) / decode seconds (each prompt's first token comes from its prefill).
llama.cpp: greedy by argmax of the last position's logits,
stopping at llama.cpp's end-of-generation tokens (SmolLM2: <|im_end|>, <|endoftext|>) as ours does.
llama.cpp is created with use_extra_bufts=False (its AMX repacking dies with SIGILL on some VMs).
Prints one JSON object and writes bench/results/llamacpp_decode[_<model>].json, with the load average:
numbers taken on a shared machine are not quiet-machine values. --rounds N alternates the engines
N times and reports each round's ratio and their median (tokens/s and ids: the first round).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests" / "parity")]
from smollm2_generate import bbh_prompts, smollm2_gguf  # noqa: E402
from llamacpp_oracle import eog_ids, last_logits, load as llamacpp_load  # noqa: E402


def run_ours(binary, model, prompts, max_new_tokens, threads, flags):
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "p.jsonl"
        data.write_text("".join(json.dumps({"input": p}) + "\n" for p in prompts))
        cmd = [binary, "generate", "--model", model, "--chat", "--json", "--threads",
               str(threads), "--batch-size", "1", "--data", str(data), "--max-new-tokens",
               str(max_new_tokens), *flags]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, check=True, capture_output=True, text=True)
        process_s = time.perf_counter() - t0
    out = json.loads(res.stdout)
    ids, t = out["prediction_ids"], out["timings"]
    new = sum(len(i) for i in ids)
    return {"flags": " ".join(flags) or "f32", "process_s": process_s,
            "prefill_s": t["prefill_seconds"], "prompt_tokens": t["prefill_tokens"],
            "prefill_tokens_per_s": t["prefill_tokens"] / max(t["prefill_seconds"], 1e-9),
            "decode_s": t["decode_seconds"], "decode_steps": t["decode_steps"],
            "new_tokens": new,
            "decode_tokens_per_s": (new - len(prompts)) / max(t["decode_seconds"], 1e-9),
            "ids": ids}


def run_llamacpp(model, prompts, max_new_tokens, threads):
    import jinja2
    import numpy as np
    # llamacpp_oracle.load disables the extra buffer types (llama.cpp's AMX repacking crashes on
    # these VMs); Llama(use_extra_bufts=False) would be swallowed by its **kwargs unread.
    llm = llamacpp_load(model, n_ctx=4096, f32_cache=False, n_threads=threads, logits_all=False)
    eos = eog_ids(llm)
    template = jinja2.Environment().from_string(llm.metadata["tokenizer.chat_template"])
    prefill_s = decode_s = 0.0
    prompt_tokens = new = 0
    ids = []
    for p in prompts:
        text = template.render(messages=[{"role": "user", "content": p}],
                               add_generation_prompt=True)
        tokens = llm.tokenize(text.encode(), add_bos=False, special=True)
        prompt_tokens += len(tokens)
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(tokens)
        prefill_s += time.perf_counter() - t0
        out = []
        t0 = time.perf_counter()
        for step in range(max_new_tokens):
            # Not llm.scores: without logits_all llama-cpp-python no longer fills it (every step
            # read a zero row, argmax 0: 32 tokens of <|endoftext|> that never matched ours).
            tok = int(np.argmax(last_logits(llm)))
            if tok in eos:
                break
            out.append(tok)
            if step + 1 < max_new_tokens:
                llm.eval([tok])
        decode_s += time.perf_counter() - t0
        new += len(out)
        ids.append(out)
    return {"prefill_s": prefill_s, "prefill_tokens_per_s": prompt_tokens / prefill_s,
            "decode_s": decode_s, "new_tokens": new,
            "decode_tokens_per_s": (new - len(prompts)) / decode_s, "ids": ids,
            "prompt_tokens": prompt_tokens, "eog_ids": sorted(eos)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=10)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1,
                    help="alternate llama.cpp and ours this many times; ratios are the median")
    ap.add_argument("--paths", default="quantized,bf16,int8,f32",
                    help="our compute paths, comma-separated (f32 = no flag)")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--model", help="GGUF file (default: SmolLM2-135M-Instruct Q4_1)")
    which.add_argument("--qwen", action="store_true",
                       help="Qwen2.5-Coder 1.5B Q4_K_M, assembled from its PyPI parts into .cache/")
    ap.add_argument("--bin", default=str(ROOT / "build" / "bin" / "lorahub"))
    ap.add_argument("--out", help="default: bench/results/llamacpp_decode.json (SmolLM2), "
                    "llamacpp_decode_<file stem>.json for another --model")
    a = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    if a.qwen:
        from real_models import qwen25_coder_15b_gguf
        a.model = qwen25_coder_15b_gguf()
    model = a.model or smollm2_gguf()
    if a.out is None:
        suffix = "" if a.model is None else "_" + Path(model).stem
        a.out = str(ROOT / "bench" / "results" / f"llamacpp_decode{suffix}.json")
    prompts = bbh_prompts(a.prompts)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "?")
    result = {"model": os.path.basename(model), "cpu": cpu,
              "prompts": a.prompts, "max_new_tokens": a.max_new_tokens, "batch": 1,
              "threads": a.threads, "load_average_start": os.getloadavg()}
    # Rounds alternate the two engines: on a VM whose memory bandwidth moves with its neighbours'
    # load (seen: the same run 9-12 tok/s minutes apart), each ratio compares runs seconds apart.
    runs = [(run_llamacpp(model, prompts, a.max_new_tokens, a.threads),
             [run_ours(a.bin, model, prompts, a.max_new_tokens, a.threads, flags)
              for flags in ([] if p == "f32" else [f"--{p}"] for p in a.paths.split(","))])
            for _ in range(a.rounds)]
    result["load_average_end"] = os.getloadavg()
    theirs, ours = runs[0]
    result["llamacpp"] = theirs  # with its ids: the continuations that differ can be looked at
    result["llamacpp"]["decode_tokens_per_s_rounds"] = [t["decode_tokens_per_s"] for t, _ in runs]
    result["lorahub"] = []
    for i, o in enumerate(ours):
        mine = o["ids"]
        o["identical_to_llamacpp"] = sum(x == y for x, y in zip(mine, theirs["ids"]))
        o["common_prefix_tokens"] = [next((t for t, (a, b) in enumerate(zip(x, y)) if a != b),
                                          min(len(x), len(y))) for x, y in zip(mine, theirs["ids"])]
        o["decode_tokens_per_s_rounds"] = [r[i]["decode_tokens_per_s"] for _, r in runs]
        o["decode_ratio_rounds"] = [r[i]["decode_tokens_per_s"] / t["decode_tokens_per_s"]
                                    for t, r in runs]
        o["decode_ratio_to_llamacpp"] = statistics.median(o["decode_ratio_rounds"])
        o["prefill_ratio_to_llamacpp"] = statistics.median(
            r[i]["prefill_tokens_per_s"] / t["prefill_tokens_per_s"] for t, r in runs)
        result["lorahub"].append(o)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
