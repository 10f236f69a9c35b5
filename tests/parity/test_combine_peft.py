"""Every PEFT combination type of `lorahub compose` / `--compose` against PEFT 0.21's own
LoraModel.add_weighted_adapter, on a tiny random T5 with three PEFT-made modules (random,
nonzero A and B; one weight negative):

* the combined tensors within 1e-6; for the _svd methods the update B·A within 5e-6 (measured:
  1.7e-6) and the factors within 2e-5 (measured: 5.6e-6, vectors of close singular values), up to the sign of each singular pair (two f32 LAPACKs: OpenBLAS's
  sgesdd here, MKL's in torch);
* the combined adapter as PeftModel.from_pretrained loads it gives PEFT's logits within 1e-4,
  and our own forward pass (`score --lora M... --weights --compose`, which merges the adapter
  into W) within 1e-4 + 1e-4 relative.

DARE draws its masks with torch.bernoulli, whose stream we do not reproduce: the test records
the masks PEFT drew (a wrapper around merge_utils.random_pruning) and hands them to ours with
the testing option --dare-masks. Our own seeded masks are tested in tests/unit/lora."""
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from safetensors.torch import save_file

from conftest import run_lorahub
from lorahub_tiny import few_shot_examples, make_modules
from t5_tiny import hf_label_logits, hf_tokenizer, load_hf, make_t5, train_spm

torch.set_num_threads(1)
WEIGHTS = [0.7, -0.4, 1.2]
PREFIX = "base_model.model."

CASES = [
    ("linear", {}),
    ("cat", {}),
    ("svd", {}),
    ("svd", {"svd_rank": 2, "svd_clamp": 0.9}),
    ("ties", {"density": 0.5}),
    ("ties", {"density": 0.4, "majority_sign_method": "frequency"}),
    ("ties_svd", {"density": 0.5}),
    ("dare_linear", {"density": 0.5}),
    ("dare_ties", {"density": 0.6, "majority_sign_method": "frequency"}),
    ("dare_linear_svd", {"density": 0.5, "svd_rank": 3}),
    ("dare_ties_svd", {"density": 0.5}),
    ("magnitude_prune", {"density": 0.3}),
    ("magnitude_prune_svd", {"density": 0.5}),
]


