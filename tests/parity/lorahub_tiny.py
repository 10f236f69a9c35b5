"""Tiny LoraHub fixtures made at test time: PEFT LoRA modules with random, nonzero A and B for a
tiny random T5 (t5_tiny.py), and few-shot examples from our BBH split."""
import json
from pathlib import Path

import torch

from t5_tiny import bbh_prompts, write_jsonl


def make_modules(model_dir: Path, out_dir: Path, count: int, rank=4, alpha=8, seed=0,
                 targets=("q", "v", "wo"), scale=0.5, rslora=False):
    """`count` PEFT adapters for the model in model_dir, saved under out_dir/module_<i>.
    PEFT initialises lora_B to zero; we draw both A and B at random so every module matters."""
    from peft import LoraConfig, get_peft_model
    from transformers import T5ForConditionalGeneration

    paths = []
    for i in range(count):
        base = T5ForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32)
        config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets),
                            lora_dropout=0.0, task_type="SEQ_2_SEQ_LM", use_rslora=rslora)
        model = get_peft_model(base, config)
        gen = torch.Generator().manual_seed(seed * 1000 + i)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_" in name:
                    p.copy_(torch.randn(p.shape, generator=gen) * scale)
        path = out_dir / f"module_{i}"
        model.save_pretrained(path)
        cfg = json.loads((path / "adapter_config.json").read_text())
        cfg["base_model_name_or_path"] = str(model_dir)
        (path / "adapter_config.json").write_text(json.dumps(cfg, indent=2))
        paths.append(path)
    return paths


def few_shot_examples(bbh_dir: Path, out: Path, count=5):
    """`count` BBH few-shot prompts (first of each task by our split) as JSONL {input, output}."""
    rows = bbh_prompts(bbh_dir, per_task=1)[:count]
    write_jsonl(out, [{"input": i, "output": o} for i, o in rows])
    return rows
