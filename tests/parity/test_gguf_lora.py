"""GGUF LoRA adapters (llama.cpp's format: general.type = adapter, adapter.lora.alpha,
"<base tensor>.lora_a" ne [in, r] / ".lora_b" ne [r, out], Llama q/k rows of B permuted) on the
real SmolLM2-135M GGUF:
- what we write (`compose --out-gguf`, `convert DIR X.gguf --base`) runs in llama.cpp itself
  (llama-cpp-python, lora_path=) with the greedy output of our engine with the same adapter;
- a file written the way convert_lora_to_gguf.py writes it (here with gguf-py, the permutation
  done as its LlamaModel.permute does it) loads as a module with the logits of the PEFT adapter
  it came from (our PEFT path is held to PEFT by test_llama.py's test_lora_loss_matches_peft);
- GGUF -> PEFT -> GGUF round trips are exact; bad files give one clear error."""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import llamacpp_oracle
from conftest import assert_clean_error, run_lorahub
from test_llama import bbh_rows, our_greedy, our_label_logits, smollm2_gguf

LIBRARY = __import__("pathlib").Path(__file__).resolve().parents[2] / "library" / "smollm2"
MODULES = [LIBRARY / "add_sub", LIBRARY / "boolean_eval"]
NEW_TOKENS = 12
NEAR_TIE = 1.0  # as in test_gemma3_gguf.py: llama.cpp's quantized-activation products


def smollm2_heads():
    import gguf
    r = gguf.GGUFReader(smollm2_gguf())
    return (int(r.fields["llama.attention.head_count"].contents()),
            int(r.fields["llama.attention.head_count_kv"].contents()))


