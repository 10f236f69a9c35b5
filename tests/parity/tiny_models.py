"""Tiny random T5 models and PEFT LoRA adapters written by the real libraries at test time
(nothing is downloaded). The API, all CPU and fp32:

    tiny_t5(seed=0, version="v1.1")          -> transformers T5ForConditionalGeneration, random
    lora_model(base, seed=0, scale=0.5, **c) -> peft PeftModel; c goes to LoraConfig (r,
                                                lora_alpha, target_modules, use_rslora,
                                                rank_pattern, ...); A and B both random
    save_adapter(model, out_dir, safe_serialization=True) -> out_dir (PeftModel.save_pretrained)
    tensor_sha256(t)                         -> hex SHA-256 of the tensor's raw bytes in logical
                                                row-major order (= `lorahub inspect --sha256`)

The random T5 LoraHub workload with trained-like statistics, defined here once for the benchmark
(bench/workload.py) and the T5 tolerance test (tests/parity/test_t5_tolerance.py):

    trained_like_t5(model)                   -> model, its logits scaled as T5 v1.0's (std ~1)
    save_lora_modules(model, model_dir, out, count, seed) -> adapter dirs (r 16, alpha 32, q, v;
                                                each module moves each target by LORA_REL_DELTA)
    compose_into(model, modules, weights)    -> the model with LoraHub's composition merged
    objective_args(model, modules, examples, points, *flags) -> `lorahub objective` arguments;
    objectives_of(stdout), relative_errors(reference, other) -> its values, their relative errors
    t5_statistics(model, rows, tokenizer)    -> {"ce", "attention_entropy"}: the sanity check
    round_rows(t, levels)                    -> t rounded per row to `levels` steps (fake quant)

The T5 shapes come from t5_tiny.t5_config (the T5 parity tests' tiny config)."""
import hashlib
import json
from pathlib import Path

import torch

from t5_tiny import t5_config

VOCAB = 128


def tiny_t5(seed=0, version="v1.1"):
    from transformers import T5ForConditionalGeneration

    torch.manual_seed(seed)
    return T5ForConditionalGeneration(t5_config(version, VOCAB)).eval()


def lora_model(base, seed=0, scale=0.5, **config):
    """PEFT initialises lora_B to zero; both A and B are drawn at random so values matter."""
    from peft import LoraConfig, get_peft_model

    config = {"r": 4, "lora_alpha": 8, "target_modules": ["q", "v"], "lora_dropout": 0.0,
              "task_type": "SEQ_2_SEQ_LM", **config}
    model = get_peft_model(base, LoraConfig(**config))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return model.eval()


def save_adapter(model, out_dir: Path, safe_serialization=True) -> Path:
    model.save_pretrained(out_dir, safe_serialization=safe_serialization)
    return Path(out_dir)


def tensor_sha256(t: torch.Tensor) -> str:
    raw = t.detach().contiguous().reshape(-1).view(torch.uint8)
    return hashlib.sha256(raw.numpy().tobytes()).hexdigest()


# --- The random T5 LoraHub workload with trained-like statistics ---------------------------
# transformers' T5 initialisation gives an LM head of std 1 and, from a config with
# tie_word_embeddings=False, transformers 5 ties it to the embeddings yet does not scale the
# decoder output (scale_decoder_outputs false): logits have std sqrt(d_model) (32 on
# FLAN-T5-large's shape) and the cross-entropy is ~130 nats (bench W1 until session 15 was such
# a model: tied, unscaled). And PEFT LoRA with B ~ N(0, 0.02^2) (the old bench/workload.py)
# changes q by 128 % of its norm per module (T5 initialises q with std (d_model d_kv)^-0.5). LoraHub composes A and B separately, so at
# the box's points (|w| up to 1.5, 20 modules) q grew ~20x, softmax ran at argmax and the
# objective became chaotic: 16-bit weights moved it 7.5 % (bench/README.md, session 11).
# Here: the decoder output is scaled by d_model^-0.5 (what T5 v1.0 does before its tied head;
# an untied head is scaled instead), so logits have std ~1 and the CE of a random model is
# ~ln(vocab); and each module's scaling * B @ A has LORA_REL_DELTA of the Frobenius norm of
# the weight it adapts (B's scale set per layer), so a composition at box points changes q and
# v by a fraction comparable to their size, as trained modules do, not by 20x.
LORA_R, LORA_ALPHA, LORA_TARGETS = 16, 32, ["q", "v"]
LORA_REL_DELTA = 0.05
CONSTRUCTION = f"trained-like-2 (decoder output*d_model^-0.5, lora rel {LORA_REL_DELTA})"


