"""The reference's two calls through lorahub_cpp: one script, run once with the reference package
(lorahub 0.1.0) and once with ours, the import line being the only difference, on a tiny random
T5 and PEFT modules made here.

The search trajectories differ (nevergrad's NGOpt against our COBYLA, and the reference's
aliasing bug: test_lorahub_reference.py), so we compare what must agree: each side's learned
weights get the same objective from both implementations (within 1e-4, f32), and at equal
weights lorahub_inference predicts the same strings (and accuracy). The reference runs with its
cache de-aliased (what get_score means to compute), as in test_lorahub_reference.py.
"""
import json

import numpy as np
import pytest

from lorahub_tiny import few_shot_examples, make_modules
from python_package import run_python
from t5_tiny import make_t5, train_spm

N_MODULES = 3
STEPS = 8

# The user's script. {IMPORT} is the only line that differs between the two runs.
# lorahub_inference runs one input per batch: the reference's calls model.generate(input_ids=...)
# without the attention mask, so in a padded batch its T5 attends to the padding (transformers
# 5 does not infer the mask; with the mask passed, transformers gives exactly our texts). With
# batch size 1 there is no padding, and both sides compute what the reference means to.
SCRIPT = """
import json, sys
{IMPORT}
fx = json.load(open(sys.argv[1]))
weights, model, tokenizer = lorahub_learning(fx["modules"], fx["inputs"], fx["outputs"],
                                             max_inference_step={STEPS},
                                             model_name_or_path=fx["model"], seed=42)
predictions, accuracy = lorahub_inference(fx["inputs"], model, tokenizer, 1, fx["outputs"])
base_predictions, base_accuracy = lorahub_inference(fx["inputs"], fx["model"], fx["model"], 1)
print("RESULT " + json.dumps({"weights": [float(w) for w in weights],
                              "type": type(weights).__name__,
                              "predictions": predictions, "accuracy": accuracy,
                              "base_predictions": base_predictions,
                              "base_accuracy": base_accuracy}))
"""
OURS = "from lorahub_cpp import lorahub_learning, lorahub_inference"
THEIRS = "from lorahub.algorithm import lorahub_learning, lorahub_inference"
# Run before the reference's script: its module cache gets copies instead of live parameters.
DEALIAS = """
import lorahub.algorithm as a
_load = a.load_base_model_and_lora_modules
def load(*args, **kw):
    model, tok, cache = _load(*args, **kw)
    return model, tok, {k: {n: t.clone() for n, t in d.items()} for k, d in cache.items()}
a.load_base_model_and_lora_modules = load
"""

# Our objective and our predictions at given weights, through the Pythonic API.
AT_WEIGHTS = """
import json, sys
import numpy as np
from lorahub_cpp import AdaptedModel, Model, ModuleSet, Tokenizer, lorahub_inference
fx, weights = json.load(open(sys.argv[1])), json.loads(sys.argv[2])
model, modules = Model.load(fx["model"]), ModuleSet.load(fx["modules"])
out = []
for w in weights:
    adapter = modules.compose(w)
    s = model.score(fx["inputs"], fx["outputs"], adapter=adapter)
    objective = s.loss_sum.sum() / s.tokens.sum() / len(fx["inputs"]) + 0.05 * np.abs(w).mean()
    predictions, accuracy = lorahub_inference(fx["inputs"], AdaptedModel(model, adapter),
                                              Tokenizer(model), 1, fx["outputs"])
    out.append({"objective": float(objective), "predictions": predictions, "accuracy": accuracy})
print("RESULT " + json.dumps(out))
"""


def result_of(res):
    line = [l for l in res.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line.removeprefix("RESULT "))


