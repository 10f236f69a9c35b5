"""Every ggml tensor type gguf-py can dequantize, read by lorahub bit for bit as
`gguf.quants.dequantize` gives it: blocks written by gguf-py (`gguf.quants.quantize` where it
can, random bytes otherwise, whose f16 scales then cover NaN, inf, subnormals and -0), read back
with `lorahub inspect --dequantize`. And the real Gemma 3 270M Q4_K_M file, every tensor."""
import os
import struct

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import assert_clean_error, run_lorahub
from real_models import gemma3_270m_gguf

import gguf  # noqa: E402  (a hard import: a broken venv fails, it does not skip)
Q = gguf.GGMLQuantizationType

QUANTIZABLE = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "TQ1_0", "TQ2_0",
               "MXFP4"]
RANDOM_BYTES = ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS",
                "IQ3_S", "IQ1_S", "IQ1_M", "IQ4_NL", "IQ4_XS", "NVFP4"]
# The f16 scales each type keeps at fixed offsets of its block (gguf.quants' layouts): set to
# special values in some blocks.
F16_FIELDS = {"Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
              "IQ2_XXS": [0], "IQ2_XS": [0], "IQ2_S": [0], "IQ3_XXS": [0], "IQ3_S": [0],
              "IQ1_S": [0], "IQ4_NL": [0], "IQ4_XS": [0], "Q4_0": [0], "Q8_0": [0]}
SPECIAL_F16 = [0x7e00, 0x7c00, 0xfc00, 0x0001, 0x03ff, 0x8000, 0x7bff, 0x7d01]  # NaN, ±inf, ...


def blocks_of(name, rows, rng):
    """(raw bytes [rows, row_bytes] as gguf-py stores them, the qtype)."""
    qtype = Q[name]
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    cols = 2 * block if block > 1 else 48
    if name in QUANTIZABLE:
        data = (rng.standard_normal((rows, cols)) * rng.uniform(0.01, 30, (rows, 1))).astype(np.float32)
        data[0, :3] = [0.0, -0.0, 1e-30]
        raw = gguf.quants.quantize(data, qtype)
        if name in ("F16", "BF16", "F32"):
            raw = raw.view(np.uint8)
        raw = np.ascontiguousarray(raw).view(np.uint8).reshape(rows, -1)
    else:
        raw = rng.integers(0, 256, (rows, cols // block * size), dtype=np.uint8)
    for i, special in enumerate(SPECIAL_F16):  # a special scale in the first few blocks
        for off in F16_FIELDS.get(name, []):
            flat = raw.reshape(-1, size)
            if i < flat.shape[0]:
                flat[i, off:off + 2] = np.frombuffer(struct.pack("<H", special), np.uint8)
    return raw, qtype


def write_gguf(path, tensors):
    w = gguf.GGUFWriter(str(path), "llama")
    for name, (raw, qtype) in tensors.items():
        w.add_tensor(name, raw, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def assert_bits_equal(got, want, name):
    assert got.shape == want.shape, name
    g, w = got.view(np.uint32).ravel(), want.view(np.uint32).ravel()
    bad = np.flatnonzero(g != w)
    assert bad.size == 0, (f"{name}: {bad.size} of {g.size} values differ; first at {bad[0]}: "
                           f"ours {g[bad[0]]:#010x}, gguf-py {w[bad[0]]:#010x}")


def test_every_type_dequantizes_like_gguf_py(tmp_path):
    rng = np.random.default_rng(15)
    tensors = {f"t.{name}": blocks_of(name, 6, rng) for name in QUANTIZABLE + RANDOM_BYTES}
    path = tmp_path / "all.gguf"
    write_gguf(path, tensors)
    listed = {t["name"]: t for t in run_lorahub("inspect", path, "--json").json()["tensors"]}
    run_lorahub("inspect", path, "--dequantize", tmp_path / "ours.safetensors")
    ours = load_file(str(tmp_path / "ours.safetensors"))
    assert sorted(ours) == sorted(tensors)
    for name, (raw, qtype) in tensors.items():
        want = gguf.quants.dequantize(raw, qtype).astype(np.float32)
        assert listed[name]["dtype"] == qtype.name
        assert listed[name]["shape"] == list(want.shape)
        assert_bits_equal(ours[name], want, name)


@pytest.mark.malformed
def test_types_we_cannot_dequantize_are_listed_and_named(tmp_path):
    """Q1_0 (gguf-py lists it but cannot decode it): inspect lists the file; reading names it."""
    path = tmp_path / "q1.gguf"
    raw = np.zeros((2, 18), dtype=np.uint8)
    write_gguf(path, {"token_embd.weight": (raw, Q.Q1_0)})
    listed = run_lorahub("inspect", path, "--json").json()["tensors"]
    assert listed == [{"name": "token_embd.weight", "dtype": "Q1_0", "shape": [2, 128]}]
    assert_clean_error(run_lorahub("inspect", path, "--dequantize", tmp_path / "x.safetensors",
                                   check=False), "token_embd.weight", "Q1_0 (41)")


# ------------------------------------------------------------------ the real Gemma 3 270M file

def test_gemma3_270m_q4_k_m_every_tensor_bit_identical():
    """All 236 tensors of the Q4_K_M file (Q4_K, Q6_K, Q8_0, F32...), hashed as f32."""
    path = gemma3_270m_gguf()
    reader = gguf.GGUFReader(path)
    report = run_lorahub("inspect", path, "--json", "--f32-sha256", timeout=300).json()
    ours = {t["name"]: t for t in report["tensors"]}
    import hashlib
    types = set()
    for t in reader.tensors:
        want = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        types.add(t.tensor_type.name)
        assert ours[t.name]["dtype"] == t.tensor_type.name, t.name
        assert ours[t.name]["shape"] == list(want.shape), t.name
        assert ours[t.name]["f32_sha256"] == hashlib.sha256(want.tobytes()).hexdigest(), t.name
    assert {"Q4_K", "Q6_K"} <= types, types
