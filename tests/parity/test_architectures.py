"""Every decoder architecture as configuration of one decoder (models/decoder_spec.h), each
against its own implementation in transformers: a tiny random model made at test time (Gemma 3
text, Qwen3, Phi-3, Mistral; Llama and Qwen2 are in test_llama.py), logits within 1e-4 on the f32
path, greedy identical, a PEFT LoRA merged equal to PEFT's; and the same models written as GGUF
files with llama.cpp's names and conventions (gguf package), read by us and checked against
llama.cpp itself.

All tiny models use SmolLM2's tokenizer (49152 tokens, EOS 2): the architectures differ in the
decoder, which is what is tested here; Gemma's own tokenizer is the tokenizer's business."""
import functools
import json
import shutil

import numpy as np
import pytest

import llamacpp_oracle
from conftest import assert_clean_error, run_lorahub
from test_llama import (EOS, bbh_rows, hf_greedy, hf_label_logits, our_greedy,  # noqa: F401
                        our_label_logits, smollm2_gguf, smollm2_hf, write_jsonl)

import torch  # noqa: E402  (hard imports: a broken venv fails, it does not skip)
import transformers  # noqa: E402

COMMON = dict(vocab_size=49152, hidden_size=64, intermediate_size=96, num_attention_heads=4,
              num_key_value_heads=2, eos_token_id=EOS, bos_token_id=1, pad_token_id=0)


def make_config(kind):
    """(model class, config): each kind exercises what its architecture adds to the decoder."""
    t = transformers
    if kind == "gemma3":  # sandwich norms (1 + w), q/k norm, sqrt(d) embedding scale, GELU,
        # sliding (window 8) and global layers (every 6th) with their own RoPE bases, tied head
        return t.Gemma3ForCausalLM, t.Gemma3TextConfig(
            **COMMON, num_hidden_layers=7, head_dim=16, sliding_window=8,
            query_pre_attn_scalar=16, attn_implementation="eager")
    if kind == "gemma3_capped":  # soft-capped logits, query_pre_attn_scalar, rope scaling on
        # the global layers only, layer_types given explicitly; attn_logit_softcapping is set
        # but Gemma 3 ignores it (transformers and llama.cpp alike), so must we
        return t.Gemma3ForCausalLM, t.Gemma3TextConfig(
            **COMMON, num_hidden_layers=3, head_dim=16, sliding_window=6, query_pre_attn_scalar=40,
            attn_logit_softcapping=2.0, final_logit_softcapping=4.0,
            layer_types=["sliding_attention", "full_attention", "sliding_attention"],
            rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 500.0},
                             "full_attention": {"rope_type": "linear", "rope_theta": 20000.0,
                                                "factor": 4.0}},
            attn_implementation="eager")
    if kind == "qwen3":  # q/k norm, explicit head_dim != hidden/heads
        return t.Qwen3ForCausalLM, t.Qwen3Config(**COMMON, num_hidden_layers=2, head_dim=24,
                                                 tie_word_embeddings=False)
    if kind == "phi3":  # fused qkv_proj and gate_up_proj
        return t.Phi3ForCausalLM, t.Phi3Config(**COMMON, num_hidden_layers=2,
                                               tie_word_embeddings=False)
    if kind == "mistral":  # sliding window on every layer
        return t.MistralForCausalLM, t.MistralConfig(**COMMON, num_hidden_layers=2,
                                                     sliding_window=8, head_dim=16)
    raise ValueError(kind)


def tiny(kind, out_dir, tok_dir):
    cls, cfg = make_config(kind)
    torch.manual_seed(0)
    model = cls(cfg)
    with torch.no_grad():  # random init leaves norms trivial (1, or 0 for Gemma's 1 + w)
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(torch.randn_like(p) * 0.5 + (0.0 if "gemma" in kind else 1.0))
    model.eval().save_pretrained(out_dir)
    for f in tokenizer_files(tok_dir).iterdir():
        shutil.copy(f, out_dir)
    return model


@functools.cache
def tokenizer_files(tok_dir):
    """SmolLM2's tokenizer as transformers saves it (once per session)."""
    import tempfile
    from pathlib import Path
    out = Path(tempfile.mkdtemp(prefix="tiny_tokenizer_"))
    transformers.AutoTokenizer.from_pretrained(tok_dir).save_pretrained(out)
    return out


@functools.cache
def smollm2_tokenizer_fields():
    """SmolLM2's GGUF tokenizer (model gpt2, tokens, types, merges, pre-tokenizer)."""
    import gguf
    f = gguf.GGUFReader(smollm2_gguf()).fields
    return {k: f[f"tokenizer.ggml.{k}"].contents() for k in ("pre", "tokens", "token_type", "merges")}