@pytest.fixture(scope="module")
def fx(bbh_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("combine")
    spiece = train_spm(bbh_dir, root)
    model_dir = make_t5("v1.1", spiece, root / "t5")
    modules = make_modules(model_dir, root, 3, scale=0.1)
    rows = few_shot_examples(bbh_dir, root / "examples.jsonl", count=3)
    return {"root": root, "model": model_dir, "modules": modules, "rows": rows,
            "examples": root / "examples.jsonl", "tok": hf_tokenizer(model_dir)}


def peft_pool(fx):
    from peft import PeftModel

    model = PeftModel.from_pretrained(load_hf(fx["model"]), fx["modules"][0], adapter_name="m0")
    for i, path in enumerate(fx["modules"][1:], start=1):
        model.load_adapter(path, adapter_name=f"m{i}")
    return model.eval()


def lora_layers(model, adapter):
    from peft.tuners.lora import LoraLayer

    return [name[len(PREFIX):] for name, m in model.named_modules()
            if isinstance(m, LoraLayer) and adapter in m.lora_A]


def peft_combine(fx, method, kw, masks_out, svd_inputs=None):
    """PEFT's combination, and the DARE masks it drew, named as --dare-masks reads them. The _svd
    types: the f32 matrices PEFT hands torch.linalg.svd are appended to svd_inputs (a dict, by
    layer) where given."""
    import peft.utils.merge_utils as mu

    model = peft_pool(fx)
    drawn, decomposed = [], []
    original, original_svd = mu.random_pruning, torch.linalg.svd

    def recording(tensor, density, rescale):
        mask = torch.bernoulli(torch.full_like(tensor, density))
        drawn.append(mask.reshape(-1).clone())
        pruned = tensor * mask
        return pruned / density if rescale else pruned

    def recording_svd(matrix, *args, **kwargs):
        decomposed.append(matrix.detach().numpy().copy())
        return original_svd(matrix, *args, **kwargs)

    mu.random_pruning, torch.linalg.svd = recording, recording_svd
    try:
        model.add_weighted_adapter(["m0", "m1", "m2"], WEIGHTS, "c", combination_type=method, **kw)
    finally:
        mu.random_pruning, torch.linalg.svd = original, original_svd
    model.set_adapter("c")
    if svd_inputs is not None:
        layers = lora_layers(model, "c")
        assert len(layers) == len(decomposed)
        svd_inputs.update(zip(layers, decomposed))
    if drawn:
        sides = ["delta"] if method.endswith("_svd") else ["lora_A", "lora_B"]
        names = [f"{layer}.{side}.{i}" for layer in lora_layers(model, "c") for side in sides
                 for i in range(3)]
        assert len(names) == len(drawn)
        save_file(dict(zip(names, drawn)), masks_out)
    from peft import get_peft_model_state_dict

    state = {k: v.detach().numpy() for k, v in get_peft_model_state_dict(model, adapter_name="c").items()}
    return model, state


def cli_args(method, kw):
    args = []
    if "density" in kw:
        args += ["--density", kw["density"]]
    if "majority_sign_method" in kw:
        args += ["--majority-sign", kw["majority_sign_method"]]
    if "svd_rank" in kw:
        args += ["--svd-rank", kw["svd_rank"]]
    if "svd_clamp" in kw:
        args += ["--svd-clamp", kw["svd_clamp"]]
    return args


def aligned_svd_factors(ours, theirs):
    """Flips each of our singular pairs (row c of A, column c of B) to PEFT's sign."""
    out = dict(ours)
    for key in ours:
        if not key.endswith("lora_A.weight"):
            continue
        bkey = key.replace("lora_A", "lora_B")
        a, b = ours[key].copy(), ours[bkey].copy()
        for c in range(a.shape[0]):
            if np.dot(a[c], theirs[key][c]) < 0:
                a[c], b[:, c] = -a[c], -b[:, c]
        out[key], out[bkey] = a, b
    return out


@pytest.mark.parametrize("method,kw", CASES, ids=[f"{m}-{i}" for i, (m, _) in enumerate(CASES)])
def test_combination_matches_peft(fx, method, kw, tmp_path):
    from peft import PeftModel

    masks = tmp_path / "masks.safetensors"
    peft_model, theirs = peft_combine(fx, method, kw, masks)
    extra = cli_args(method, kw) + (["--dare-masks", masks] if masks.exists() else [])
    weights = ",".join(repr(w) for w in WEIGHTS)
    out = tmp_path / "ours"
    run_lorahub("compose", "--lora", *fx["modules"], f"--weights={weights}", "--method", method,
                "--out", out, *extra)
    ours = load_file(out / "adapter_model.safetensors")
    assert sorted(ours) == sorted(theirs)
    factor_tol = 1e-6
    if method.endswith("svd"):
        # Not 1e-6, because PEFT's SVD is torch's f32 sgesdd: against the float64 truncated SVD
        # of the very matrix PEFT decomposes, PEFT's B·A is off by up to 1.7e-6 (dare_linear_svd;
        # dare_ties_svd 9.9e-7, others 2.9e-7 to 4.6e-7), ours (float64 Gram eigenpairs) by at
        # most 6.5e-8 (test_svd_types_against_a_float64_svd_of_peft_delta, which holds ours to
        # 1e-6). So |ours - PEFT| is PEFT's own f32 error; the DARE types' pruned deltas are
        # full rank with close singular values, which an f32 SVD resolves worst. Singular vectors
        # of close singular values (eps / gap) differ more per entry: factors within 2e-5.
        factor_tol = 2e-5
        if "svd_clamp" not in kw:
            ours = aligned_svd_factors(ours, theirs)
        for key in (k for k in theirs if k.endswith("lora_A.weight")):
            bkey = key.replace("lora_A", "lora_B")
            np.testing.assert_allclose(ours[bkey] @ ours[key], theirs[bkey] @ theirs[key],
                                       rtol=0, atol=5e-6, err_msg=key)
    for key, value in theirs.items():
        assert ours[key].shape == value.shape, key
        np.testing.assert_allclose(ours[key], value, rtol=0, atol=factor_tol, err_msg=key)
    assert any(np.abs(v).max() > 1e-2 for v in theirs.values())

    rows = fx["rows"]
    expected = hf_label_logits(peft_model, fx["tok"], rows)
    base = hf_label_logits(load_hf(fx["model"]), fx["tok"], rows)
    assert max(np.abs(e - b).max() for e, b in zip(expected, base)) > 1e-2  # the adapter matters
    loaded = PeftModel.from_pretrained(load_hf(fx["model"]), out).eval()
    for got, want in zip(hf_label_logits(loaded, fx["tok"], rows), expected):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
    dump = tmp_path / "logits.safetensors"
    run_lorahub("score", "--model", fx["model"], "--lora", *fx["modules"], f"--weights={weights}",
                "--compose", method, "--data", fx["examples"], "--batch-size", 0,
                "--dump-logits", dump, *extra)
    logits = load_file(dump)
    for i, want in enumerate(expected):  # merged into W in f32 (PEFT runs unmerged): ~3e-5 rel.
        np.testing.assert_allclose(logits[f"example.{i}"], want, rtol=1e-4, atol=1e-4)


def float64_svd_update(fx, key_a, rank):
    """The svd type's truncated update in float64 from the modules' f32 tensors: the exact
    answer both f32 LAPACKs approximate."""
    delta = 0
    for w, module in zip(WEIGHTS, fx["modules"]):
        t = load_file(module / "adapter_model.safetensors")
        a = t[key_a].astype(np.float64)
        b = t[key_a.replace("lora_A", "lora_B")].astype(np.float64)
        delta = delta + w * 2.0 * (b @ a)  # scaling lora_alpha / r = 8 / 4
    u, s, vt = np.linalg.svd(delta, full_matrices=False)
    return (u[:, :rank] * s[:rank]) @ vt[:rank]


def test_svd_update_against_a_float64_reference(fx, tmp_path):
    """Against float64 (numpy's dgesdd of the f64 sum of the modules' f32 updates), our
    truncated update B·A is within 1e-6 (PEFT's own f32 result: 3.7e-7). The SVD is float64
    (the Gram matrix's leading eigenpairs, LAPACK dsyevr); what is left is the f32 products and
    sums of the merged delta, as in PEFT, and the f32 factors. With OpenBLAS's f32 sgesdd it was
    1.3e-6."""
    _, theirs = peft_combine(fx, "svd", {}, tmp_path / "masks.safetensors")
    out = tmp_path / "ours"
    run_lorahub("compose", "--lora", *fx["modules"], "--weights=" + ",".join(map(repr, WEIGHTS)),
                "--method", "svd", "--out", out)
    ours = load_file(out / "adapter_model.safetensors")
    errors = {"ours": 0.0, "peft": 0.0}
    for key in (k for k in theirs if k.endswith("lora_A.weight")):
        exact = float64_svd_update(fx, key, theirs[key].shape[0])
        bkey = key.replace("lora_A", "lora_B")
        for who, t in (("ours", ours), ("peft", theirs)):
            got = t[bkey].astype(np.float64) @ t[key].astype(np.float64)
            errors[who] = max(errors[who], float(np.abs(got - exact).max()))
    print("max |B·A - float64|:", errors)
    assert errors["ours"] < 1e-6, errors


SVD_CASES = [(m, kw) for m, kw in CASES if m.endswith("svd") and "svd_clamp" not in kw]


@pytest.mark.parametrize("method,kw", SVD_CASES, ids=[m for m, _ in SVD_CASES])
def test_svd_types_against_a_float64_svd_of_peft_delta(fx, method, kw, tmp_path):
    """Every _svd type (the same DARE masks for both) against the float64 truncated SVD of the
    very f32 matrix PEFT decomposes: our update B·A within 1e-6 of it, PEFT's f32 one (torch's
    sgesdd) further off, which is what the 5e-6 bound of test_combination_matches_peft covers."""
    masks = tmp_path / "masks.safetensors"
    decomposed = {}
    _, theirs = peft_combine(fx, method, kw, masks, decomposed)
    out = tmp_path / "ours"
    run_lorahub("compose", "--lora", *fx["modules"], "--weights=" + ",".join(map(repr, WEIGHTS)),
                "--method", method, "--out", out, *cli_args(method, kw),
                *(["--dare-masks", masks] if masks.exists() else []))
    ours = load_file(out / "adapter_model.safetensors")
    errors = {"ours": 0.0, "peft": 0.0}
    for layer, delta in decomposed.items():
        key = f"{PREFIX}{layer}.lora_A.weight"
        bkey = key.replace("lora_A", "lora_B")
        rank = theirs[key].shape[0]
        u, s, vt = np.linalg.svd(delta.astype(np.float64), full_matrices=False)
        exact = (u[:, :rank] * s[:rank]) @ vt[:rank]
        for who, t in (("ours", ours), ("peft", theirs)):
            got = t[bkey].astype(np.float64) @ t[key].astype(np.float64)
            errors[who] = max(errors[who], float(np.abs(got - exact).max()))
    print(method, "max |B·A - float64 SVD of PEFT's delta|:", errors)
    assert errors["ours"] < 1e-6, errors
