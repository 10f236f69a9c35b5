#!/usr/bin/env bash
# The main job on an embedded default: set-up, build, then LoraHub learning + inference.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=build bash scripts/build.sh
exec .venv/bin/python scripts/demo.py "$@"