# Prompts longer than the sliding windows (they are cut to keep the oracle quick).
def rows_for_test(bbh_dir):
    return [dict(r, input=r["input"][-160:]) for r in bbh_rows(bbh_dir, 4)]


KINDS = ["gemma3", "gemma3_capped", "qwen3", "phi3", "mistral"]


@pytest.mark.parametrize("kind", KINDS)
def test_tiny_model_matches_transformers(kind, smollm2_hf, bbh_dir, tmp_path):
    _, _, tok = smollm2_hf
    model = tiny(kind, tmp_path / kind, smollm2_hf[0])
    rows = rows_for_test(bbh_dir)
    got = our_label_logits(tmp_path / kind, rows, tmp_path, "--batch-size", 2)
    diffs = [float(np.abs(g - e).max()) for g, e in zip(got, hf_label_logits(model, tok, rows))]
    assert max(diffs) < 1e-4, diffs
    prompts = [r["input"] for r in rows]
    assert our_greedy(tmp_path / kind, prompts, tmp_path, 8, 2) == hf_greedy(model, tok, prompts, 8)


LORA_TARGETS = {"phi3": ["qkv_proj", "gate_up_proj"]}  # PEFT targets Phi-3's fused modules whole


@pytest.mark.parametrize("kind", ["gemma3", "qwen3", "phi3"])
def test_peft_lora_merged_matches_peft(kind, smollm2_hf, bbh_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    _, _, tok = smollm2_hf
    model = tiny(kind, tmp_path / kind, smollm2_hf[0])
    targets = LORA_TARGETS.get(kind, ["q_proj", "v_proj", "down_proj"])
    torch.manual_seed(3)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=targets,
                                                  init_lora_weights=False, task_type="CAUSAL_LM"))
    peft_model.save_pretrained(tmp_path / "lora")
    rows = rows_for_test(bbh_dir)[:2]
    expected = hf_label_logits(peft_model.eval(), tok, rows)
    got = our_label_logits(tmp_path / kind, rows, tmp_path, "--lora", tmp_path / "lora")
    diffs = [float(np.abs(g - e).max()) for g, e in zip(got, expected)]
    assert max(diffs) < 1e-4, diffs
    with peft_model.disable_adapter():  # the adapter changes the logits: the test can fail
        plain = hf_label_logits(peft_model, tok, rows)
    assert max(float(np.abs(p - e).max()) for p, e in zip(plain, expected)) > 1e-2


# ------------------------------------------------------------------------------ GGUF

GGUF_ARCH = {"gemma3": "gemma3", "qwen3": "qwen3", "phi3": "phi3", "mistral": "llama"}


