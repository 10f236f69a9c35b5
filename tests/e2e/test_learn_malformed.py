"""Bad input to `lorahub learn` / `objective` / `bbh`: one clear error line, no crash, and no
half-written output directory. These checks fire before any model is read, so no model is
needed (the --model paths below do not exist)."""
import json

import pytest

from conftest import assert_clean_error, run_lorahub

pytestmark = pytest.mark.malformed


def write_adapter(dir_path, rank=2):
    """A minimal valid-looking adapter directory (config only is enough for these checks)."""
    dir_path.mkdir(parents=True)
    (dir_path / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": rank, "lora_alpha": 4, "target_modules": ["q"]}))
    return dir_path


@pytest.fixture
def examples(tmp_path):
    path = tmp_path / "ex.jsonl"
    path.write_text('{"input": "a", "output": "b"}\n{"input": "c", "output": "d"}\n')
    return path


def learn(tmp_path, *args):
    return run_lorahub("learn", "--model", tmp_path / "no-model", "--out", tmp_path / "out",
                       *args, check=False)


def test_empty_jsonl(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    r = learn(tmp_path, "--lora", tmp_path / "m", "--examples", empty)
    assert_clean_error(r, "empty.jsonl", "no examples")
    assert not (tmp_path / "out").exists()


def test_malformed_jsonl_names_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "a", "output": "b"}\n{"input": "c", "output": \n')
    r = learn(tmp_path, "--lora", tmp_path / "m", "--examples", bad)
    assert_clean_error(r, "bad.jsonl:2")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob("out.partial-*"))


def test_missing_output_names_the_line(tmp_path):
    bad = tmp_path / "inputs.jsonl"
    bad.write_text('{"input": "a", "output": "b"}\n{"input": "c"}\n')
    r = learn(tmp_path, "--lora", tmp_path / "m", "--examples", bad)
    assert_clean_error(r, "inputs.jsonl:2", "output")


def test_zero_modules(tmp_path, examples):
    assert_clean_error(learn(tmp_path, "--examples", examples), "no LoRA modules")
    listed = tmp_path / "list.txt"
    listed.write_text("# nothing here\n\n")
    assert_clean_error(learn(tmp_path, "--examples", examples, "--lora-list", listed),
                       "names no modules")


@pytest.mark.parametrize("steps", ["0", "-3"])
def test_steps_below_one(tmp_path, examples, steps):
    r = learn(tmp_path, "--lora", tmp_path / "m", "--examples", examples, f"--steps={steps}")
    assert_clean_error(r, "--steps must be at least 1")


def test_unknown_optimizer(tmp_path, examples):
    r = learn(tmp_path, "--lora", tmp_path / "m", "--examples", examples, "--optimizer", "sgd")
    assert_clean_error(r, "unknown optimizer 'sgd'", "cobyla")


def test_unknown_loss_mode(tmp_path, examples):
    r = learn(tmp_path, "--lora", tmp_path / "m", "--examples", examples, "--loss-mode", "max")
    assert_clean_error(r, "unknown loss mode 'max'")


@pytest.mark.parametrize("weights", ["0.1,nan", "inf,0.2", "0.1,abc", "0.1,,0.2"])
def test_bad_weights(tmp_path, examples, weights):
    r = run_lorahub("objective", "--model", tmp_path / "no-model", "--lora", tmp_path / "m",
                    "--examples", examples, f"--weights={weights}", check=False)
    assert_clean_error(r, "--weights")


def test_unwritable_output_directory(tmp_path, examples):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = run_lorahub("learn", "--model", tmp_path / "no-model", "--lora", tmp_path / "m",
                    "--examples", examples, "--out", blocker / "out", check=False)
    assert_clean_error(r, str(blocker / "out"), "cannot create")


def test_existing_output_is_not_clobbered(tmp_path, examples):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("precious")
    r = learn(tmp_path, "--lora", tmp_path / "m", "--examples", examples)
    assert_clean_error(r, "already exists", "--overwrite")
    assert (tmp_path / "out" / "keep.txt").read_text() == "precious"


def write_weights(adapter, rank, width=8):
    """Real adapter weights, so that loading succeeds and the modules are compared."""
    import numpy as np
    from safetensors.numpy import save_file
    key = "base_model.model.encoder.block.0.layer.0.SelfAttention.q"
    save_file({f"{key}.lora_A.weight": np.zeros((rank, width), np.float32),
               f"{key}.lora_B.weight": np.zeros((width, rank), np.float32)},
              str(adapter / "adapter_model.safetensors"))
    return adapter


def test_incompatible_modules_name_the_module(tmp_path, examples):
    a = write_weights(write_adapter(tmp_path / "a", rank=2), 2)
    b = write_weights(write_adapter(tmp_path / "b", rank=4), 4)
    r = learn(tmp_path, "--lora", a, b, "--examples", examples)
    # The rank clash (reached: both modules load), naming both modules and their ranks.
    assert_clean_error(r, f"{b} has rank 4", f"{a} has rank 2")
    assert not (tmp_path / "out").exists()


def test_bbh_bad_arguments(tmp_path, bbh_dir):
    pool = tmp_path / "pool.txt"
    pool.write_text("m1\n")
    base = ["bbh", "--model", tmp_path / "no-model", "--lora-list", pool, "--data-dir", bbh_dir,
            "--out", tmp_path / "res"]
    assert_clean_error(run_lorahub(*base, "--tasks", "no_such_task", check=False), "no_such_task")
    assert_clean_error(run_lorahub(*base, "--seeds", "5-1", check=False), "--seeds")
    assert_clean_error(run_lorahub(*base, "--steps=0", check=False), "--steps")
    assert_clean_error(run_lorahub(*base[:-4], "--data-dir", tmp_path, check=False), "tasks/")


@pytest.mark.parametrize("command", ["learn", "objective"])
def test_negative_sample_is_rejected(tmp_path, examples, command):
    """--sample is a count: "-3" was taken as a huge unsigned one (and so meant "all")."""
    extra = ("--out", tmp_path / "out") if command == "learn" else ("--weights", "1")
    r = run_lorahub(command, "--model", tmp_path / "no-model", "--lora", tmp_path / "m",
                    "--examples", examples, "--sample", "-3", *extra, check=False)
    assert_clean_error(r, "--sample", "-3")
    assert not (tmp_path / "out").exists()
