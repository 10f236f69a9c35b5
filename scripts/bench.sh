#!/usr/bin/env bash
# The benchmark of issue 5 in one run (bench/README.md): W1 learning and W2 inference against the
# reference LoraHub (PyPI lorahub 0.1.0) on a FLAN-T5-large-shaped model, W3 our forward pass
# against this machine's matmul peak. Writes bench/results/latest.json and the table in
# bench/README.md. The first run builds the workload into .cache/bench (about 4 GB, minutes).
# Usage: scripts/bench.sh [--size tiny] [--steps 40] [--w2-examples 100] [--skip-w2] ...
#        (BUILD_DIR=build-x to use another build tree; see bench/run.py --help)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export BUILD_DIR=${BUILD_DIR:-build}
if ! bash scripts/build.sh; then
  echo "bench: WARNING: the build failed; the harness runs with whatever $BUILD_DIR/bin holds" >&2
fi
# bench/run.py builds W3's programs (bench_forward is not in the default build) or stops.
exec .venv/bin/python bench/run.py --lorahub "$BUILD_DIR/bin/lorahub" --bench-bin "$BUILD_DIR/bin" \
  --command-line "scripts/bench.sh${*:+ $*}" "$@"
