#!/usr/bin/env bash
# The slow checks scripts/test.sh leaves out: whole real files (SmolLM2, Gemma 3 270M) against
# transformers and llama.cpp, GGUF LoRAs in llama.cpp, merged GGUFs, and the demo runs (tests
# marked slow). Run after scripts/test.sh (it uses its set-up and release build), before a release
# or when touching models/, tokenizer/ or lora/. Usage: scripts/test_slow.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x build/bin/lorahub ]] || BUILD_DIR=build bash scripts/build.sh
LORAHUB_BIN=$PWD/build/bin/lorahub .venv/bin/python -m pytest -q --durations=25 -m slow \
  tests/parity tests/e2e "$@"
