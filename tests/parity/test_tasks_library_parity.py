"""The committed module libraries (SmolLM2, Gemma 3) in the C++ engine: `lorahub score --lora
<module>` on generated task examples gives the per-example losses PEFT gives with the same module
(decoder-only convention), both on the base model transformers dequantized from the GGUF."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_lorahub

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "scripts"))

# A short numeric answer and an (A)-style choice on SmolLM2; one module on Gemma, slow-marked:
# loading its 1 GB fp32 HF form and scoring took 42 s on the loaded 2-core machine (measured
# lorahub - PEFT: ≤ 4e-5 relative on the four losses).
CASES = [("smollm2", "larger_number"), ("smollm2", "swap_tracking"),
         pytest.param("gemma3", "larger_number", marks=pytest.mark.slow)]


@pytest.fixture(scope="module")
def bases():
    """Each base model, loaded once: name -> (the model file lorahub loads, transformers model,
    tokenizer). lorahub loads SmolLM2 from the HF directory transformers wrote, Gemma from its
    GGUF: transformers writes Gemma's vocabulary as a Unigram tokenizer.json, which lorahub does
    not read, while the GGUF has the SentencePiece vocabulary lorahub reads; both dequantize the
    same Q4_K_M blocks (tests/parity/test_gemma3_gguf.py)."""
    import torch
    import train_library
    torch.set_num_threads(1)
    loaded = {}

    def get(name):
        if name not in loaded:
            args = train_library.parse_args(["--base", name])
            # converts the GGUF on first use
            model, tokenizer = train_library.load_base(args.base_dir, args.model)
            engine_model = args.base_dir if name == "smollm2" else args.model.gguf_path()
            loaded[name] = (engine_model, model, tokenizer)
        return loaded[name]
    return get


def peft_losses(base_model, tokenizer, eos_token, adapter, examples):
    import torch
    import train_library
    from peft import PeftModel
    eos = tokenizer.convert_tokens_to_ids(eos_token)
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


@pytest.mark.parametrize("library, task", CASES)
def test_cpp_score_matches_peft_on_library_module(library, task, bases, tmp_path):
    import train_library
    engine_model, model, tokenizer = bases(library)
    proc = subprocess.run([sys.executable, "-m", "lorahub_tasks", task, "--count", "4", "--seed",
                           "9"], cwd=ROOT / "python", capture_output=True, text=True, check=True)
    data = tmp_path / "examples.jsonl"
    data.write_text(proc.stdout)
    examples = [json.loads(line) for line in proc.stdout.splitlines()]
    module = ROOT / "library" / library / task
    ours = run_lorahub("score", "--model", engine_model, "--lora", module, "--data", data, "--json",
                       "--threads", "1").json()
    expected = peft_losses(model, tokenizer, train_library.BASES[library].eos_token, module,
                           examples)
    got = [e["loss"] for e in ours["examples"]]
    print(library, task, "lorahub", got, "peft", expected)
    assert got == pytest.approx(expected, rel=2e-3, abs=2e-4)
