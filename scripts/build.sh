#!/usr/bin/env bash
# Configures and builds the release tree at build/ (build/bin/lorahub). Extra args go to cmake.
# BUILD_DIR, BUILD_TYPE and BUILD_TARGETS (space-separated; default: all) steer it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Release} "$@" >/dev/null
targets=()
for t in ${BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$BUILD_DIR" -j "$(nproc)" "${targets[@]}"
