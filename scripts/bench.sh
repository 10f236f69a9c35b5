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
# bench_forward needs the T5 engine; it is not part of the default build (bench/CMakeLists.txt).
if ! cmake --build "$BUILD_DIR" -j "$(nproc)" --target bench_forward >/dev/null 2>&1; then
  echo "bench: bench_forward does not build yet; W3 reports our forward pass as missing" >&2
  rm -f "$BUILD_DIR/bin/bench_forward"
fi
exec .venv/bin/python bench/run.py --lorahub "$BUILD_DIR/bin/lorahub" --bench-bin "$BUILD_DIR/bin" \
  --command-line "scripts/bench.sh${*:+ $*}" "$@"
