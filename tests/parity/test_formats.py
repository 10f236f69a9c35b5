"""Files written by the real libraries (safetensors, torch.save, transformers, PEFT) read bit
for bit by `lorahub inspect`, and what our writer produces (`lorahub convert`) loads in
safetensors and PEFT with identical values."""
import json
from collections import OrderedDict

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import run_lorahub
from tiny_models import lora_model, save_adapter, tensor_sha256, tiny_t5

DTYPE_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
               torch.float64: "F64", torch.int64: "I64", torch.int32: "I32", torch.int8: "I8",
               torch.uint8: "U8", torch.bool: "BOOL"}


def inspect(path):
    return run_lorahub("inspect", path, "--json", "--sha256").json()


def assert_same_tensors(report, expected):
    """report: inspect --json; expected: {name: torch tensor}. Names, dtypes, shapes, bytes."""
    got = {t["name"]: t for t in report["tensors"]}
    assert sorted(got) == sorted(expected)
    for name, t in expected.items():
        assert got[name]["dtype"] == DTYPE_NAMES[t.dtype], name
        assert got[name]["shape"] == list(t.shape), name
        assert got[name]["sha256"] == tensor_sha256(t), name


def mixed_tensors():
    g = torch.Generator().manual_seed(0)
    return {
        "f32.weight": torch.randn(5, 7, generator=g),
        "f16.weight": torch.randn(3, 4, generator=g).half(),
        "bf16.weight": torch.randn(6, 2, generator=g).bfloat16(),
        "f64": torch.randn(3, generator=g).double(),
        "ids": torch.arange(-3, 5),
        "mask": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
        "specials": torch.tensor([float("inf"), float("-inf"), float("nan"), -0.0, 1e-40]),
    }


def test_safetensors_written_by_safetensors(tmp_path):
    tensors = mixed_tensors()
    save_file(tensors, tmp_path / "t.safetensors", metadata={"format": "pt", "note": "x"})
    report = inspect(tmp_path / "t.safetensors")
    assert report["kind"] == "safetensors" and report["adapter"] is None
    assert report["metadata"] == {"format": "pt", "note": "x"}
    assert_same_tensors(report, tensors)


def test_torch_save_state_dict_with_views(tmp_path):
    base = torch.arange(24, dtype=torch.float32)
    tensors = OrderedDict(mixed_tensors())
    tensors["offset_view"] = base[5:17].view(3, 4)  # a view into a larger storage
    tensors["transposed"] = torch.randn(3, 5).t()   # non-contiguous: read as a copy
    tensors["shares_storage"] = base[:6]            # same storage as offset_view
    tensors["column"] = torch.randn(4, 3)[:, 1]      # strided 1-D
    torch.save(tensors, tmp_path / "sd.bin")
    report = inspect(tmp_path / "sd.bin")
    assert report["kind"] == "torch"
    assert [t["name"] for t in report["tensors"]] == list(tensors)  # pickle order kept
    assert_same_tensors(report, tensors)


def test_module_state_dict_pickle(tmp_path):
    """state_dict() carries _metadata (restored by BUILD); legacy adapters look like this."""
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    torch.save(module.state_dict(), tmp_path / "m.bin")
    assert_same_tensors(inspect(tmp_path / "m.bin"), module.state_dict())


@pytest.fixture(scope="module")
def t5():
    return tiny_t5(seed=1)


@pytest.mark.parametrize("layout", ["safetensors", "sharded", "bin"])
def test_model_directory_layouts(t5, tmp_path, layout):
    state = {k: v.contiguous() for k, v in t5.state_dict().items()}
    if layout == "bin":
        t5.config.save_pretrained(tmp_path)
        torch.save(state, tmp_path / "pytorch_model.bin")
    else:
        t5.save_pretrained(tmp_path, max_shard_size="20KB" if layout == "sharded" else "50GB")
        saved = {}
        for f in tmp_path.glob("*.safetensors"):
            saved.update(load_file(f))
        state = saved
    if layout == "sharded":
        assert (tmp_path / "model.safetensors.index.json").exists()
    report = inspect(tmp_path)
    assert report["kind"] == "model"
    assert_same_tensors(report, state)


ADAPTER_CONFIGS = {
    "plain": dict(r=4, lora_alpha=8, target_modules=["q", "v"]),
    "rslora_patterns": dict(r=4, lora_alpha=16, target_modules=["q", "k", "v", "o", "wi_0", "wo"],
                            use_rslora=True, rank_pattern={"wo": 2}, alpha_pattern={"k": 4}),
    "regex_targets": dict(r=2, lora_alpha=3, target_modules=r".*decoder.*\.(q|v)$"),
    # PEFT takes the first key in the file's order that matches (not the sorted first: sorted,
    # "SelfAttention.q" would come before "q" and give rank 3, which PEFT's shapes contradict),
    # keys are regexes anchored at a '.' boundary, and an unmatched module keeps r.
    "ordered_regex_patterns": dict(
        r=4, lora_alpha=8, target_modules=["q", "k", "v", "wo"],
        rank_pattern={"q": 2, "SelfAttention.q": 3, r"block\.[0-9]+\.layer\.0\.SelfAttention\.(k|v)": 5},
        alpha_pattern={"v": 4, "layer.0.SelfAttention.v": 6}),
}


