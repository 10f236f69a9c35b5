"""Bad weight files and adapter directories: `lorahub inspect` prints one line naming the file
and the problem, exits non-zero and never crashes (these also run against the ASan build)."""
import json
import os
import struct
import subprocess
import sys
import zipfile

import pytest
import torch
from safetensors.torch import save_file

from conftest import assert_clean_error, run_lorahub

pytestmark = pytest.mark.malformed


def inspect(path):
    return run_lorahub("inspect", path, "--json", check=False)


def raw_safetensors(path, header, data=b""):
    text = header if isinstance(header, (bytes, str)) else json.dumps(header)
    text = text.encode() if isinstance(text, str) else text
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


@pytest.fixture
def good_file(tmp_path):
    save_file({"a": torch.randn(16, 16), "b": torch.randn(8).half()}, tmp_path / "good.safetensors")
    return tmp_path / "good.safetensors"


def test_truncated_data(good_file):
    good_file.write_bytes(good_file.read_bytes()[:-100])
    assert_clean_error(inspect(good_file), str(good_file), "past the end of the data")


def test_truncated_before_header_length(tmp_path):
    (tmp_path / "t.safetensors").write_bytes(b"\x10\x00\x00")
    assert_clean_error(inspect(tmp_path / "t.safetensors"), "t.safetensors", "truncated")


def test_header_length_past_eof(good_file):
    data = good_file.read_bytes()
    good_file.write_bytes(struct.pack("<Q", len(data) * 2) + data[8:])
    assert_clean_error(inspect(good_file), str(good_file), "header length", "past the end")


def test_invalid_json_header(tmp_path):
    path = raw_safetensors(tmp_path / "j.safetensors", '{"a": {"dtype": "F32", ')
    assert_clean_error(inspect(path), str(path), "invalid JSON")


def entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


@pytest.mark.parametrize("header,data_len,fragment", [
    ({"a": entry(), "b": entry(offsets=(4, 12))}, 12, "overlapping"),
    ({"a": entry(offsets=(8, 16))}, 8, "past the end of the data"),
    ({"a": entry(dtype="F8_E9M9")}, 8, "unknown dtype 'F8_E9M9'"),
    ({"a": entry(shape=(3,))}, 8, "shape/byte-size mismatch"),
    ({"a": entry(shape=(2 ** 40, 2 ** 40), offsets=(0, 8))}, 8, "too large"),
    ({"a": entry(offsets=(8, 0))}, 8, "end before they begin"),
    ({"a": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}}, 8, "'shape' must be an array"),
    ({"a": 7}, 0, "must be a JSON object"),
    ({"__metadata__": {"k": ["v"]}}, 0, "must be a string"),
], ids=["overlap", "out_of_file", "unknown_dtype", "size_mismatch", "overflow", "reversed",
        "wrong_type", "not_object", "metadata"])
def test_bad_headers(tmp_path, header, data_len, fragment):
    path = raw_safetensors(tmp_path / "h.safetensors", header, b"\0" * data_len)
    assert_clean_error(inspect(path), str(path), fragment)


@pytest.mark.parametrize("text,fragment", [
    ("[" * 100000 + "]" * 100000, "nested deeper"),
    ('{"a": {"dtype": "F32", "shape": [1e999], "data_offsets": [0, 4]}}', "invalid JSON"),
    ('{"a": {"dtype": "F32", "shape": [123456789012345678901234567890], "data_offsets": [0, 4]}}',
     "non-negative integer"),
    ('{"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 4]}}', "non-negative integer"),
    ('{"a": {"dtype": "\\ud800", "shape": [1], "data_offsets": [0, 4]}}', "invalid JSON"),
], ids=["deep", "huge_float", "huge_int", "negative", "bad_surrogate"])
def test_hostile_json_header(tmp_path, text, fragment):
    path = raw_safetensors(tmp_path / "x.safetensors", text, b"\0" * 4)
    assert_clean_error(inspect(path), str(path), fragment)


