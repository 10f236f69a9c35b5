"""Tiny random T5 models and PEFT LoRA adapters written by the real libraries at test time
(nothing is downloaded). The API, all CPU and fp32:

    tiny_t5(seed=0, version="v1.1")          -> transformers T5ForConditionalGeneration, random
    lora_model(base, seed=0, scale=0.5, **c) -> peft PeftModel; c goes to LoraConfig (r,
                                                lora_alpha, target_modules, use_rslora,
                                                rank_pattern, ...); A and B both random
    save_adapter(model, out_dir, safe_serialization=True) -> out_dir (PeftModel.save_pretrained)
    tensor_sha256(t)                         -> hex SHA-256 of the tensor's raw bytes in logical
                                                row-major order (= `lorahub inspect --sha256`)

The T5 shapes come from t5_tiny.t5_config (the T5 parity tests' tiny config)."""
import hashlib
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
