"""The set-up shared by the hub tests that end in `lorahub learn --hub` (test_hub_learn.py,
test_hub_upload.py): a tiny T5 with its SentencePiece model, four PEFT LoRA modules for it, a few
BBH examples, and `learn` with fixed steps and seed so that runs can be compared exactly."""
import json
import sys

import pytest

from conftest import ROOT, run_lorahub

sys.path.insert(0, str(ROOT / "tests" / "parity"))
from lorahub_tiny import few_shot_examples, make_modules  # noqa: E402
from t5_tiny import make_t5, train_spm  # noqa: E402


def learn_fixture(name, modules=4):
    """A module-scoped fixture (assign it to `fx` in the test file) with the model, the modules
    and the examples, made under a temporary folder called `name`."""

    @pytest.fixture(scope="module")
    def fx(bbh_dir, tmp_path_factory):
        root = tmp_path_factory.mktemp(name)
        model_dir = make_t5("v1.1", train_spm(bbh_dir, root), root / "t5")
        few_shot_examples(bbh_dir, root / "examples.jsonl", count=3)
        return {"root": root, "model": model_dir, "modules": make_modules(model_dir, root, modules),
                "examples": root / "examples.jsonl"}

    return fx


def learn(fx, out, *args):
    """`lorahub learn` on fx's model and examples; returns its weights.json."""
    run_lorahub("learn", "--model", fx["model"], "--examples", fx["examples"], "--steps", 4,
                "--seed", 7, "--out", out, "--quiet", *args)
    return json.loads((out / "weights.json").read_text())
