"""Bad T5 model directories and example files give one clear error line, never a crash."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import assert_clean_error, run_lorahub
from t5_tiny import make_t5, train_spm, write_jsonl

pytestmark = pytest.mark.malformed


@pytest.fixture(scope="module")
def good_dir(bbh_dir, tmp_path_factory):
    spiece = train_spm(bbh_dir, tmp_path_factory.mktemp("spm"))
    return make_t5("v1.0", spiece, tmp_path_factory.mktemp("t5"))


@pytest.fixture
def bad_dir(good_dir, tmp_path):
    """A copy of the good model to break."""
    d = tmp_path / "model"
    d.mkdir()
    for f in good_dir.iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    return d


@pytest.fixture
def data(tmp_path):
    return write_jsonl(tmp_path / "d.jsonl", [{"input": "Is it true?", "output": "yes"}])


def score(model_dir, data):
    return run_lorahub("score", "--model", model_dir, "--data", data, check=False)


def edit_config(d, **changes):
    config = json.loads((d / "config.json").read_text())
    for k, v in changes.items():
        if v is None:
            config.pop(k)
        else:
            config[k] = v
    (d / "config.json").write_text(json.dumps(config))


def edit_weights(d, edit):
    state = load_file(d / "model.safetensors")
    edit(state)
    save_file(state, d / "model.safetensors", metadata={"format": "pt"})


def test_good_model_scores(good_dir, data):
    assert run_lorahub("score", "--model", good_dir, "--data", data).returncode == 0


def test_unknown_architecture(bad_dir, data):
    edit_config(bad_dir, model_type="mamba")
    assert_clean_error(score(bad_dir, data), "model_type", "mamba")


def test_missing_config_field(bad_dir, data):
    edit_config(bad_dir, d_model=None)
    assert_clean_error(score(bad_dir, data), "config.json", "d_model")


def test_bad_feed_forward_proj(bad_dir, data):
    edit_config(bad_dir, feed_forward_proj="gated-gelu-relu")
    assert_clean_error(score(bad_dir, data), "feed_forward_proj")


def test_missing_config(bad_dir, data):
    (bad_dir / "config.json").unlink()
    assert_clean_error(score(bad_dir, data), "config.json")


def test_missing_tensor(bad_dir, data):
    edit_weights(bad_dir, lambda s: s.pop("decoder.block.1.layer.2.DenseReluDense.wo.weight"))
    assert_clean_error(score(bad_dir, data), "decoder.block.1.layer.2.DenseReluDense.wo.weight")


def test_wrong_tensor_shape(bad_dir, data):
    def widen(s):
        s["encoder.block.0.layer.0.SelfAttention.q.weight"] = torch.zeros(33, 32)
    edit_weights(bad_dir, widen)
    assert_clean_error(score(bad_dir, data), "encoder.block.0.layer.0.SelfAttention.q.weight",
                       "[33, 32]")


def test_integer_weights(bad_dir, data):
    def to_int(s):
        s["shared.weight"] = s["shared.weight"].to(torch.int32)
    edit_weights(bad_dir, to_int)
    assert_clean_error(score(bad_dir, data), "shared.weight", "dtype")


def test_missing_weights(bad_dir, data):
    (bad_dir / "model.safetensors").unlink()
    assert_clean_error(score(bad_dir, data), "model.safetensors")


def test_missing_tokenizer(bad_dir, data):
    (bad_dir / "spiece.model").unlink()
    assert_clean_error(score(bad_dir, data), "tokenizer", "spiece.model")


def test_not_a_directory(tmp_path, data):
    assert_clean_error(score(tmp_path / "nowhere", data), "nowhere")


@pytest.mark.parametrize("lines,fragment", [
    (['{"input": "a", "output": "b"}', '{"input": "a", "output": '], ":2:"),
    (['{"input": "a", "output": "b"}', '', '[1, 2]'], ":3:"),
    (['{"output": "b"}'], ":1: missing field 'input'"),
    (['{"input": 7, "output": "b"}'], ":1: field 'input' must be a string"),
    (['{"input": "a", "output": "b"}', '{"input": "c"}'], ":2: scoring needs an 'output'"),
])
def test_malformed_jsonl(good_dir, tmp_path, lines, fragment):
    data = tmp_path / "bad.jsonl"
    data.write_text("\n".join(lines) + "\n")
    assert_clean_error(score(good_dir, data), fragment)


def test_malformed_jsonl_in_generate(good_dir, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"input": "a"}\nnot json\n')
    r = run_lorahub("generate", "--model", good_dir, "--data", data, check=False)
    assert_clean_error(r, "bad.jsonl:2")


def test_empty_jsonl(good_dir, tmp_path):
    data = tmp_path / "empty.jsonl"
    data.write_text("\n")
    assert_clean_error(score(good_dir, data), "no examples")


def test_adapter_for_another_architecture(good_dir, data, tmp_path):
    """A Llama adapter (q_proj of model.layers.0) on a T5 is refused, naming the target (it used
    to do nothing, silently)."""
    config = json.loads((good_dir / "config.json").read_text())
    d_model = config["d_model"]
    adapter = tmp_path / "llama_lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 2, "lora_alpha": 4,
        "target_modules": ["q_proj"], "base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M"}))
    key = "base_model.model.model.layers.0.self_attn.q_proj"
    save_file({f"{key}.lora_A.weight": torch.zeros(2, d_model),
               f"{key}.lora_B.weight": torch.zeros(d_model, 2)},
              str(adapter / "adapter_model.safetensors"))
    for cmd in ("score", "generate"):
        res = run_lorahub(cmd, "--model", good_dir, "--data", data, "--lora", adapter, check=False)
        assert_clean_error(res, "model.layers.0.self_attn.q_proj", "t5")
