"""Drop-in replacements for the reference package's two calls (lorahub 0.1.0, lorahub.algorithm):

    from lorahub_cpp import lorahub_learning, lorahub_inference   # was: from lorahub.algorithm ...
    weights, model, tokenizer = lorahub_learning(lora_module_list, example_inputs,
                                                 example_outputs, max_inference_step=40)
    predictions, accuracy = lorahub_inference(example_inputs, model, tokenizer, batch_size,
                                              example_outputs)

Same argument names, defaults and return shapes. What differs: the computation is lorahub's
C++ engine (the reference's loss and COBYLA search, on the f32 path), `model` is the base model
with the learned adapter (the reference merges it into a torch model), and `tokenizer` is the
model's own tokenizer. The reference's get_score aliasing bug (its last module's cached tensors
are overwritten by each composition) is not reproduced.
"""
from __future__ import annotations

import os
import random
from typing import List, Optional, Union

import numpy as np

from .api import Adapter, LorahubError, Model, ModuleSet, learn

__all__ = ["lorahub_learning", "lorahub_inference", "default_get_loss",
           "default_l1_regularization", "AdaptedModel", "Tokenizer"]


def default_get_loss(example_dataset, model, batch_size):
    """The reference's default loss. lorahub_cpp computes it in C++ (Σ of each batch's
    token-mean cross-entropy / number of examples): passing this function selects that."""
    raise LorahubError("default_get_loss is computed by the engine; pass it to lorahub_learning "
                       "as get_loss, do not call it")


def default_l1_regularization(weights):
    """The reference's regularization: 0.05 · mean |w|."""
    return 0.05 * sum(abs(x) for x in weights) / len(weights)


def _is_reference_default(fn, ours, name: str) -> bool:
    return fn is ours or (getattr(fn, "__module__", None) == "lorahub.algorithm"
                          and getattr(fn, "__name__", None) == name)


class Tokenizer:
    """The tokenizer part of a model (what lorahub_learning returns as `tokenizer`)."""

    def __init__(self, model: Model):
        self.model = model

    def encode(self, text: str, special_tokens: bool = True):
        return self.model.encode(text, special_tokens)

    def decode(self, ids, skip_special_tokens: bool = True):
        return self.model.decode(ids)

    def batch_decode(self, sequences, skip_special_tokens: bool = True):
        return [self.model.decode(ids) for ids in sequences]

    def __repr__(self):
        return f"Tokenizer({self.model.path!r})"


class AdaptedModel:
    """A base model with an adapter: what the reference's merged model is (lorahub_learning's
    `model`). generate/score run with the adapter; save(dir) writes the adapter (PEFT)."""

    def __init__(self, model: Model, adapter: Optional[Adapter]):
        self.model, self.adapter = model, adapter

    def generate(self, prompts, **options):
        return self.model.generate(prompts, adapter=self.adapter, **options)

    def score(self, inputs, outputs, batch_size: int = 0):
        return self.model.score(inputs, outputs, adapter=self.adapter, batch_size=batch_size)

    def save(self, dir) -> str:
        if self.adapter is None:
            raise LorahubError("this model has no adapter to save")
        return self.adapter.save(dir)

    save_pretrained = save

    def __repr__(self):
        return f"AdaptedModel({self.model!r}, {self.adapter!r})"


def _base_model_path(modules: ModuleSet) -> str:
    """The reference's default: the first module's base_model_name_or_path."""
    base = modules[0].base_model
    if not base:
        raise LorahubError(f"{modules.names[0]}: adapter_config.json names no "
                           "base_model_name_or_path; pass model_name_or_path")
    return base


