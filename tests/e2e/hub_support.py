"""Helpers for the hub tests: a running `lorahub hub serve` on a free loopback port, tokens,
tiny PEFT LoRA adapters written with numpy (fast; the PEFT tests make real ones with torch),
and raw pushes for the tests that must send what our client never would."""
import hashlib
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from safetensors.numpy import save_file

from conftest import lorahub_bin, run_lorahub

BASE_MODEL = "lorahub-test/tiny-t5"


def stop_process(proc, grace=10):
    """Ends a server process: SIGTERM, then SIGKILL after `grace` seconds; returns its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


class ServerProcess:
    """A lorahub server subcommand on a free loopback port (it prints "... on http://HOST:PORT"
    once it listens); stop() ends it (SIGTERM, then SIGKILL after `stop_timeout` s)."""

    def __init__(self, args, env=None, stop_timeout=10):
        self.stop_timeout = stop_timeout
        self.proc = subprocess.Popen(
            [lorahub_bin(), *map(str, args)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})})
        line = self.proc.stdout.readline()  # the server prints its URL once it listens
        if "http://" not in line:
            self.proc.kill()
            raise AssertionError(f"server did not start: {line!r} {self.proc.stderr.read()}")
        self.url = line.split(" on ")[1].split()[0]
        self.http = httpx.Client(base_url=self.url, timeout=60)

    def stop(self):
        self.http.close()
        return stop_process(self.proc, self.stop_timeout)

    def kill9(self):
        self.http.close()
        self.proc.kill()
        self.proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Hub(ServerProcess):
    """A `lorahub hub serve` process."""

    def __init__(self, root, *extra, env=None):
        self.root = Path(root)
        super().__init__(["hub", "serve", "--root", root, "--port", "0", *extra], env=env)


def create_token(root, user, *extra):
    return run_lorahub("hub", "token", "create", "--root", root, "--user", user, *extra).stdout.strip()


def make_adapter(folder, rank=4, alpha=8, seed=0, targets=("q", "v"), base=BASE_MODEL,
                 layers=1, d_model=16):
    """A PEFT LoRA adapter for a T5 with `layers` encoder layers, written without torch."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in range(layers):
        for t in targets:
            key = f"base_model.model.encoder.block.{layer}.layer.0.SelfAttention.{t}"
            tensors[f"{key}.lora_A.weight"] = rng.standard_normal((rank, d_model)).astype(np.float32)
            tensors[f"{key}.lora_B.weight"] = rng.standard_normal((d_model, rank)).astype(np.float32)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "task_type": "SEQ_2_SEQ_LM", "r": rank, "lora_alpha": alpha,
              "target_modules": list(targets), "base_model_name_or_path": base,
              "fan_in_fan_out": False, "bias": "none", "use_rslora": False,
              "rank_pattern": {}, "alpha_pattern": {}, "modules_to_save": None}
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2))
    (folder / "README.md").write_text(f"# test adapter seed {seed}\n")
    return folder


def folder_files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def raw_push(hub, repo, files, token=None, parent=None, meta=None, timeout=60):
    """POSTs a push as our client would, but with whatever files, names and token the test wants.
    `files` maps repo paths to bytes."""
    body = {"parent": parent, "task": "", "tags": [], **(meta or {})}
    multipart = [("meta", (None, json.dumps(body), "application/json"))]
    multipart += [("file", (name, data, "application/octet-stream")) for name, data in files.items()]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{hub.url}/api/lorahub/push/{repo}", files=multipart, headers=headers,
                      timeout=timeout)


def race_pushes(hubs, repo, payloads, token, parent):
    """Pushes payloads[i] to hubs[i] all at once (threads released together by a barrier), all on
    the same parent; returns the responses in order."""
    barrier, results = threading.Barrier(len(payloads)), [None] * len(payloads)

    def upload(i):
        barrier.wait(timeout=30)
        results[i] = raw_push(hubs[i], repo, payloads[i], token=token, parent=parent)

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def head_of(hub, repo):
    r = hub.http.get(f"/api/models/{repo}")
    return r.json()["sha"] if r.status_code == 200 else None


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def blob_files(root):
    return sorted(p.name for p in (Path(root) / "blobs").rglob("*") if p.is_file())


def wait_until(predicate, timeout=30.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def hf_env(hub, tmp_path):
    """Environment for a subprocess that uses huggingface_hub against `hub` (conftest sets
    HF_HUB_OFFLINE=1 for everything else)."""
    return {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0",
            "TRANSFORMERS_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf-home"),
            "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_DISABLE_XET": "1", "OMP_NUM_THREADS": "1"}
