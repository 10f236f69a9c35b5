"""Weights stay small in memory: SmolLM2-135M (Q4_1 GGUF) loaded with --bf16 peaks at most 1.15x
its bf16 weight bytes (no model-wide f32 copy; tied LM head shares the embedding)."""
import subprocess

import numpy as np

from conftest import lorahub_bin
from test_llama import smollm2_gguf, write_jsonl


def peak_rss_bytes(args):
    """GNU time's %M (ru_maxrss of a child forked from the small `time` process: one forked from
    this Python would report Python's own resident set, inherited across exec)."""
    proc = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb=%M", lorahub_bin(), *map(str, args)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    line = [l for l in proc.stderr.splitlines() if l.startswith("maxrss_kb=")][-1]
    return int(line.split("=")[1]) * 1024


def test_smollm2_bf16_peak_rss_within_bound(tmp_path):
    import gguf
    path = smollm2_gguf()
    params = sum(int(np.prod(t.shape)) for t in gguf.GGUFReader(path).tensors)
    bf16_bytes = 2 * params
    data = write_jsonl(tmp_path / "d.jsonl", [{"input": "The capital of France is", "output": "Paris"}])
    peak = peak_rss_bytes(["score", "--model", path, "--data", data, "--bf16", "--threads", 2])
    print(f"peak RSS {peak / 2**20:.1f} MiB for {bf16_bytes / 2**20:.1f} MiB of bf16 weights "
          f"({peak / bf16_bytes:.3f}x)")
    assert peak <= 1.15 * bf16_bytes
