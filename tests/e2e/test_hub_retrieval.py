"""Retrieval over a hub without downloading every module (issue 18, item 4). `lorahub hub push
--embed-model M` stores the module's retrieval embedding (lorahub_embedding.json: the vector
`learn --select retrieval:K` computes from the module's examples.jsonl, the base model's SHA-256,
the engine); the hub validates it and lists it; `learn --hub --select retrieval:K` ranks by the
stored vectors and downloads only the K kept modules. A module without a usable embedding (none,
or one made with another model file) is downloaded and embedded locally, with a warning. The
result equals retrieval over the same modules from local folders. Hostile embeddings are a 422
that stores nothing and leaves the hub serving."""
import json
import shutil
from pathlib import Path

import pytest

from conftest import run_lorahub
from hub_learn_support import learn_fixture
from hub_support import Hub, create_token, folder_files, make_adapter, raw_push
from t5_tiny import bbh_prompt, bbh_tasks, write_jsonl

fx = learn_fixture("hub_retrieval")
K = 2


@pytest.fixture(scope="module")
def pool(fx, bbh_dir):
    """fx's four modules, each with its own examples (from different BBH tasks, so that their
    similarities to the few-shot task differ)."""
    tasks = list(bbh_tasks(bbh_dir))
    for i, module in enumerate(fx["modules"]):
        rows = [{"input": bbh_prompt(description, e["input"])}
                for _, description, examples in tasks[4 * i:4 * i + 3]
                for e in sorted(examples, key=lambda e: e["input"])[:2]]
        write_jsonl(Path(module) / "examples.jsonl", rows)
    return fx


def learn(fx, out, *args):
    r = run_lorahub("learn", "--model", fx["model"], "--examples", fx["examples"], "--steps", 4,
                    "--seed", 7, "--out", out, "--quiet", "--select", f"retrieval:{K}", *args)
    return json.loads((out / "weights.json").read_text()), r.stderr


def push_all(hub, fx, token, tmp_path, embed_with=lambda i: None):
    """Pushes the modules (copies, so that the embedding files stay out of fx's folders), each
    with an embedding under embed_with(i) (a model folder) or none; returns {repo: local}."""
    pushed = {}
    for i, module in enumerate(fx["modules"]):
        copy = tmp_path / f"push{i}"
        shutil.copytree(module, copy)
        model = embed_with(i)
        embed = ["--embed-model", model] if model else []
        out = run_lorahub("hub", "push", copy, "--repo", f"lib/module{i}", "--endpoint", hub.url,
                          "--token", token, *embed).stdout.split()
        pushed[f"{out[0]}@{out[1]}"] = Path(module)
    return pushed


def local_of(path, cache, pushed):
    rel = Path(path).relative_to(cache)
    return pushed[f"{rel.parts[0]}/{rel.parts[1]}@{rel.parts[2]}"]


def cached_weights(cache):
    return sorted(p.parent.relative_to(cache).as_posix()
                  for p in cache.glob("*/*/*/adapter_model.safetensors"))


def listing_order(hub, pushed):
    """The local folders in the order the hub lists the modules (the pool's order)."""
    return [pushed[f"{m['id']}@{m['sha']}"] for m in hub.http.get("/api/models").json()]


def assert_same_as_local(fx, from_hub, cache, pushed, order, tmp_path):
    from_disk, _ = learn(fx, tmp_path / "disk", "--lora", *order)
    kept = [local_of(p, cache, pushed) for p in from_hub["modules"]]
    assert [str(m) for m in kept] == from_disk["modules"]
    assert from_hub["weights"] == from_disk["weights"]
    assert from_hub["objective"] == from_disk["objective"]
    hub_scores = {str(pushed[n] if n in pushed else local_of(n, cache, pushed)): s
                  for n, s in from_hub["selection"]["scores"].items()}
    assert hub_scores == from_disk["selection"]["scores"]  # bit-identical similarities
    return from_disk


def test_retrieval_over_a_hub_downloads_only_the_kept_modules(pool, tmp_path):
    cache = tmp_path / "cache"
    with Hub(tmp_path / "hub") as hub:
        token = create_token(hub.root, "lib")
        pushed = push_all(hub, pool, token, tmp_path, embed_with=lambda i: pool["model"])
        info = hub.http.get("/api/models/lib/module0").json()
        assert info["lorahub"]["embedding"]["file"] == "lorahub_embedding.json"
        listed = hub.http.get("/api/models", params={"full": "true"}).json()
        assert all("embedding" in m["lorahub"] for m in listed) and len(listed) == 4
        # --sample beyond the pool (the hub's 4) draws all, with the local path's warning.
        from_hub, stderr = learn(pool, tmp_path / "hub-out", "--hub", hub.url, "--hub-cache",
                                 cache, "--sample", 9)
        order = listing_order(hub, pushed)
    assert [line for line in stderr.splitlines() if "warning" in line] == [
        "lorahub: warning: --sample 9 but only 4 modules are available; using all 4"], stderr
    assert from_hub["selection"]["hub_embeddings"] == 4
    assert len(from_hub["modules"]) == K
    # Only the K kept modules' weights were downloaded; the others were ranked by their
    # embeddings alone.
    assert cached_weights(cache) == sorted(Path(p).relative_to(cache).as_posix()
                                           for p in from_hub["modules"])
    assert_same_as_local(pool, from_hub, cache, pushed, order, tmp_path)


