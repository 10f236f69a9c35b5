#!/usr/bin/env bash
# Everything: set-up, release build, GoogleTest (ctest), the malformed-input tests again under
# AddressSanitizer + UBSan, bounded libFuzzer runs, and the pytest parity and end-to-end tests
# against the real Python stack. Usage: scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
section() { echo; echo "=== $* ($(( $(date +%s) - start ))s)"; }

# pytest over tests/parity and tests/e2e in two passes: first on pytest-xdist workers, one per
# core (--dist loadfile: a file's tests and its module fixtures stay on one worker), then the
# tests marked serial (they assert wall-clock bounds) alone; only the files that mark some are
# collected again. run_pytest MARK_EXPRESSION [pytest args]; pytest's 5 = none selected.
run_pytest() {
  local mark=$1 rc=0 serial; shift
  .venv/bin/python -m pytest -q -n "$(nproc)" --dist loadfile -m "($mark) and not serial" \
    tests/parity tests/e2e "$@"
  mapfile -t serial < <(grep -rl --include='test_*.py' 'mark\.serial' tests/parity tests/e2e)
  ((${#serial[@]})) || return 0
  .venv/bin/python -m pytest -q -m "($mark) and serial" "${serial[@]}" "$@" || rc=$?
  ((rc == 0 || rc == 5)) || return $rc
}

section "set-up"
bash scripts/setup.sh

section "release build"
BUILD_DIR=build bash scripts/build.sh

section "unit tests (ctest)"
ctest --test-dir build --output-on-failure -j "$(nproc)"

section "sanitizer build (ASan + UBSan) and its tests"
# -g1 (line tables only): sanitizer reports keep file:line, and the build (the step's largest
# part on a 2-core machine) compiles and links ~17 % faster than with full -g.
BUILD_DIR=build-asan BUILD_TYPE=Debug bash scripts/build.sh -DLORAHUB_SANITIZE=ON -DLORAHUB_BENCH=OFF \
  -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DCMAKE_C_FLAGS_DEBUG=-g1
# GoogleTest suites named *Malformed* hold the bad-input tests; tests named *Batcher* drive the
# continuous batcher (sequences join and leave between steps, adapters freed when unused).
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j "$(nproc)" \
  -R 'Malformed|Batcher'
# LORAHUB_PYTHON_SANITIZE: the Python extension's bad-input tests with an ASan build of it.
LORAHUB_BIN=$PWD/build-asan/bin/lorahub ASAN_OPTIONS=detect_leaks=0 LORAHUB_PYTHON_SANITIZE=1 \
  run_pytest malformed

section "thread-sanitizer build of the session checks (run by tests/parity/test_sessions.py)"
BUILD_DIR=build-tsan BUILD_TYPE=RelWithDebInfo BUILD_TARGETS=check_sessions bash scripts/build.sh \
  -DLORAHUB_SANITIZE_THREAD=ON -DLORAHUB_BENCH=OFF

if [[ -f tests/fuzz/CMakeLists.txt ]]; then
  section "fuzz build (clang libFuzzer) and bounded runs"
  # The preset (CMakePresets.json) configures build-fuzz with clang; only the fuzzers are built.
  cmake --preset fuzz >/dev/null
  cmake --build build-fuzz -j "$(nproc)" --target fuzzers
  bash tests/fuzz/run.sh build-fuzz
fi

section "pytest: parity with transformers / peft / safetensors / reference lorahub, and e2e"
# Tests marked slow (whole real files against transformers / llama.cpp, the demo runs) are the
# benchmarks' share: scripts/test_slow.sh runs them (CI's time limit does not hold them all).
LORAHUB_BIN=$PWD/build/bin/lorahub run_pytest "not slow" --durations=25 "$@"

section "all tests passed in $(( $(date +%s) - start ))s"