@pytest.fixture(scope="module")
def fx(bbh_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("python_compat")
    # v1.0: transformers 5's T5 generate sizes its cache by num_layers, and v1.1's tiny config
    # has more decoder than encoder layers (IndexError in the reference's lorahub_inference).
    model_dir = make_t5("v1.0", train_spm(bbh_dir, root), root / "t5")
    modules = make_modules(model_dir, root, N_MODULES)
    rows = few_shot_examples(bbh_dir, root / "examples.jsonl")
    data = {"model": str(model_dir), "modules": [str(m) for m in modules],
            "inputs": [r[0] for r in rows], "outputs": [r[1] for r in rows]}
    (root / "fx.json").write_text(json.dumps(data))
    return {"root": root, "json": root / "fx.json", **data}


@pytest.fixture(scope="module")
def runs(fx):
    script = SCRIPT.replace("{STEPS}", str(STEPS))
    ours = result_of(run_python(script.replace("{IMPORT}", OURS), fx["json"]))
    theirs = result_of(run_python(DEALIAS + script.replace("{IMPORT}", THEIRS), fx["json"]))
    return ours, theirs


def reference_at(fx, weights):
    """The reference's objective (get_score, de-aliased cache) and its lorahub_inference on the
    merged model, at each weight vector."""
    import torch
    from lorahub.algorithm import (default_get_loss, default_l1_regularization,
                                   get_final_weights, get_score, load_base_model_and_lora_modules,
                                   load_dataset, lorahub_inference)
    from peft.utils.save_and_load import set_peft_model_state_dict

    torch.set_num_threads(1)
    out = []
    for w in weights:
        model, tok, cache = load_base_model_and_lora_modules(fx["modules"], fx["model"])
        cache = {k: {n: t.clone() for n, t in d.items()} for k, d in cache.items()}
        dataset = load_dataset(fx["inputs"], fx["outputs"], tok)
        w = np.asarray(w, dtype=np.float64)
        objective = get_score(w, model, cache, dataset, None, default_get_loss,
                              default_l1_regularization)
        set_peft_model_state_dict(model, get_final_weights(w, fx["modules"], cache))
        predictions, accuracy = lorahub_inference(fx["inputs"], model.merge_and_unload(), tok, 1,
                                                  fx["outputs"])
        out.append({"objective": objective, "predictions": predictions, "accuracy": accuracy})
    return out


def test_return_shapes_match_the_reference(runs):
    ours, theirs = runs
    assert ours["type"] == theirs["type"] == "ndarray"
    assert len(ours["weights"]) == len(theirs["weights"]) == N_MODULES
    assert len(ours["predictions"]) == len(theirs["predictions"])
    assert isinstance(ours["accuracy"], float) and isinstance(theirs["accuracy"], float)
    assert ours["base_accuracy"] is None and theirs["base_accuracy"] is None


def test_base_model_predictions_identical(runs):
    ours, theirs = runs
    assert ours["base_predictions"] == theirs["base_predictions"]


def test_objectives_and_predictions_agree_at_both_sides_weights(fx, runs):
    ours, theirs = runs
    weights = [ours["weights"], theirs["weights"]]
    ref = reference_at(fx, weights)
    our = result_of(run_python(AT_WEIGHTS, fx["json"], json.dumps(weights)))
    for side, w, r, o in zip(("ours", "reference's"), weights, ref, our):
        print(f"{side} weights {np.round(w, 4)}: objective ours {o['objective']:.7f} "
              f"reference {r['objective']:.7f}")
        assert o["objective"] == pytest.approx(r["objective"], rel=1e-4)
        assert o["predictions"] == r["predictions"]
        assert o["accuracy"] == r["accuracy"]
    # What each script's run returned is what the other implementation computes at its weights.
    assert ours["predictions"] == ref[0]["predictions"]
    assert theirs["predictions"] == ref[1]["predictions"]
    # Both searches moved away from w = 0 and found no worse than it.
    at_zero = reference_at(fx, [np.zeros(N_MODULES)])[0]["objective"]
    assert ref[0]["objective"] <= at_zero + 1e-9 and ref[1]["objective"] <= at_zero + 1e-9


def test_custom_get_regular_is_honoured_and_custom_get_loss_refused(fx):
    code = """
import json, sys
import numpy as np
from lorahub_cpp import LorahubError, lorahub_learning
fx = json.load(open(sys.argv[1]))
seen = []
def get_regular(w):
    seen.append(np.asarray(w).copy())
    return 10.0 * float(np.sum((np.asarray(w) - 0.7) ** 2))  # pulls every weight to 0.7
weights, model, tok = lorahub_learning(fx["modules"], fx["inputs"], fx["outputs"], 25,
                                       model_name_or_path=fx["model"], get_regular=get_regular)
try:
    lorahub_learning(fx["modules"], fx["inputs"], fx["outputs"], 5, get_loss=lambda d, m, b: 0.0)
    print("NO ERROR")
except LorahubError as e:
    print("ERROR", e)
print("RESULT " + json.dumps({"weights": weights.tolist(), "calls": len(seen)}))
"""
    res = run_python(code, fx["json"])
    out = result_of(res)
    assert out["calls"] >= 25  # at least once per evaluation
    assert np.abs(np.array(out["weights"]) - 0.7).max() < 0.25, out["weights"]
    assert "ERROR lorahub_cpp: a custom get_loss is not supported" in res.stdout
    assert "get_regular" in res.stdout