def converter_permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf's LlamaModel.permute (k uses the key/value head count)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_converter_style_gguf(peft_dir, path, dtype=np.float32):
    """What convert_lora_to_gguf.py writes for a Llama PEFT adapter, with gguf-py."""
    import gguf
    config = json.loads((peft_dir / "adapter_config.json").read_text())
    sd = load_file(str(peft_dir / "adapter_model.safetensors"))
    n_head, n_head_kv = smollm2_heads()
    names = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
             "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config["lora_alpha"]))
    for key, t in sd.items():
        parts = key.split(".")  # base_model.model.model.layers.<n>.<self_attn|mlp>.<proj>.lora_X.weight
        layer, proj, which = parts[4], parts[6], parts[7]
        v = t.float().numpy()
        if which == "lora_B" and proj in ("q_proj", "k_proj"):
            v = converter_permute(v, n_head, n_head if proj == "q_proj" else n_head_kv)
        w.add_tensor(f"blk.{layer}.{names[proj]}.weight.{which.lower()}", np.ascontiguousarray(v.astype(dtype)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def all_targets_adapter(tmp_path_factory):
    """A real library module (q, v) plus random k, o and MLP targets, rank 8, alpha 16."""
    out = tmp_path_factory.mktemp("peft_all")
    sd = {k: v.float() for k, v in load_file(str(MODULES[0] / "adapter_model.safetensors")).items()}
    g = torch.Generator().manual_seed(0)
    shapes = {"self_attn.k_proj": (192, 576), "self_attn.o_proj": (576, 576),
              "mlp.gate_proj": (1536, 576), "mlp.up_proj": (1536, 576), "mlp.down_proj": (576, 1536)}
    for layer in range(30):
        for module, (n_out, n_in) in shapes.items():
            base = f"base_model.model.model.layers.{layer}.{module}"
            sd[f"{base}.lora_A.weight"] = torch.randn(8, n_in, generator=g) * 0.02
            sd[f"{base}.lora_B.weight"] = torch.randn(n_out, 8, generator=g) * 0.02
    save_file(sd, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = json.loads((MODULES[0] / "adapter_config.json").read_text())
    config["target_modules"] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                "down_proj"]
    (out / "adapter_config.json").write_text(json.dumps(config))
    return out


@pytest.mark.slow
def test_our_gguf_lora_runs_in_llama_cpp_like_ours(bbh_dir, tmp_path):
    base = smollm2_gguf()
    composed, gguf_lora = tmp_path / "composed", tmp_path / "composed.gguf"
    res = run_lorahub("compose", "--lora", *MODULES, "--weights", "0.9,0.6", "--out", composed,
                      "--out-gguf", gguf_lora, "--base", base)
    assert str(gguf_lora) in res.stdout
    prompts = [r["input"] for r in bbh_rows(bbh_dir, 8)]
    ours = our_greedy(base, prompts, tmp_path, NEW_TOKENS, 8, "--lora", composed)
    plain = llamacpp_oracle.load(base, f32_cache=False)
    prompt_ids = [plain.tokenize(p.encode(), add_bos=True, special=False) for p in prompts]
    eos = llamacpp_oracle.eog_ids(plain)
    without = [llamacpp_oracle.greedy(plain, ids, NEW_TOKENS, eos) for ids in prompt_ids]
    del plain
    llm = llamacpp_oracle.load(base, f32_cache=False, lora_path=gguf_lora)
    theirs = [llamacpp_oracle.greedy(llm, ids, NEW_TOKENS, eos) for ids in prompt_ids]
    assert sum(a != b for a, b in zip(theirs, without)) >= 4  # llama.cpp did apply the adapter
    identical = llamacpp_oracle.count_identical(llm, prompt_ids, ours, theirs, NEAR_TIE, eos)
    assert identical >= 6


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["f32", "f16"])
def test_converter_style_gguf_lora_matches_its_peft_adapter(dtype, all_targets_adapter, bbh_dir,
                                                           tmp_path):
    gguf_lora = write_converter_style_gguf(all_targets_adapter, tmp_path / "conv.gguf", dtype)
    rows = bbh_rows(bbh_dir, 2, per_task=1)
    base = smollm2_gguf()
    peft = our_label_logits(base, rows, tmp_path, "--lora", all_targets_adapter)
    ours = our_label_logits(base, rows, tmp_path, "--lora", gguf_lora)
    plain = our_label_logits(base, rows, tmp_path)
    atol = 1e-4 if dtype == np.float32 else 2e-2  # f16 rounding of A and B
    for p, o, b in zip(peft, ours, plain):
        np.testing.assert_allclose(o, p, atol=atol, rtol=0)
        assert np.abs(p - b).max() > 0.1  # the adapter matters


def test_gguf_peft_round_trip_is_exact(all_targets_adapter, tmp_path):
    base = smollm2_gguf()
    ours = tmp_path / "ours.gguf"
    run_lorahub("convert", all_targets_adapter, ours, "--base", base)
    conv = write_converter_style_gguf(all_targets_adapter, tmp_path / "conv.gguf")
    import gguf
    mine = {t.name: np.array(t.data) for t in gguf.GGUFReader(str(ours)).tensors}
    theirs = {t.name: np.array(t.data) for t in gguf.GGUFReader(str(conv)).tensors}
    assert mine.keys() == theirs.keys()
    for name in mine:  # the same file content as the converter's, permutation included
        np.testing.assert_array_equal(mine[name], theirs[name], err_msg=name)
    back = tmp_path / "back"
    run_lorahub("convert", ours, back, "--base", base)
    a = load_file(str(all_targets_adapter / "adapter_model.safetensors"))
    b = load_file(str(back / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k].float(), rtol=0, atol=0, msg=k)
    config = json.loads((back / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"]) == (8, 16)
    assert sorted(config["target_modules"]) == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])


def test_learn_with_a_gguf_module_writes_a_gguf_lora(bbh_dir, tmp_path):
    """A GGUF LoRA in a module pool next to a PEFT one; --out-gguf writes the result."""
    base = smollm2_gguf()
    first = tmp_path / "first.gguf"
    run_lorahub("convert", MODULES[0], first, "--base", base)
    examples = tmp_path / "ex.jsonl"
    examples.write_text("".join(json.dumps(r) + "\n" for r in bbh_rows(bbh_dir, 2, per_task=1)))
    out, out_gguf = tmp_path / "learned", tmp_path / "learned.gguf"
    run_lorahub("learn", "--model", base, "--lora", first, MODULES[1], "--examples", examples,
                "--steps", 3, "--out", out, "--out-gguf", out_gguf, "--quiet")
    back = tmp_path / "back"
    run_lorahub("convert", out_gguf, back, "--base", base)
    a = load_file(str(out / "adapter_model.safetensors"))
    b = load_file(str(back / "adapter_model.safetensors"))
    for k in a:
        torch.testing.assert_close(b[k], a[k].float(), rtol=0, atol=0, msg=k)


# ------------------------------------------------------------------------------ bad input

@pytest.mark.malformed
def test_a_model_gguf_is_not_an_adapter(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"input": "a", "output": "b"}) + "\n")
    res = run_lorahub("score", "--model", smollm2_gguf(), "--data", data, "--lora", smollm2_gguf(),
                      check=False)
    assert_clean_error(res, "general.type", "not a LoRA adapter")