def test_modules_without_a_usable_embedding_are_downloaded_with_a_warning(pool, tmp_path):
    """Module 0 has no embedding, module 1 one made with another model file (a copy of the model
    with one more file: another SHA-256); both are downloaded and embedded here."""
    other = tmp_path / "other-model"
    shutil.copytree(pool["model"], other)
    (other / "NOTE.txt").write_text("a different model folder\n")
    cache = tmp_path / "cache"
    with Hub(tmp_path / "hub") as hub:
        token = create_token(hub.root, "lib")
        pushed = push_all(hub, pool, token, tmp_path,
                          embed_with=lambda i: [None, other, pool["model"], pool["model"]][i])
        from_hub, stderr = learn(pool, tmp_path / "hub-out", "--hub", hub.url, "--hub-cache",
                                 cache)
        order = listing_order(hub, pushed)
    assert "lib/module0@" in stderr and "has no lorahub_embedding.json" in stderr, stderr
    assert "lib/module1@" in stderr and "another model file" in stderr, stderr
    assert from_hub["selection"]["hub_embeddings"] == 2
    downloaded = {local_of(cache / p, cache, pushed) for p in cached_weights(cache)}
    kept = {local_of(p, cache, pushed) for p in from_hub["modules"]}
    assert downloaded == kept | {Path(pool["modules"][0]), Path(pool["modules"][1])}
    assert_same_as_local(pool, from_hub, cache, pushed, order, tmp_path)


# ---- hostile embeddings -----------------------------------------------------------------------

BASE = "google/t5-tiny"
D_MODEL = 16


def embedding(**changes):
    e = {"format": "lorahub.module-embedding.v1", "method": "mean-hidden-state", "examples": 3,
         "base_model": BASE, "model_sha256": "ab" * 32, "engine": "0.1.0+numerics.3",
         "vector": [0.25 * (i + 1) for i in range(D_MODEL)]}
    e.update(changes)
    return {k: v for k, v in e.items() if v is not None}


BAD = [
    (b"not json", "invalid JSON"),
    (b'{"format": "lorahub.module-embedding.v1", "base_model": "\xff\xfe"}', "UTF-8"),
    (b" " * ((2 << 20) + 1), "bytes"),
    (embedding(vector=[0.5] * (D_MODEL - 1)), "no adapted layer"),
    (embedding(vector=[0.0] * D_MODEL), "all zeros"),
    (embedding(vector=[3.5e38] + [1.0] * (D_MODEL - 1)), "finite f32"),
    (json.dumps(embedding()).replace("0.25,", "1e999,", 1).encode(), "lorahub_embedding.json"),
    (embedding(vector=["x"] * D_MODEL), "not a number"),
    (embedding(vector=[1.0] * 70000), "1 to 65536"),
    (embedding(vector=None), "missing field 'vector'"),
    (embedding(base_model="someone/else"), "adapter_config.json names"),
    (embedding(format="v0"), "unknown format"),
    (embedding(method="max-pool"), "unknown method"),
    (embedding(model_sha256="XYZ"), "model_sha256"),
    (embedding(examples=0), "examples"),
    (embedding(examples="3"), "examples"),
    ([1, 2, 3], "JSON object"),
]


@pytest.fixture(scope="module")
def hostile_hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_embeddings")
    with Hub(root / "hub") as hub:
        hub.token = create_token(hub.root, "alice")
        hub.files = folder_files(make_adapter(root / "a", base=BASE, d_model=D_MODEL))
        yield hub


@pytest.mark.malformed
@pytest.mark.parametrize("case", range(len(BAD)))
def test_malformed_embeddings_are_refused_and_the_hub_stays_up(hostile_hub, case):
    hub, (content, fragment) = hostile_hub, BAD[case]
    if not isinstance(content, bytes):
        content = json.dumps(content).encode()
    repo = f"alice/mod{case}"
    r = raw_push(hub, repo, {**hub.files, "lorahub_embedding.json": content}, token=hub.token)
    assert r.status_code == 422, r.text
    assert fragment in r.json()["error"], r.json()["error"]
    assert hub.http.get(f"/api/models/{repo}").status_code == 404  # nothing stored
    good = {**hub.files, "lorahub_embedding.json": json.dumps(embedding()).encode()}
    r = raw_push(hub, repo, good, token=hub.token)  # still serving, and accepts a good one
    assert r.status_code == 200, r.text
    info = hub.http.get(f"/api/models/{repo}").json()
    assert info["lorahub"]["embedding"]["size"] == len(good["lorahub_embedding.json"])
