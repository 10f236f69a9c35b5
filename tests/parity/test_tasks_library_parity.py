"""The committed SmolLM2 library in the C++ engine: `lorahub score --lora <module>` on generated task
examples gives the per-example losses PEFT gives with the same module (decoder-only convention)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_lorahub

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "scripts"))

LIBRARY = ROOT / "library" / "smollm2"
TASKS = ["larger_number", "swap_tracking"]  # a short numeric answer and an (A)-style choice


@pytest.fixture(scope="module")
def base():
    import torch
    import train_library
    torch.set_num_threads(1)
    base_dir = ROOT / ".cache" / "smollm2-135m-instruct-hf"
    model, tokenizer = train_library.load_base(base_dir)  # converts the GGUF on first use
    return base_dir, model, tokenizer


def peft_losses(base_model, tokenizer, adapter, examples):
    import torch
    import train_library
    from peft import PeftModel
    eos = tokenizer.convert_tokens_to_ids(train_library.EOS_TOKEN)
    model = PeftModel.from_pretrained(base_model, adapter)
    losses = []
    with torch.no_grad():
        for e in examples:
            ids, labels = train_library.encode(tokenizer, {"input": e["input"],
                                                           "target": e["output"]}, eos)
            out = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels]))
            losses.append(out.loss.item())
    model.unload()
    return losses


@pytest.mark.parametrize("task", TASKS)
def test_cpp_score_matches_peft_on_library_module(task, base, tmp_path):
    base_dir, model, tokenizer = base
    proc = subprocess.run([sys.executable, "-m", "lorahub_tasks", task, "--count", "4", "--seed",
                           "9"], cwd=ROOT / "python", capture_output=True, text=True, check=True)
    data = tmp_path / "examples.jsonl"
    data.write_text(proc.stdout)
    examples = [json.loads(line) for line in proc.stdout.splitlines()]
    ours = run_lorahub("score", "--model", base_dir, "--lora", LIBRARY / task, "--data", data,
                       "--json", "--threads", "1").json()
    expected = peft_losses(model, tokenizer, LIBRARY / task, examples)
    got = [e["loss"] for e in ours["examples"]]
    print(task, "lorahub", got, "peft", expected)
    assert got == pytest.approx(expected, rel=2e-3, abs=2e-4)