def llama_permute(w, n_head):
    """convert_hf_to_gguf's Q/K row order for llama (rotate_half halves -> interleaved pairs)."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
             .swapaxes(1, 2).reshape(w.shape))


def write_gguf(model, kind, path):
    """The model as llama.cpp's converter would write it (f32), with SmolLM2's tokenizer."""
    import gguf
    cfg = model.config
    arch = GGUF_ARCH[kind]
    w = gguf.GGUFWriter(str(path), arch)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(1024)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    rope = cfg.rope_parameters
    w.add_rope_freq_base((rope.get("full_attention") or rope)["rope_theta"])
    if kind == "gemma3":
        w.add_sliding_window(cfg.sliding_window)
    # Mistral's window is not in llama.cpp's llama graph: only the full-attention tiny model
    # goes to GGUF (see gguf_model below).
    f = smollm2_tokenizer_fields()
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(f["pre"])
    w.add_token_list(f["tokens"])
    w.add_token_types(f["token_type"])
    w.add_token_merges(f["merges"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(EOS)
    names = gguf.get_tensor_name_map(getattr(gguf.MODEL_ARCH, arch.upper()), cfg.num_hidden_layers)
    for name, t in model.state_dict().items():
        if name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        data = t.detach().float().numpy().copy()
        if arch == "llama" and name.endswith("q_proj.weight"):
            data = llama_permute(data, cfg.num_attention_heads)
        if arch == "llama" and name.endswith("k_proj.weight"):
            data = llama_permute(data, cfg.num_key_value_heads)
        if arch == "gemma3" and name.endswith("norm.weight"):
            data = data + 1.0  # the converter folds Gemma's (1 + w) into the weight
        new = names.get_name(name, try_suffixes=(".weight", ".bias"))
        assert new, name
        w.add_tensor(new, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def gguf_model(kind, tmp_path, tok_dir):
    model = tiny(kind, tmp_path / kind, tok_dir) if kind != "mistral" else None
    if kind == "mistral":  # as Llama, no window (llama.cpp's llama graph has none)
        cls, cfg = make_config("mistral")
        cfg.sliding_window = None
        torch.manual_seed(0)
        model = cls(cfg).eval()
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "norm" in name:
                    p.copy_(torch.randn_like(p) * 0.5 + 1.0)
    return model, write_gguf(model, kind, tmp_path / f"{kind}.gguf")


@pytest.mark.parametrize("kind", ["gemma3", "qwen3", "phi3", "mistral"])
def test_gguf_matches_transformers_and_llama_cpp(kind, smollm2_hf, bbh_dir, tmp_path):
    _, _, tok = smollm2_hf
    model, path = gguf_model(kind, tmp_path, smollm2_hf[0])
    rows = rows_for_test(bbh_dir)[:3]
    expected = hf_label_logits(model, tok, rows)
    got = our_label_logits(path, rows, tmp_path, "--batch-size", 3)
    ours = [float(np.abs(g - e).max()) for g, e in zip(got, expected)]
    # The file is what llama.cpp expects: llama.cpp's logits on it are transformers'.
    llm = llamacpp_oracle.load(path)
    theirs = []
    for r, e in zip(rows, expected):
        inp = tok(r["input"])["input_ids"]
        lab = tok(" " + r["output"], add_special_tokens=False)["input_ids"] + [EOS]
        z = llamacpp_oracle.logits(llm, inp + lab)[len(inp) - 1:len(inp) - 1 + len(lab)]
        theirs.append(float(np.abs(z - e).max()))
    print(kind, "max |Δlogit| ours:", ours, "llama.cpp:", theirs)
    assert max(theirs) < 1e-3, theirs
    assert max(ours) < 1e-4, ours
    prompts = [r["input"] for r in rows]
    expected_ids = [llamacpp_oracle.greedy(llm, tok(p)["input_ids"], 8, {EOS}) for p in prompts]
    assert our_greedy(path, prompts, tmp_path, 8, 3) == expected_ids


# ------------------------------------------------------------------------------ bad input

@pytest.fixture(scope="module")
def tiny_dirs(smollm2_hf, tmp_path_factory):
    """A saved tiny Gemma 3 and Phi-3 (HF directories) and the Phi-3 as GGUF, to corrupt."""
    out = tmp_path_factory.mktemp("bad")
    gemma = tiny("gemma3", out / "gemma3", smollm2_hf[0])
    del gemma
    phi3, path = gguf_model("phi3", out, smollm2_hf[0])
    return out / "gemma3", out / "phi3", path


def edited_copy(src, dst, **changes):
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg.update(changes)
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


@pytest.mark.malformed
@pytest.mark.parametrize("changes,fragments", [
    (dict(layer_types=["full_attention"] * 2), ["layer_types has 2 entries for 7 layers"]),
    (dict(layer_types=["chunked_attention"] * 7), ["layer type 'chunked_attention'"]),
    (dict(use_bidirectional_attention=True), ["bidirectional attention"]),
    (dict(hidden_activation="relu2"), ["relu2"]),
], ids=["layer_types_length", "layer_type", "bidirectional", "activation"])
def test_unsupported_gemma3_config(changes, fragments, tiny_dirs, tmp_path):
    d = edited_copy(tiny_dirs[0], tmp_path / "m", **changes)
    data = write_jsonl(tmp_path / "d.jsonl", [{"input": "a", "output": "b"}])
    assert_clean_error(run_lorahub("score", "--model", d, "--data", data, check=False),
                       "config.json", *fragments)


@pytest.mark.malformed
def test_partial_rotary_is_refused(tiny_dirs, tmp_path):
    d = edited_copy(tiny_dirs[1], tmp_path / "m", rope_parameters={
        "rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5})
    data = write_jsonl(tmp_path / "d.jsonl", [{"input": "a", "output": "b"}])
    assert_clean_error(run_lorahub("score", "--model", d, "--data", data, check=False),
                       "partial_rotary_factor")


@pytest.mark.malformed
def test_gguf_tensor_foreign_to_the_architecture(tiny_dirs, tmp_path):
    """A phi3 GGUF holding a q-norm (Qwen3's, Gemma's) is refused, naming tensor and architecture."""
    import gguf
    src = gguf.GGUFReader(str(tiny_dirs[2]))
    w = gguf.GGUFWriter(str(tmp_path / "m.gguf"), "phi3")
    for field in src.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        w.add_key_value(field.name, field.contents(), field.types[0],
                        sub_type=field.types[-1] if len(field.types) > 1 else None)
    for t in src.tensors:
        w.add_tensor(t.name, np.array(t.data).reshape(list(reversed(t.shape.tolist()))))
    w.add_tensor("blk.0.attn_q_norm.weight", np.ones(16, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    data = write_jsonl(tmp_path / "d.jsonl", [{"input": "a", "output": "b"}])
    assert_clean_error(run_lorahub("score", "--model", tmp_path / "m.gguf", "--data", data,
                                   check=False), "blk.0.attn_q_norm.weight", "phi3")