def lm_head_is_tied(model) -> bool:
    """Whether the LM head shares the embedding's storage. transformers 5 ties a T5 made from a
    config even when that config says tie_word_embeddings=False (the model's config then says
    True), so the storage, not the config we passed, says which model we have."""
    return model.lm_head.weight.data_ptr() == model.shared.weight.data_ptr()


def trained_like_t5(model):
    """In place: logits of std ~1, as T5 v1.0 has them by scaling the decoder output by
    d_model^-0.5 before its tied head. transformers 5 ties every T5 made from a config but
    scales only with config.scale_decoder_outputs, which tie_word_embeddings=False turns off:
    a tied model gets the scaling switched on (saved in config.json, which our loader reads);
    an untied head is scaled itself (scaling a tied one would scale the embeddings too)."""
    if lm_head_is_tied(model):
        model.config.scale_decoder_outputs = True
    else:
        with torch.no_grad():
            model.lm_head.weight.mul_(model.config.d_model ** -0.5)
    return model


def _lora_layers(peft_model):
    from peft.tuners.lora import Linear as LoraLinear

    return [(name, m) for name, m in peft_model.named_modules() if isinstance(m, LoraLinear)]


def save_lora_modules(model, model_dir: Path, out_dir: Path, count: int, seed: int,
                      rel=LORA_REL_DELTA, r=LORA_R, alpha=LORA_ALPHA, targets=LORA_TARGETS):
    """`count` PEFT adapters of `model` (wrapped in place by PEFT) saved as
    out_dir/module_<i:02d>: A ~ N(0, 1/in), B ~ N(0, 1) scaled so that scaling * B @ A has
    `rel` times the Frobenius norm of the base weight; module i draws from seed + i."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets),
                        lora_dropout=0.0, task_type="SEQ_2_SEQ_LM")
    peft_model = get_peft_model(model, config)
    peft_model.peft_config["default"].base_model_name_or_path = str(model_dir)
    layers = _lora_layers(peft_model)
    paths = []
    for i in range(count):
        gen = torch.Generator().manual_seed(seed + i)
        with torch.no_grad():
            for _, layer in layers:
                a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
                a.copy_(torch.randn(a.shape, generator=gen) / a.shape[1] ** 0.5)
                b.copy_(torch.randn(b.shape, generator=gen))
                delta = layer.scaling["default"] * (b @ a)
                b.mul_(rel * layer.base_layer.weight.norm() / delta.norm())
        path = out_dir / f"module_{i:02d}"
        peft_model.save_pretrained(str(path))
        paths.append(path)
    return paths


def compose_into(model, module_dirs, weights):
    """`model` (transformers T5, modified in place) with LoraHub's composition merged (DESIGN
    §1.2: A = sum w_i A_i, B = sum w_i B_i, W += scaling * B @ A)."""
    from safetensors.torch import load_file

    states = [load_file(str(Path(d) / "adapter_model.safetensors")) for d in module_dirs]
    cfg = json.loads((Path(module_dirs[0]) / "adapter_config.json").read_text())
    scaling = cfg["lora_alpha"] / cfg["r"]
    params = dict(model.named_parameters())
    with torch.no_grad():
        for key in [k for k in states[0] if ".lora_A." in k]:
            a = sum(w * s[key] for w, s in zip(weights, states))
            b = sum(w * s[key.replace(".lora_A.", ".lora_B.")] for w, s in zip(weights, states))
            target = key.removeprefix("base_model.model.").split(".lora_A.")[0] + ".weight"
            params[target].add_(scaling * (b @ a))
    return model


def t5_statistics(model, rows, tokenizer):
    """`model` loaded with attn_implementation="eager" (sdpa returns no probabilities). The f32 cross-entropy (token mean over the batch, as the objective's loss) and the mean
    normalised entropy of every attention row (self, cross; 1 = uniform over the keys the row
    may see, 0 = one key): a trained-like random model reads CE ~ ln(vocab), entropy well above
    0 (collapsed attention is the chaotic regime)."""
    import math

    enc = tokenizer([r["input"] for r in rows], return_tensors="pt", padding=True)
    labels = tokenizer([r["output"] for r in rows], return_tensors="pt", padding=True).input_ids
    labels[labels == tokenizer.pad_token_id] = -100
    with torch.no_grad():
        out = model(**enc, labels=labels, output_attentions=True)
    entropies = []
    for probs in [*out.encoder_attentions, *out.decoder_attentions, *out.cross_attentions]:
        h = -(probs * probs.clamp_min(1e-30).log()).sum(-1)          # (batch, heads, q)
        keys = (probs > 0).sum(-1)                                    # keys a row can see
        seen = keys >= 2
        entropies.append(h[seen] / keys[seen].float().log())
    assert entropies, "no attention probabilities: load with attn_implementation='eager'"
    ent = torch.cat(entropies)
    return {"ce": float(out.loss), "ln_vocab": math.log(model.config.vocab_size),
            "attention_entropy": float(ent.mean()), "attention_entropy_p10": float(ent.quantile(0.1))}


def objective_args(model, modules, examples, points, *flags):
    """`lorahub objective`'s arguments for the objective at every point (one process, one JSON
    line per point; parse with objectives_of)."""
    return ["objective", "--model", str(model), "--lora", *map(str, modules), "--examples",
            str(examples), *(f"--weights={w}" for w in points), *flags]


def objectives_of(stdout: str):
    return [json.loads(line)["objective"] for line in stdout.splitlines()]


def relative_errors(reference, other):
    return [b / a - 1 for a, b in zip(reference, other)]


def round_rows(t: torch.Tensor, levels: int) -> torch.Tensor:
    """t (2-D) rounded per row to `levels` steps each side of zero (127: int8 per channel,
    32767: 16 bits), dequantized: a weight quantizer's error alone, in f32."""
    scale = t.abs().amax(dim=1, keepdim=True).clamp_min(1e-30) / levels
    return (t / scale).round() * scale


def box_points(count: int, seeds=range(1, 6), near_zero_seed=0):
    """LoraHub's box ([-1.5, 1.5] per weight): one point near w = 0 (uniform in [-0.1, 0.1]) and
    one per seed, `random.Random(seed).uniform(-1.5, 1.5)` rounded to 4 decimals (the points of
    bench/README.md's session 11 table), as --weights strings."""
    import random

    def point(rng, bound):
        return ",".join(f"{rng.uniform(-bound, bound):.4f}" for _ in range(count))
    return [point(random.Random(near_zero_seed), 0.1),
            *(point(random.Random(s), 1.5) for s in seeds)]


def write_rounded_copy(model_dir: Path, out_dir: Path, levels: int) -> Path:
    """A copy of the safetensors model dir with every 2-D weight rounded per row (round_rows):
    the f32 path on it measures how a weight error of that size moves the objective."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(model_dir, out_dir, dirs_exist_ok=True)
    for f in Path(out_dir).glob("*.safetensors"):
        state = load_file(str(f))
        state = {k: round_rows(v, levels) if v.dim() == 2 else v for k, v in state.items()}
        save_file(state, str(f), metadata={"format": "pt"})
    return Path(out_dir)
