"""lorahub_cpp: LoraHub on the lorahub C++ engine.

The reference's two calls, unchanged but for the import (lorahub_cpp.compat):

    from lorahub_cpp import lorahub_learning, lorahub_inference

and the API underneath (lorahub_cpp.api): Model, ModuleSet, Adapter, learn.
"""
from .api import (Adapter, Generation, LearnResult, LearnStep, LorahubError, Model, ModuleSet,
                  Scores, cpu_dispatch, hub_fetch, init_runtime, learn, version,
                  write_module_embedding)
from .compat import (AdaptedModel, Tokenizer, default_get_loss, default_l1_regularization,
                     lorahub_inference, lorahub_learning)

__version__ = version()  # the engine's one version (core/version.h)
__all__ = ["Adapter", "Generation", "LearnResult", "LearnStep", "LorahubError", "Model",
           "ModuleSet", "Scores", "cpu_dispatch", "hub_fetch", "init_runtime", "learn", "version",
           "write_module_embedding",
           "AdaptedModel", "Tokenizer", "default_get_loss", "default_l1_regularization",
           "lorahub_inference", "lorahub_learning"]
