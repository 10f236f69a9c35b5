"""The Pythonic API over the C++ engine (lorahub_cpp._core, which binds include/lorahub/lorahub.h).

    model = Model.load("flan-t5-large/")              # or a .gguf file; bf16=True for speed
    modules = ModuleSet.load(["lora/a", "lora/b"])    # local PEFT dirs or ids on a lorahub hub
    result = learn(model, modules, inputs, outputs, steps=40)
    result.weights, result.history, result.adapter.save("out/")
    model.generate(prompts, adapter=result.adapter, max_new_tokens=64)

Every call computes without the GIL, so Python threads run in parallel (one model, one module set
or adapter per thread). Ctrl-C stops a running learn or generate with KeyboardInterrupt. Engine
failures are LorahubError with the engine's message (it names the file, tensor or field).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Sequence, Union

import numpy as np

from . import _core

__all__ = ["LorahubError", "Model", "Adapter", "ModuleSet", "Generation", "Scores", "LearnStep",
           "LearnResult", "learn", "hub_fetch", "write_module_embedding", "init_runtime", "version", "cpu_dispatch"]


class LorahubError(RuntimeError, ValueError):
    """An error of the lorahub engine: a bad file, tensor, field or argument. Its message says
    which. A RuntimeError and, since most are bad input, a ValueError too."""


_core.set_error_class(LorahubError)
PathLike = Union[str, "os.PathLike[str]"]


def init_runtime(threads: int = 0) -> None:
    """Compute threads for the whole process (0 = all cores). Optional: loading a model calls it
    with defaults; calling it again changes the thread count."""
    _core.init_runtime(int(threads))


def version() -> str:
    return _core.version()


def cpu_dispatch() -> str:
    """The SIMD paths the engine takes on this CPU, e.g. "loops x86-64-v4 (clones); quant
    avx512vnni; bf16-small-rows off" (a wheel runs on any x86-64-v2 CPU and picks these when
    loaded)."""
    return _core.cpu_dispatch()


def _strings(values, what: str) -> list[str]:
    """A list of str from a sequence of str (not a lone str, which is a sequence of letters)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{what} must be a list of strings, got {type(values).__name__}")
    out = list(values)
    for i, v in enumerate(out):
        if not isinstance(v, str):
            raise TypeError(f"{what}[{i}] must be a str, got {type(v).__name__}")
    return out


def _paths(values, what: str) -> list[str]:
    if isinstance(values, (str, bytes, os.PathLike)) or not isinstance(values, Iterable):
        raise TypeError(f"{what} must be a list of paths or ids, got {type(values).__name__}")
    return [os.fspath(v) if isinstance(v, os.PathLike) else v for v in values]


def _same_length(inputs, outputs):
    inputs, outputs = _strings(inputs, "inputs"), _strings(outputs, "outputs")
    if len(inputs) != len(outputs):
        raise ValueError(f"inputs and outputs differ in length: {len(inputs)} inputs, "
                         f"{len(outputs)} outputs")
    return inputs, outputs