class Payload:
    """Unpickling this runs `touch MARKER`: what a malicious .bin checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_bin_referencing_os_system_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"w": torch.ones(2), "x": Payload(marker)}, tmp_path / "evil.bin")
    result = inspect(tmp_path / "evil.bin")
    assert_clean_error(result, "evil.bin", "system", "nothing was run")
    assert not marker.exists()
    # The payload is live: Python's unrestricted unpickler does run it.
    subprocess.run([sys.executable, "-c", "import torch, sys; "
                    "torch.load(sys.argv[1], weights_only=False)", str(tmp_path / "evil.bin")],
                   check=False, capture_output=True)
    assert marker.exists()


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("builtins", "exec"),
                                         ("subprocess", "Popen"), ("torch", "load")])
def test_bin_with_other_globals(tmp_path, module, name):
    pickle = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"X\x01\x00\x00\x001\x85R."
    with zipfile.ZipFile(tmp_path / "g.bin", "w") as z:
        z.writestr("g/data.pkl", pickle)
    assert_clean_error(inspect(tmp_path / "g.bin"), "g.bin", f"{module}.{name}")


def test_zip_without_data_pkl(tmp_path):
    with zipfile.ZipFile(tmp_path / "z.bin", "w") as z:
        z.writestr("archive/data/0", b"\0" * 8)
    assert_clean_error(inspect(tmp_path / "z.bin"), "z.bin", "without data.pkl")


def test_corrupt_zip(tmp_path):
    torch.save({"w": torch.ones(4)}, tmp_path / "c.bin")
    data = bytearray((tmp_path / "c.bin").read_bytes())
    (tmp_path / "c.bin").write_bytes(bytes(data[: len(data) // 2]))
    assert_clean_error(inspect(tmp_path / "c.bin"), "c.bin", "zip")


def test_bin_missing_storage(tmp_path):
    torch.save({"w": torch.ones(4)}, tmp_path / "s.bin")
    src = zipfile.ZipFile(tmp_path / "s.bin")
    with zipfile.ZipFile(tmp_path / "m.bin", "w") as z:
        for item in src.infolist():
            if "/data/" not in item.filename:
                z.writestr(item.filename.replace("s/", "m/", 1), src.read(item))
    assert_clean_error(inspect(tmp_path / "m.bin"), "m.bin", "no entry", "data/0")


def test_bin_not_a_state_dict(tmp_path):
    torch.save([torch.ones(2)], tmp_path / "l.bin")
    assert_clean_error(inspect(tmp_path / "l.bin"), "l.bin", "not a state dict")


@pytest.fixture
def adapter_dir(tmp_path):
    d = tmp_path / "adapter"
    d.mkdir()
    (d / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q"]}))
    save_file({"base_model.model.x.q.lora_A.weight": torch.randn(2, 8),
               "base_model.model.x.q.lora_B.weight": torch.randn(8, 2)},
              d / "adapter_model.safetensors")
    return d


def test_good_adapter_dir(adapter_dir):
    assert inspect(adapter_dir).json()["adapter"]["r"] == 2


def test_adapter_without_weights(adapter_dir):
    (adapter_dir / "adapter_model.safetensors").unlink()
    assert_clean_error(inspect(adapter_dir), str(adapter_dir), "no adapter weights")


def edit_config(d, **changes):
    config = json.loads((d / "adapter_config.json").read_text())
    for k, v in changes.items():
        if v is None:
            config.pop(k)
        else:
            config[k] = v
    (d / "adapter_config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("changes,fragment", [
    (dict(r=None), "missing field 'r'"),
    (dict(r="2"), "field 'r' must be an integer"),
    (dict(r=3), "disagree with r = 3"),
    (dict(r=-2), "'r' must be positive"),
    (dict(lora_alpha=[4]), "field 'lora_alpha' must be a number"),
    (dict(target_modules={"q": 1}), "'target_modules' must be a list of strings"),
    (dict(use_rslora="true"), "'use_rslora' must be true or false"),
    (dict(peft_type="PREFIX_TUNING"), "not supported"),
    (dict(rank_pattern=["q"]), "'rank_pattern' must be an object"),
], ids=["missing_r", "r_string", "r_mismatch", "r_negative", "alpha_list", "targets_dict",
        "rslora_string", "prefix_tuning", "rank_pattern_list"])
def test_bad_adapter_config(adapter_dir, changes, fragment):
    edit_config(adapter_dir, **changes)
    assert_clean_error(inspect(adapter_dir), "adapter_config.json", fragment)


@pytest.mark.parametrize("text,fragment", [
    ('{"r": ' + "[" * 50000 + "]" * 50000 + "}", "nested deeper"),
    ('{"r": 1e400}', "invalid JSON"),
    ('{"r": 99999999999999999999999999}', "must be an integer"),
    ('{"r": 2', "invalid JSON"),
    ("", "invalid JSON"),
], ids=["deep", "huge_float", "huge_int", "unterminated", "empty"])
def test_hostile_adapter_config_json(adapter_dir, text, fragment):
    (adapter_dir / "adapter_config.json").write_text(text)
    assert_clean_error(inspect(adapter_dir), "adapter_config.json", fragment)


def test_unpaired_lora_tensor(adapter_dir):
    save_file({"base_model.model.x.q.lora_A.weight": torch.randn(2, 8)},
              adapter_dir / "adapter_model.safetensors")
    assert_clean_error(inspect(adapter_dir), "adapter_model.safetensors", "no matching")


def test_missing_path(tmp_path):
    assert_clean_error(inspect(tmp_path / "nope"), "nope", "no such file")


def test_empty_model_dir(tmp_path):
    assert_clean_error(inspect(tmp_path), str(tmp_path), "no model weights")


def test_convert_refuses_model_dir(tmp_path):
    result = run_lorahub("convert", tmp_path, tmp_path / "out", check=False)
    assert_clean_error(result, "adapter directory or a weights file")


def test_legacy_torch_serialization(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "old.bin", _use_new_zipfile_serialization=False)
    result = run_lorahub("convert", tmp_path / "old.bin", tmp_path / "out.safetensors", check=False)
    assert_clean_error(result, "old.bin", "legacy (pre-1.6) PyTorch serialization")
