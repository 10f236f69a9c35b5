"""scripts/train_library.py on a tiny budget writes a PEFT adapter that PEFT loads, in bf16, with
a manifest entry; and the committed libraries (library/smollm2, library/gemma3) are complete and
consistent."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))

import lorahub_tasks  # noqa: E402

# Each committed library: its base model and its number of decoder layers.
LIBRARIES = {"smollm2": ("HuggingFaceTB/SmolLM2-135M-Instruct", 30),
             "gemma3": ("google/gemma-3-270m", 18)}
BASE_DIR = ROOT / ".cache" / "smollm2-135m-instruct-hf"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lib")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "train_library.py"),
                    "--tasks", "parity", "--steps", "2", "--eval-examples", "4",
                    "--out", str(out), "--base-dir", str(BASE_DIR)],
                   check=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return out


def test_tiny_run_writes_a_loadable_bf16_adapter(tiny_run):
    import torch
    from peft import PeftModel
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    adapter = tiny_run / "parity"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert sorted(config["target_modules"]) == ["q_proj", "v_proj"] and config["r"] == 8
    with safe_open(adapter / "adapter_model.safetensors", "pt") as f:
        keys = list(f.keys())
        assert keys and all(f.get_tensor(k).dtype == torch.bfloat16 for k in keys)
    base = AutoModelForCausalLM.from_pretrained(BASE_DIR, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter)
    loaded = {k: v for k, v in model.state_dict().items() if "lora_B" in k}
    assert loaded and any(v.abs().sum() > 0 for v in loaded.values()), "lora_B still zero"


def test_tiny_run_manifest(tiny_run):
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert manifest["held_out_tasks"] == lorahub_tasks.HELD_OUT_TASKS
    (entry,) = manifest["modules"]
    assert entry["task"] == "parity" and entry["budget"]["steps"] == 2
    assert entry["budget"]["examples"] == 2 * entry["budget"]["batch_size"]
    assert entry["eval_examples"] == 4
    for key in ("initial_loss", "final_loss", "eval_accuracy", "eval_base_accuracy"):
        assert isinstance(entry[key], float), key


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_committed_library_is_complete(library):
    directory = ROOT / "library" / library
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["library"] == library and manifest["base_model"] == LIBRARIES[library][0]
    trained = sorted(m["task"] for m in manifest["modules"])
    assert trained == sorted(lorahub_tasks.LIBRARY_TASKS)
    assert not set(trained) & set(lorahub_tasks.HELD_OUT_TASKS)
    total = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
    assert total < 30 * 2**20, total
    for m in manifest["modules"]:
        assert (directory / m["task"] / "adapter_model.safetensors").is_file(), m["task"]
        assert m["final_loss"] < m["initial_loss"], m


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_committed_modules_are_composable(library):
    """LoraHub needs every module to have the same keys, shapes and config (DESIGN 1.1)."""
    from safetensors import safe_open
    directory = ROOT / "library" / library
    base_model, layers = LIBRARIES[library]
    layouts, configs = {}, {}
    for adapter in sorted(directory.glob("*/adapter_model.safetensors")):
        with safe_open(adapter, "np") as f:
            layouts[adapter.parent.name] = {k: f.get_slice(k).get_shape() for k in f.keys()}
            assert all(f.get_slice(k).get_dtype() == "BF16" for k in f.keys()), adapter
        config = json.loads((adapter.parent / "adapter_config.json").read_text())
        configs[adapter.parent.name] = (config["r"], config["lora_alpha"],
                                        tuple(sorted(config["target_modules"])),
                                        config["base_model_name_or_path"])
    first = next(iter(layouts.values()))
    assert len(first) == layers * 2 * 2  # layers x (q_proj, v_proj) x (lora_A, lora_B)
    assert all(layout == first for layout in layouts.values())
    assert set(configs.values()) == {(8, 16, ("q_proj", "v_proj"), base_model)}


def test_publish_library_round_trip(tiny_run, tmp_path):
    """publish_library.sh pushes each manifest module to a fresh local hub; pulling gives back
    the same bytes."""
    from conftest import lorahub_bin
    root = tmp_path / "hub"
    subprocess.run(["bash", str(ROOT / "scripts" / "publish_library.sh"), "--library",
                    str(tiny_run), "--root", str(root), "--user", "tester"],
                   check=True, timeout=120, env={**os.environ, "LORAHUB_BIN": lorahub_bin()})
    server = subprocess.Popen([lorahub_bin(), "hub", "serve", "--root", str(root), "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        endpoint = server.stdout.readline().split(" on ")[1].split()[0]
        found = json.loads(subprocess.run(
            [lorahub_bin(), "hub", "search", "--task", "parity", "--json", "--endpoint", endpoint],
            check=True, capture_output=True, text=True).stdout)
        assert [m["id"] for m in found] == ["tester/smollm2-parity"]
        subprocess.run([lorahub_bin(), "hub", "pull", "tester/smollm2-parity", "--to",
                        str(tmp_path / "pulled"), "--endpoint", endpoint], check=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        assert (tmp_path / "pulled" / name).read_bytes() == (tiny_run / "parity" / name).read_bytes()


@pytest.mark.malformed
def test_unknown_task_is_a_clean_error(tmp_path):
    for cmd in ([str(ROOT / "scripts" / "train_library.py"), "--tasks", "no_such_task",
                 "--out", str(tmp_path)],
                ["-m", "lorahub_tasks", "no_such_task"]):
        proc = subprocess.run([sys.executable, *cmd], capture_output=True, text=True,
                              cwd=ROOT / "python", timeout=120)
        assert proc.returncode not in (0, None) and proc.returncode < 128
        assert "no_such_task" in proc.stderr.strip().splitlines()[-1]
        assert "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir()), "nothing is written for a bad task name"