def _progress_bar(enabled: bool, total: int, desc: str):
    """A tqdm bar when tqdm is installed and progress is wanted, else None."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False)


class Adapter:
    """One LoRA adapter (a PEFT module or a composition), immutable."""

    def __init__(self, core: "_core.Adapter"):
        self._core = core

    @classmethod
    def load(cls, path: PathLike) -> "Adapter":
        """A PEFT adapter directory (adapter_config.json + adapter_model.safetensors or .bin)."""
        return cls(_core.Adapter.load(os.fspath(path)))

    def save(self, dir: PathLike) -> str:
        """Writes a PEFT adapter directory (peft.PeftModel.from_pretrained reads it)."""
        _core.Adapter.save(self._core, os.fspath(dir))
        return os.fspath(dir)

    name = property(lambda self: self._core.name)
    base_model = property(lambda self: self._core.base_model)
    rank = property(lambda self: self._core.rank)
    target_layers = property(lambda self: self._core.target_layers)

    def __repr__(self):
        return f"Adapter({self.name!r}, rank={self.rank})"


def _core_adapter(adapter) -> Optional["_core.Adapter"]:
    if adapter is None:
        return None
    if isinstance(adapter, (str, os.PathLike)):
        adapter = Adapter.load(adapter)
    if not isinstance(adapter, Adapter):
        raise TypeError(f"adapter must be an Adapter, a path or None, got {type(adapter).__name__}")
    return adapter._core


@dataclass
class Scores:
    """Teacher-forced cross-entropy of each output given its input."""
    loss_sum: np.ndarray  # summed over each output's tokens
    tokens: np.ndarray    # how many tokens each output has

    @property
    def loss(self) -> np.ndarray:
        """Token-mean cross-entropy per example."""
        return self.loss_sum / np.maximum(self.tokens, 1)


@dataclass
class Generation:
    text: str
    ids: list
    finish_reason: str  # "stop", "length" or "cancelled"
    prompt_tokens: int


class Model:
    """A loaded model: an HF model directory (T5 / FLAN-T5, Llama family) or a .gguf file.
    Immutable; share one among threads."""

    def __init__(self, core: "_core.Model"):
        self._core = core

    @classmethod
    def load(cls, path: PathLike, bf16: bool = False, threads: int = 0,
             merge: Sequence[PathLike] = ()) -> "Model":
        """bf16: the fast bf16 path (else f32, the reference); threads: compute threads for the
        process (0 = all cores); merge: adapter directories merged into the weights."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        if threads:
            init_runtime(threads)
        return cls(_core.Model.load(os.fspath(path), bool(bf16), _paths(merge, "merge")))

    path = property(lambda self: self._core.path)
    architecture = property(lambda self: self._core.architecture)
    is_encoder_decoder = property(lambda self: self._core.is_encoder_decoder)
    has_chat_template = property(lambda self: self._core.has_chat_template)
    lora_targets = property(lambda self: self._core.lora_targets)

    def encode(self, text: str, special_tokens: bool = True) -> list:
        return self._core.encode(text, special_tokens)

    def decode(self, ids: Sequence[int]) -> str:
        return self._core.decode(list(ids))

    def chat_prompt(self, messages: Sequence[dict], add_generation_prompt: bool = True) -> str:
        """The prompt for [{"role": ..., "content": ...}, ...] from the model's chat template."""
        return self._core.chat_prompt([(m["role"], m["content"]) for m in messages],
                                      add_generation_prompt)

    def score(self, inputs: Sequence[str], outputs: Sequence[str], adapter=None,
              batch_size: int = 0) -> Scores:
        """Cross-entropy of each output given its input (with `adapter`, or the base model)."""
        inputs, outputs = _same_length(inputs, outputs)
        loss_sum, tokens = self._core.score(inputs, outputs, _core_adapter(adapter),
                                            int(batch_size))
        return Scores(loss_sum, tokens)

    def generate(self, prompts: Union[str, Sequence[str]], adapter=None,
                 max_new_tokens: int = 256, stop: Sequence[str] = (), temperature: float = 0.0,
                 top_k: int = 0, top_p: float = 1.0, seed: int = 0, batch_size: int = 10,
                 stream: Optional[Callable] = None, progress: bool = True,
                 details: bool = False):
        """Generated text for each prompt (greedy unless temperature > 0), cut before the first
        stop string. stream(index, text, done, finish_reason) gets each piece of final text as it
        is made (return False to stop that sequence). A list of str, or of Generation with
        details=True; one result for a single prompt."""
        single = isinstance(prompts, str)
        prompts = [prompts] if single else _strings(prompts, "prompts")
        bar = _progress_bar(progress and stream is None, len(prompts), "generate")

        def on_progress(done, total):
            if bar is not None:
                bar.total = total
                bar.update(done - bar.n)

        try:
            rows = self._core.generate(prompts, _core_adapter(adapter), int(max_new_tokens),
                                       float(temperature), int(top_k), float(top_p), int(seed),
                                       _strings(stop, "stop"), int(batch_size), stream,
                                       on_progress)
        finally:
            if bar is not None:
                bar.close()
        out = [Generation(*r) if details else r[0] for r in rows]
        return out[0] if single else out

    def __repr__(self):
        return f"Model({self.path!r}, {self.architecture})"


class ModuleSet:
    """The pool LoraHub composes: adapters of one base model with equal keys and shapes."""

    def __init__(self, core: "_core.ModuleSet"):
        self._core = core

    @classmethod
    def load(cls, names: Sequence[PathLike], bf16: bool = False, endpoint: str = "",
             token: str = "", cache_dir: PathLike = "") -> "ModuleSet":
        """names: PEFT adapter directories, or module ids on a lorahub hub (endpoint, else the
        LORAHUB_ENDPOINT environment variable), fetched once into cache_dir."""
        return cls(_core.ModuleSet.load(_paths(names, "names"), bool(bf16), endpoint, token,
                                        os.fspath(cache_dir)))

    def __len__(self):
        return len(self._core)

    def __getitem__(self, i: int) -> Adapter:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("module index out of range")
        return Adapter(self._core.module(i))

    names = property(lambda self: list(self._core.names))

    def compose(self, weights, method: str = "lorahub", density: Optional[float] = None,
                majority_sign: str = "total", svd_rank: int = 0,
                svd_clamp: Optional[float] = None, seed: int = 0) -> Adapter:
        """One adapter from the modules and one weight per module: LoraHub's Σ wᵢAᵢ, Σ wᵢBᵢ, or
        one of PEFT's add_weighted_adapter types (linear, cat, svd, ties, dare_linear, ...)."""
        return Adapter(self._core.compose(_weights(weights, len(self)),
                                          _compose_options(method, density, majority_sign,
                                                           svd_rank, svd_clamp, seed)))

    def __repr__(self):
        return f"ModuleSet({self.names!r})"