@pytest.mark.malformed
def test_llama_qk_lora_needs_the_base(tmp_path):
    ours = tmp_path / "a.gguf"
    run_lorahub("convert", MODULES[0], ours, "--base", smollm2_gguf())
    res = run_lorahub("convert", ours, tmp_path / "back", check=False)
    assert_clean_error(res, "a.gguf", "attn_q.weight.lora_b", "head counts")


def gguf_lora(path, arch="llama", tensors=None, general_type="adapter"):
    import gguf
    w = gguf.GGUFWriter(str(path), arch)
    w.add_string("general.type", general_type)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 16.0)
    for name, v in (tensors or {}).items():
        w.add_tensor(name, v)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


A = np.zeros((8, 576), np.float32)  # torch shape [r, in]
B = np.zeros((576, 8), np.float32)


@pytest.mark.malformed
@pytest.mark.parametrize("arch,tensors,fragments", [
    ("llama", {"blk.0.attn_v.weight.lora_a": A[:, :192]}, ["attn_v.weight.lora_a", "has no",
                                                            "lora_b"]),
    ("llama", {"blk.0.attn_v.weight.lora_a": A, "blk.0.attn_v.weight.lora_b": B[:, :4]},
     ["not a LoRA pair"]),
    ("llama", {"blk.0.attn_v.weight": A}, ["blk.0.attn_v.weight", "not a LoRA tensor"]),
    ("llama", {"blk.0.attn_norm.weight.lora_a": A[:1], "blk.0.attn_norm.weight.lora_b": B[:1, :1]},
     ["input_layernorm", "not a linear layer"]),
    ("qwen2", {"blk.0.attn_v.weight.lora_a": A, "blk.0.attn_v.weight.lora_b": B[:192]},
     ["qwen2 model", "llama model"]),
    ("llama", {}, ["no LoRA tensors"]),
], ids=["lone_a", "rank_mismatch", "no_suffix", "norm_target", "other_arch", "empty"])
def test_malformed_gguf_lora(arch, tensors, fragments, tmp_path):
    path = gguf_lora(tmp_path / "bad.gguf", arch, tensors)
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"input": "a", "output": "b"}) + "\n")
    res = run_lorahub("score", "--model", smollm2_gguf(), "--data", data, "--lora", path,
                      check=False)
    assert_clean_error(res, *fragments)


@pytest.mark.malformed
def test_gguf_lora_that_does_not_fit_the_base(tmp_path):
    """Writing for a base whose tensor is another shape is refused before llama.cpp sees it."""
    big = tmp_path / "big"
    big.mkdir()
    sd = {"base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight": torch.zeros(8, 999),
          "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight": torch.zeros(192, 8)}
    save_file(sd, str(big / "adapter_model.safetensors"))
    (big / "adapter_config.json").write_text(json.dumps(
        {"r": 8, "lora_alpha": 16, "target_modules": ["v_proj"], "peft_type": "LORA"}))
    res = run_lorahub("convert", big, tmp_path / "x.gguf", "--base", smollm2_gguf(), check=False)
    assert_clean_error(res, "v_proj.lora_A.weight", "blk.0.attn_v.weight")
