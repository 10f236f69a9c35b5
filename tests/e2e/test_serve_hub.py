"""`lorahub serve --hub URL`: POST /v1/lorahub/learn takes a hub filter instead of a module list
(the modules the hub lists, fetched once into the cache by revision) and, with the caller's hub
token, pushes the learned composition to the hub; all against a real `lorahub hub serve`."""
import json
from pathlib import Path

import pytest

from conftest import run_lorahub
from hub_support import Hub, create_token, head_of
from serve_support import Serve, tiny_t5


@pytest.fixture(scope="module")
def hubbed(bbh_dir, tmp_path_factory):
    """The tiny T5's modules pushed as lib/module<i> (the first two tagged "pool"), a hub and a
    server on it that also has the same modules as local folders."""
    t5 = tiny_t5(bbh_dir, tmp_path_factory)
    root = tmp_path_factory.mktemp("serve_hub")
    with Hub(root / "hub") as hub:
        token = create_token(hub.root, "lib")
        pushed = {}  # "lib/module<i>" -> (revision, local module name)
        for i, module in enumerate(t5["modules"]):
            out = run_lorahub("hub", "push", module, "--repo", f"lib/module{i}", "--tags",
                              "pool" if i < 2 else "other", "--endpoint", hub.url, "--token",
                              token)
            repo, sha = out.stdout.split()
            pushed[repo] = (sha, module.name)
        cache = root / "cache"
        with Serve(t5["model"], "--modules", t5["root"] / "modules", "--name", "tiny-t5",
                   "--hub", hub.url, "--hub-cache", cache) as s:
            yield {**t5, "hub": hub, "token": token, "pushed": pushed, "cache": cache,
                   "server": s}


def learn(fx, **body):
    return fx["server"].http.post("/v1/lorahub/learn", json={
        "examples": fx["examples"], "steps": 4, "seed": 3, **body})


def complete(fx, model, prompt):
    r = fx["server"].client.completions.create(model=model, prompt=prompt, max_tokens=8,
                                               temperature=0)
    return r.choices[0].text


def test_learn_from_a_hub_filter_and_push_the_composition(hubbed):
    fx, hub = hubbed, hubbed["hub"]
    r = learn(fx, hub_filter={"tag": "pool"}, push={"repo": "lib/learned", "token": fx["token"]})
    assert r.status_code == 200, r.text
    learned = r.json()
    # The two "pool" modules, pinned to the revisions pushed; fetched into cache/user/name/rev.
    pinned = {f"{repo}@{sha}" for repo, (sha, _) in fx["pushed"].items() if repo != "lib/module2"}
    assert set(learned["modules"]) == pinned and len(learned["modules"]) == 2
    cached = {p.relative_to(fx["cache"]).as_posix() for p in fx["cache"].glob("*/*/*")}
    assert cached == {m.replace("@", "/") for m in pinned}
    # The same weights as learning with the same modules from local folders, in the same order.
    local = [fx["pushed"][m.split("@")[0]][1] for m in learned["modules"]]
    from_disk = learn(fx, modules=local).json()
    assert from_disk["weights"] == learned["weights"]
    assert from_disk["objective"] == learned["objective"]

    # Pushed: the hub's head of lib/learned is the revision, and it holds the adapter and
    # weights.json; served back from the hub, it says what the learned composition says.
    assert learned["push"] == {"repo": "lib/learned", "revision": head_of(hub, "lib/learned")}
    files = {f["rfilename"] for f in hub.http.get("/api/models/lib/learned").json()["siblings"]}
    assert {"adapter_config.json", "adapter_model.safetensors", "weights.json"} <= files
    record = hub.http.get("/lib/learned/resolve/main/weights.json").json()
    assert record["weights"] == learned["weights"] and record["modules"] == learned["modules"]
    prompt = fx["examples"][0]["input"]
    assert complete(fx, "lib/learned", prompt) == complete(fx, learned["id"], prompt)
    # A second run with the filter finds the modules in the cache: nothing is pulled again.
    before = {p: p.stat().st_mtime_ns for p in fx["cache"].rglob("*") if p.is_file()}
    again = learn(fx, hub_filter={"tag": "pool"}).json()
    assert again["weights"] == learned["weights"] and "push" not in again
    assert {p: p.stat().st_mtime_ns for p in fx["cache"].rglob("*") if p.is_file()} == before


@pytest.mark.malformed
def test_learn_hub_errors_are_openai_errors(hubbed):
    fx = hubbed

    def error(r, status, param):
        assert r.status_code == status, r.text
        err = r.json()["error"]
        assert err["param"] == param, err
        return err

    assert "colour" in error(learn(fx, hub_filter={"colour": "red"}), 400, "hub_filter")["message"]
    assert error(learn(fx, hub_filter={"tag": "none"}), 404, "hub_filter")["code"] == \
        "module_not_found"
    error(learn(fx, hub_filter={"tag": "a,b"}), 400, "hub_filter.tag")
    error(learn(fx, modules=["module_0"], hub_filter={"tag": "pool"}), 400, "hub_filter")
    error(learn(fx, modules=["module_0"], push={"repo": "lib/x"}), 400, "push")
    error(learn(fx, modules=["module_0"], push={"repo": "not a repo", "token": "t"}), 400, "push")
    # A token the hub refuses: learned and kept (its id is in the message), the push failed.
    err = error(learn(fx, modules=["module_0", "module_1"],
                      push={"repo": "lib/refused", "token": "wrong"}), 502, "push")
    assert err["code"] == "hub_push_failed" and "lorahub-" in err["message"]
    assert head_of(fx["hub"], "lib/refused") is None
    assert fx["server"].http.get("/health").status_code == 200


def test_pinned_hub_modules_are_remembered_without_asking_the_hub(bbh_dir, tmp_path_factory):
    """A module named at its revision sha never changes: the server keeps its cache folder in
    memory and serves it without asking the hub again (stopped here); a name without a revision
    (a branch that may move) asks the hub every time."""
    t5 = tiny_t5(bbh_dir, tmp_path_factory)
    root = tmp_path_factory.mktemp("serve_pinned")
    prompt = t5["examples"][0]["input"]
    with Hub(root / "hub") as hub:
        out = run_lorahub("hub", "push", t5["modules"][0], "--repo", "lib/pinned", "--endpoint",
                          hub.url, "--token", create_token(hub.root, "lib"))
        repo, sha = out.stdout.split()
        with Serve(t5["model"], "--name", "tiny-t5", "--hub", hub.url, "--hub-cache",
                   root / "cache") as s:
            pinned = f"{repo}@{sha}"
            assert complete({"server": s}, repo, prompt)  # fetched (the branch: not remembered)
            assert complete({"server": s}, pinned, prompt)
            hub.stop()

            def request(module, weight):  # a new composition each time: not in the LRU
                return s.http.post("/v1/completions", json={
                    "model": "tiny-t5", "prompt": prompt, "max_tokens": 8, "temperature": 0,
                    "lora": {"modules": [module], "weights": [weight]}})

            for weight in (0.5, 0.25):
                r = request(pinned, weight)
                assert r.status_code == 200, r.text
            r = request(repo, 0.7)
            assert r.status_code == 404 and "hub" in r.json()["error"]["message"], r.text
