#!/usr/bin/env bash
# The main job: set-up, build, then LoraHub on SmolLM2 + the committed library (scripts/demo.py:
# a held-out task, or --bbh DIR for a BBH task; writes an HTML report).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --demo  # the build and the demo only: no test oracles or servers
BUILD_DIR=build bash scripts/build.sh
exec .venv/bin/python scripts/demo.py "$@"