def _weights(weights, count: int) -> np.ndarray:
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"weights must be numbers: {e}") from None
    if w.ndim != 1 or len(w) != count:
        raise ValueError(f"weights: expected {count} numbers (one per module), got shape {w.shape}")
    return w


def _compose_options(method, density, majority_sign, svd_rank, svd_clamp, seed):
    return _core.ComposeOptions(method, density, majority_sign, int(svd_rank), svd_clamp,
                                int(seed))


@dataclass
class LearnStep:
    evaluation: int  # 1-based
    weights: np.ndarray
    objective: float  # loss + regularization
    loss: float


@dataclass
class LearnResult:
    weights: np.ndarray  # the best evaluated weights
    objective: float
    history: list = field(default_factory=list)  # LearnStep per evaluation
    adapter: Optional[Adapter] = None  # the modules composed with `weights`
    seconds: float = 0.0

    @property
    def objectives(self) -> np.ndarray:
        return np.array([s.objective for s in self.history])


def learn(model: Union[Model, PathLike], modules: Union[ModuleSet, Sequence[PathLike]],
          inputs: Sequence[str], outputs: Sequence[str], steps: int = 40,
          optimizer: str = "cobyla", seed: int = 42, l1: float = 0.05,
          regularizer: Optional[Callable[[np.ndarray], float]] = None, loss: str = "reference",
          batch_size: int = 0, method: str = "lorahub", density: Optional[float] = None,
          majority_sign: str = "total", svd_rank: int = 0, svd_clamp: Optional[float] = None,
          compose_seed: int = 0, callback: Optional[Callable[[LearnStep], object]] = None,
          progress: bool = True) -> LearnResult:
    """LoraHub learning: weights for `modules` that minimize the few-shot loss of the examples
    plus l1 · mean |w| (or regularizer(weights)), searched gradient-free with `steps`
    evaluations. callback(step) runs after each evaluation; returning False stops the search
    (LorahubError "cancelled"). Ctrl-C stops it with KeyboardInterrupt."""
    if not isinstance(model, Model):
        model = Model.load(model)
    if not isinstance(modules, ModuleSet):
        modules = ModuleSet.load(modules)
    inputs, outputs = _same_length(inputs, outputs)
    if regularizer is not None and not callable(regularizer):
        raise TypeError("regularizer must be callable(weights) -> float")
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable(step)")
    bar = _progress_bar(progress, int(steps), "learn")

    def on_step(evaluation, weights, objective, loss_value):
        step = LearnStep(evaluation, weights, objective, loss_value)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(objective=f"{objective:.4f}")
        return True if callback is None else callback(step) is not False

    try:
        r = _core.learn(model._core, modules._core, inputs, outputs, int(steps), optimizer,
                        int(seed), float(l1), loss, int(batch_size),
                        _compose_options(method, density, majority_sign, svd_rank, svd_clamp,
                                         compose_seed), regularizer, on_step)
    finally:
        if bar is not None:
            bar.close()
    return LearnResult(r["weights"], r["objective"], [LearnStep(*s) for s in r["history"]],
                       Adapter(r["adapter"]), r["seconds"])


def hub_fetch(ids: Sequence[str], endpoint: str = "", token: str = "",
              cache_dir: PathLike = "") -> list[str]:
    """Downloads (once, cached by revision) modules from a lorahub hub; their local dirs."""
    return list(_core.hub_fetch(_strings(ids, "ids"), endpoint, token, os.fspath(cache_dir)))


def write_module_embedding(model: Model, module_dir: PathLike) -> str:
    """Writes module_dir/lorahub_embedding.json: the module's retrieval embedding under `model`
    (the mean over the first 20 inputs of module_dir/examples.jsonl of the model's mean last
    hidden state, what `learn --select retrieval:K` compares), naming the model file by its
    SHA-256. Uploaded with the module (`lorahub hub push`, or huggingface_hub's upload_folder),
    it lets retrieval over a hub rank the module without downloading it. Returns the path."""
    return _core.write_module_embedding(model._core, os.fspath(module_dir))
