#!/usr/bin/env bash
# Bounded libFuzzer runs of the untrusted-file parsers, each from its committed seeds for
# LORAHUB_FUZZ_SECONDS (default 5). A crash, leak or sanitizer report fails the run and leaves
# the input under BUILD_DIR/fuzz-artifacts/. Usage: tests/fuzz/run.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: tests/fuzz/run.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
seconds=${LORAHUB_FUZZ_SECONDS:-5}
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"

for target in safetensors torch_pickle adapter_config http_request push_meta hf_commit; do
  corpus=$(mktemp -d)
  cp "$here/seeds/$target"/* "$corpus"/
  echo "fuzz_$target: ${seconds}s"
  if ! "$build/bin/fuzz_$target" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
      -rss_limit_mb=2048 -artifact_prefix="$artifacts/$target-" "$corpus" >"$corpus.log" 2>&1; then
    tail -40 "$corpus.log"
    echo "fuzz_$target FAILED; reproducer in $artifacts" >&2
    exit 1
  fi
  grep -E "^Done|DONE" "$corpus.log" | tail -1
  rm -rf "$corpus" "$corpus.log"
done