def peft_saved_state(adapter_dir):
    if (adapter_dir / "adapter_model.safetensors").exists():
        return load_file(adapter_dir / "adapter_model.safetensors")
    return torch.load(adapter_dir / "adapter_model.bin", weights_only=True)


@pytest.mark.parametrize("safe", [True, False], ids=["safetensors", "bin"])
@pytest.mark.parametrize("kind", sorted(ADAPTER_CONFIGS))
def test_peft_adapter_saved_both_ways(tmp_path, kind, safe):
    config = ADAPTER_CONFIGS[kind]
    model = lora_model(tiny_t5(seed=1), seed=2, **config)
    model.peft_config["default"].base_model_name_or_path = "tiny/t5-random"
    out = save_adapter(model, tmp_path / "adapter", safe_serialization=safe)
    assert (out / ("adapter_model.safetensors" if safe else "adapter_model.bin")).exists()

    report = inspect(out)
    assert report["kind"] == "adapter"
    assert_same_tensors(report, peft_saved_state(out))
    a = report["adapter"]
    assert a["r"] == config["r"] and a["lora_alpha"] == config["lora_alpha"]
    targets = config["target_modules"]
    assert (sorted(a["target_modules"]) if isinstance(targets, list) else a["target_modules"]) == \
        (sorted(targets) if isinstance(targets, list) else targets)
    assert a["base_model_name_or_path"] == "tiny/t5-random"
    assert a["use_rslora"] == config.get("use_rslora", False)
    assert a["rank_pattern"] == config.get("rank_pattern", {})
    assert a["num_targets"] * 2 == len(report["tensors"])

    text = run_lorahub("inspect", out).stdout
    assert f"r={config['r']}" in text and "tiny/t5-random" in text


def lora_weights(peft_model):
    return {k: v.detach().clone() for k, v in peft_model.state_dict().items() if "lora_" in k}


@pytest.mark.parametrize("kind", ["plain", "rslora_patterns"])
def test_converted_adapter_loads_in_peft_unchanged(tmp_path, kind):
    """A legacy .bin adapter through our reader and writer: PEFT loads it with the same config,
    the same weights and the same outputs as the original."""
    from peft import PeftModel

    original = lora_model(tiny_t5(seed=1), seed=3, **ADAPTER_CONFIGS[kind])
    src = save_adapter(original, tmp_path / "bin", safe_serialization=False)
    run_lorahub("convert", src, tmp_path / "ours")
    assert (tmp_path / "ours" / "adapter_model.safetensors").exists()

    loaded = PeftModel.from_pretrained(tiny_t5(seed=1), tmp_path / "ours").eval()
    want, got = lora_weights(original), lora_weights(loaded)
    assert sorted(want) == sorted(got)
    for k in want:
        assert torch.equal(want[k], got[k]), k
    c0, c1 = original.peft_config["default"], loaded.peft_config["default"]
    for field in ("r", "lora_alpha", "use_rslora", "rank_pattern", "alpha_pattern",
                  "task_type", "fan_in_fan_out", "bias"):
        assert getattr(c0, field) == getattr(c1, field), field
    assert set(c0.target_modules) == set(c1.target_modules)
    ids = torch.tensor([[5, 6, 7, 1]])
    with torch.no_grad():
        a = original(input_ids=ids, decoder_input_ids=ids).logits
        b = loaded(input_ids=ids, decoder_input_ids=ids).logits
    assert torch.equal(a, b)


def assert_same_bits(got, want, name):
    """Bit-identical, except that any NaN matches any NaN: torch's own vectorised casts write
    0xffff for a bf16 NaN where its scalar path (and ours) writes the canonical 0x7fc0."""
    if not got.is_floating_point():
        assert torch.equal(got, want), name
        return
    nan = torch.isnan(want)
    assert torch.equal(torch.isnan(got), nan), name
    int_type = {2: torch.int16, 4: torch.int32, 8: torch.int64}[want.element_size()]
    assert torch.equal(got[~nan].view(int_type), want[~nan].view(int_type)), name


@pytest.mark.parametrize("dtype,torch_dtype", [("bf16", torch.bfloat16), ("f16", torch.float16),
                                               ("f32", torch.float32)])
def test_converted_file_matches_torch_casts(tmp_path, dtype, torch_dtype):
    """Our writer's safetensors load in safetensors; f32 -> f16/bf16 rounds exactly as torch
    (including inf, nan, -0 and a value that is subnormal in f32)."""
    tensors = mixed_tensors()
    torch.save(tensors, tmp_path / "in.bin")
    run_lorahub("convert", tmp_path / "in.bin", tmp_path / "out.safetensors", "--dtype", dtype)
    loaded = load_file(tmp_path / "out.safetensors")
    assert list(loaded) and sorted(loaded) == sorted(tensors)
    for name, t in tensors.items():
        cast = t.dtype in (torch.float32, torch.float16, torch.bfloat16)  # F64 is kept as is
        want = t.to(torch_dtype) if cast else t
        assert loaded[name].dtype == want.dtype, name
        assert_same_bits(loaded[name], want, name)
    header_len = int.from_bytes((tmp_path / "out.safetensors").read_bytes()[:8], "little")
    assert header_len % 8 == 0
    header = json.loads((tmp_path / "out.safetensors").read_bytes()[8:8 + header_len])
    assert header["__metadata__"] == {"format": "pt"}