def lorahub_learning(lora_module_list: List[str],
                     example_inputs: List[str],
                     example_outputs: List[str],
                     max_inference_step: int,
                     model_name_or_path=None,
                     batch_size=None,
                     get_loss=default_get_loss,
                     get_regular=default_l1_regularization,
                     seed=42):
    """LoraHub learning as the reference does it. Returns (weights: np.ndarray, model,
    tokenizer); (None, None) when no module is given (as the reference does). Modules are PEFT
    directories, or module ids on a lorahub hub (LORAHUB_ENDPOINT)."""
    random.seed(seed)  # as the reference does, for callers that rely on it
    np.random.seed(seed)
    if not _is_reference_default(get_loss, default_get_loss, "default_get_loss"):
        raise LorahubError(
            "lorahub_cpp: a custom get_loss is not supported: it would need a torch model, and "
            "lorahub_cpp scores examples in C++. Supported: the reference's loss (the default "
            "get_loss), or the per-example mean through lorahub_cpp.learn(..., "
            "loss='example-mean'). A custom get_regular(weights) is supported.")
    if isinstance(lora_module_list, (str, bytes)) or not hasattr(lora_module_list, "__len__"):
        raise TypeError("lora_module_list must be a list of module paths or ids, got "
                        f"{type(lora_module_list).__name__}")
    if len(lora_module_list) == 0:
        print("> No LoRA modules are provided. Please provide at least one LoRA module.")
        return None, None
    regularizer = None
    if not _is_reference_default(get_regular, default_l1_regularization,
                                 "default_l1_regularization"):
        if not callable(get_regular):
            raise TypeError("get_regular must be callable(weights) -> float")
        regularizer = get_regular
    modules = ModuleSet.load(lora_module_list)
    if model_name_or_path is None:
        model_name_or_path = _base_model_path(modules)
    model = model_name_or_path if isinstance(model_name_or_path, Model) else \
        Model.load(model_name_or_path)
    result = learn(model, modules, example_inputs, example_outputs,
                   steps=int(max_inference_step), seed=int(seed), regularizer=regularizer,
                   batch_size=0 if batch_size is None else int(batch_size))
    return result.weights, AdaptedModel(model, result.adapter), Tokenizer(model)


def _inference_model(model_or_name_path) -> AdaptedModel:
    if isinstance(model_or_name_path, AdaptedModel):
        return model_or_name_path
    if isinstance(model_or_name_path, Model):
        return AdaptedModel(model_or_name_path, None)
    if isinstance(model_or_name_path, (str, os.PathLike)):
        return AdaptedModel(Model.load(model_or_name_path), None)
    raise TypeError("model_or_name_path must be a path, a lorahub_cpp Model or what "
                    f"lorahub_learning returned, got {type(model_or_name_path).__name__}")


def _check_tokenizer(tokenizer, model: Model):
    """Our models carry their own tokenizer: the argument must be that one."""
    if isinstance(tokenizer, Tokenizer):
        path = tokenizer.model.path
    elif isinstance(tokenizer, Model):
        path = tokenizer.path
    elif isinstance(tokenizer, (str, os.PathLike)):
        path = os.fspath(tokenizer)
    else:
        raise TypeError("tokenizer_or_tokenizer_path must be a path or what lorahub_learning "
                        f"returned, got {type(tokenizer).__name__}")
    if os.path.realpath(path) != os.path.realpath(model.path):
        raise LorahubError(f"lorahub_cpp uses the model's own tokenizer: "
                           f"tokenizer_or_tokenizer_path {path!r} is not the model {model.path!r}")


def accuracy_score(outputs, ground_truths):
    """The reference's accuracy: exact match after strip, lower-case and removing '.'."""
    correct = total = 0
    for output, truth in zip(outputs, ground_truths):
        if output.strip().lower().replace(".", "") == truth.strip().lower().replace(".", ""):
            correct += 1
        total += 1
    return correct / total * 100


def lorahub_inference(example_inputs: List[str],
                      model_or_name_path,
                      tokenizer_or_tokenizer_path,
                      batch_size: int,
                      example_outputs: List[str] = None):
    """Greedy generation (up to 256 new tokens) for each input, in batches of batch_size, as
    the reference does. Returns (predictions, accuracy in % or None without outputs)."""
    model = _inference_model(model_or_name_path)
    _check_tokenizer(tokenizer_or_tokenizer_path, model.model)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if example_outputs is not None and len(example_outputs) != len(example_inputs):
        raise ValueError(f"example_inputs and example_outputs differ in length: "
                         f"{len(example_inputs)} inputs, {len(example_outputs)} outputs")
    predictions = model.generate(list(example_inputs), max_new_tokens=256, batch_size=batch_size)
    accuracy = None if example_outputs is None else accuracy_score(predictions, example_outputs)
    return predictions, accuracy
