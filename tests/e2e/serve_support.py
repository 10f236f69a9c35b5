"""Helpers for the `lorahub serve` tests: the server process (on hub_support's ServerProcess),
the models they run (tiny T5 with random modules, the real SmolLM2 GGUF with the committed
library), and `lorahub generate` as the reference for the server's text."""
import contextlib
import json
import sys
import threading
from pathlib import Path

from conftest import ROOT, run_lorahub
from hub_support import ServerProcess

sys.path.insert(0, str(ROOT / "tests" / "parity"))
from lorahub_tiny import few_shot_examples, make_modules  # noqa: E402,F401
from t5_tiny import make_t5, train_spm, write_jsonl  # noqa: E402,F401
from test_llama import smollm2_gguf  # noqa: E402,F401

LIBRARY = ROOT / "library" / "smollm2"


class Serve(ServerProcess):
    """`lorahub serve --model MODEL --port 0 ...`; .client is an openai.OpenAI on it."""

    def __init__(self, model, *extra, api_key="none", env=None, stop_timeout=30):
        import openai
        super().__init__(["serve", "--model", model, "--port", 0, *extra], env=env,
                         stop_timeout=stop_timeout)
        self.client = openai.OpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0,
                                    timeout=120)

    def metric(self, name):
        """The value of an unlabelled metric from GET /metrics."""
        for line in self.http.get("/metrics").text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{}"):
                return float(line.split()[-1])
        raise AssertionError(f"{name} not in /metrics")


def library_prompt(task, question):
    """The library's prompt format (library/smollm2/README.md)."""
    manifest = json.loads((LIBRARY / "manifest.json").read_text())
    description = next(m["description"] for m in manifest["modules"] if m["task"] == task)
    return f"{description}\n\nQ: {question}\nA:"


def generate(model, prompts, tmp_path, max_tokens, modules=(), weights=(), chat=False,
             flags=()):
    """`lorahub generate` (greedy) for each prompt with modules composed by weights; `flags`
    pick the weight path (--int8, --quantized) as they do for `lorahub serve`."""
    data = tmp_path / f"prompts-{len(list(tmp_path.iterdir()))}.jsonl"
    write_jsonl(data, [{"input": p} for p in prompts])
    args = ["generate", "--model", model, "--data", data, "--max-new-tokens", max_tokens, "--json"]
    for m in modules:
        args += ["--lora", m]
    if len(modules) > 1 or (weights and list(weights) != [1.0]):
        args += ["--weights", ",".join(repr(float(w)) for w in weights)]
    if chat:
        args.append("--chat")
    args += list(flags)
    return run_lorahub(*args).json()["predictions"]


_tiny_t5 = {}


def tiny_t5(bbh_dir, tmp_path_factory):
    """A tiny T5 with 3 random PEFT modules and 3 few-shot examples, made once per session for
    all the serve test files (the serve_t5 fixtures call this)."""
    if not _tiny_t5:
        root = tmp_path_factory.mktemp("serve_t5")
        model = make_t5("v1.1", train_spm(bbh_dir, root), root / "t5")
        modules = make_modules(model, root / "modules", 3)
        few_shot_examples(bbh_dir, root / "examples.jsonl", count=3)
        examples = [json.loads(line) for line in (root / "examples.jsonl").read_text().splitlines()]
        _tiny_t5.update(root=root, model=model, modules=modules, examples=examples)
    return dict(_tiny_t5)


@contextlib.contextmanager
def serving_tiny_t5(bbh_dir, tmp_path_factory):
    """`lorahub serve` of tiny_t5's model and modules (named "tiny-t5"): tiny_t5's dict with the
    Serve as "server", for the test files' module-scoped t5 fixtures."""
    t5 = tiny_t5(bbh_dir, tmp_path_factory)
    with Serve(t5["model"], "--modules", t5["root"] / "modules", "--name", "tiny-t5") as s:
        yield {**t5, "server": s}


def at_once(request, count, timeout):
    """request(i) for i in range(count), each in its own thread, released together (so that the
    server receives them at the same time and can batch them); returns their results."""
    results, barrier = [None] * count, threading.Barrier(count)

    def client(i):
        barrier.wait(timeout=30)
        results[i] = request(i)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    return results
