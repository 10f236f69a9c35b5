"""Uploads with the real Hugging Face client: HfApi(endpoint=...) create_repo, upload_folder,
upload_file, create_commit and PeftModel.push_to_hub (HF_HUB_DISABLE_XET=1: the LFS protocol)
store modules that `lorahub learn --hub` then composes, with the weights the same modules give
from disk. Also: revision semantics (parentCommit, deletions, old revisions stay), the module
check on every commit, unauthorized uploads store nothing, and a client left on Xet is told to
set HF_HUB_DISABLE_XET=1."""
import base64
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from conftest import run_lorahub
from hub_learn_support import learn, learn_fixture
from hub_support import Hub, blob_files, create_token, folder_files, hf_env, make_adapter, sha256


UPLOAD_SCRIPT = textwrap.dedent(r"""
    import json, sys
    from pathlib import Path
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from peft import PeftModel
    from transformers import T5ForConditionalGeneration
    endpoint, token, model_dir, *modules = sys.argv[1:]
    api = HfApi(endpoint=endpoint, token=token)
    out = {}
    # upload_folder, after create_repo without a namespace (the token's user owns it).
    api.create_repo("module0")
    out["module0"] = api.upload_folder(folder_path=modules[0], repo_id="lib/module0").oid
    # upload_file and create_commit: a commit that does not leave a whole module is refused (the
    # same check as a push); one that completes it is stored, and a later file adds to it.
    api.create_repo("lib/module1", exist_ok=True)
    api.create_repo("lib/module1", exist_ok=True)  # exists: fine with exist_ok
    m1 = Path(modules[1])
    try:
        api.upload_file(path_or_fileobj=m1 / "adapter_config.json",
                        path_in_repo="adapter_config.json", repo_id="lib/module1")
        out["partial"] = "accepted"
    except Exception as e:
        out["partial"] = str(e)
    api.create_commit(repo_id="lib/module1", commit_message="the module", operations=[
        CommitOperationAdd("adapter_config.json", str(m1 / "adapter_config.json")),
        CommitOperationAdd("adapter_model.safetensors", (m1 / "adapter_model.safetensors").read_bytes()),
    ])
    out["module1"] = api.upload_file(path_or_fileobj=m1 / "README.md", path_in_repo="README.md",
                                     repo_id="lib/module1").oid
    # create_commit with parent_commit, a deletion and an extra file, then a stale parent.
    api.create_repo("lib/module2")
    m2 = Path(modules[2])
    first = api.upload_folder(folder_path=m2, repo_id="lib/module2", commit_message="v1").oid
    second = api.create_commit(repo_id="lib/module2", commit_message="v2", parent_commit=first,
                               operations=[CommitOperationDelete("README.md"),
                                           CommitOperationAdd("notes/train.txt", b"steps: 4\n")]).oid
    try:
        api.create_commit(repo_id="lib/module2", commit_message="stale", parent_commit=first,
                          operations=[CommitOperationAdd("x.txt", b"x")])
        out["stale"] = "accepted"
    except Exception as e:
        out["stale"] = getattr(getattr(e, "response", None), "status_code", str(e))
    out["module2"] = [first, second]
    out["module2_files"] = sorted(api.list_repo_files("lib/module2"))
    out["module2_first_files"] = sorted(api.list_repo_files("lib/module2", revision=first))
    out["refs"] = [(b.name, b.target_commit) for b in api.list_repo_refs("lib/module2").branches]
    out["commits"] = [(c.commit_id, c.title) for c in api.list_repo_commits("lib/module2")]
    # PeftModel.push_to_hub (transformers' PushToHubMixin: create_repo exist_ok, model card, commit).
    base = T5ForConditionalGeneration.from_pretrained(model_dir)
    PeftModel.from_pretrained(base, modules[3]).push_to_hub("lib/module3", token=token)
    out["module3"] = api.model_info("lib/module3").sha
    info = api.model_info("lib/module3", files_metadata=True)
    out["module3_files"] = {s.rfilename: s.lfs.sha256 if s.lfs else None for s in info.siblings}
    out["listed"] = sorted(m.id for m in api.list_models(author="lib", filter="peft"))
    out["searched"] = sorted(m.id for m in api.list_models(search="module1"))
    print(json.dumps(out))
""")


fx = learn_fixture("hub_upload")


def run_hf(hub, tmp_path, script, *args, xet=False):
    env = hf_env(hub, tmp_path)
    if xet:
        env.pop("HF_HUB_DISABLE_XET")
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True,
                          text=True, timeout=600, env=env)


def test_hf_client_uploads_modules_that_learn_composes(fx, tmp_path):
    cache = tmp_path / "cache"
    with Hub(tmp_path / "hub") as hub:
        token = create_token(hub.root, "lib")
        proc = run_hf(hub, tmp_path, UPLOAD_SCRIPT, hub.url, token, fx["model"], *fx["modules"])
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        from_hub = learn(fx, tmp_path / "out-hub", "--hub", hub.url, "--hub-filter", "author=lib",
                         "--hub-cache", cache)
        # Each uploaded file is stored as it was sent: pull module0 and compare bytes.
        run_lorahub("hub", "pull", "lib/module0", "--to", tmp_path / "pulled", "--endpoint", hub.url)
        assert folder_files(tmp_path / "pulled") == folder_files(fx["modules"][0])

    modules = fx["modules"]
    assert "invalid LoRA module" in out["partial"] and "adapter_model" in out["partial"]
    assert out["stale"] == 412
    first, second = out["module2"]
    assert out["module2_first_files"] == sorted(folder_files(modules[2]))
    assert out["module2_files"] == ["adapter_config.json", "adapter_model.safetensors",
                                    "notes/train.txt"]
    assert out["refs"] == [["main", second]]
    assert out["commits"] == [[second, "v2"], [first, "v1"]]
    weights = sha256((modules[3] / "adapter_model.safetensors").read_bytes())
    assert out["module3_files"]["adapter_model.safetensors"] == weights
    assert {"adapter_config.json", "README.md"} <= set(out["module3_files"])
    assert out["listed"] == [f"lib/module{i}" for i in range(4)]
    assert out["searched"] == ["lib/module1"]
    # learn --hub composed the four uploaded revisions and learns what the local folders give.
    heads = {"lib/module0": out["module0"], "lib/module1": out["module1"],
             "lib/module2": second, "lib/module3": out["module3"]}
    used = {}
    for path in from_hub["modules"]:
        rel = Path(path).relative_to(cache)
        used[f"{rel.parts[0]}/{rel.parts[1]}"] = rel.parts[2]
    assert used == heads
    local = [modules[int(repo[-1])] for repo in (Path(p).relative_to(cache).parts[1]
                                                 for p in from_hub["modules"])]
    from_disk = learn(fx, tmp_path / "out-disk", "--lora", *local)
    assert from_hub["weights"] == from_disk["weights"]
    assert from_hub["objective"] == from_disk["objective"]


UNAUTHORIZED_SCRIPT = textwrap.dedent(r"""
    import json, sys
    from huggingface_hub import HfApi
    endpoint, folder, *tokens = sys.argv[1:]
    out = []
    for token in tokens:
        api = HfApi(endpoint=endpoint, token=token or False)
        for name, call in [("create", lambda: api.create_repo("alice/new")),
                           ("upload", lambda: api.upload_folder(folder_path=folder, repo_id="alice/mod"))]:
            try:
                call()
                out.append([name, "accepted"])
            except Exception as e:
                out.append([name, getattr(getattr(e, "response", None), "status_code", repr(e))])
    print(json.dumps(out))
""")


@pytest.mark.malformed
def test_unauthorized_uploads_store_nothing(tmp_path):
    folder = make_adapter(tmp_path / "a", seed=1)
    big = os.urandom(4096)
    with Hub(tmp_path / "hub") as hub:
        alice = create_token(hub.root, "alice")
        mallory = create_token(hub.root, "mallory")
        hub.http.post("/api/repos/create", json={"name": "mod"},
                      headers={"Authorization": f"Bearer {alice}"}).raise_for_status()
        blobs_before = blob_files(hub.root)
        proc = run_hf(hub, tmp_path, UNAUTHORIZED_SCRIPT, hub.url, folder, "", "lh_wrong", mallory)
        assert proc.returncode == 0, proc.stderr[-3000:]
        statuses = json.loads(proc.stdout.strip().splitlines()[-1])
        assert [s for _, s in statuses] == [401, 401, 401, 401, 403, 403], statuses

        # Raw requests past the client: a forged, altered or expired LFS URL stores nothing.
        oid = hashlib.sha256(big).hexdigest()
        auth = {"Authorization": f"Bearer {alice}"}
        batch = hub.http.post("/alice/mod.git/info/lfs/objects/batch", headers=auth, json={
            "operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": 4096}]})
        assert batch.status_code == 200, batch.text
        href = batch.json()["objects"][0]["actions"]["upload"]["href"]
        forged = [href.replace("signature=", "signature=0"), href.replace("size=4096", "size=4095"),
                  href.replace(oid, "0" * 64), href.split("?")[0],
                  href.replace("/alice/mod/", "/mallory/mod/")]
        for url in forged:
            r = httpx.put(url, content=big, timeout=30)
            assert r.status_code in (400, 403), (url, r.status_code, r.text)
            assert "error" in r.json()
        for who in ({}, {"Authorization": f"Bearer {mallory}"}):
            assert hub.http.post("/alice/mod.git/info/lfs/objects/batch", headers=who, json={
                "operation": "upload", "objects": [{"oid": oid, "size": 4096}]}).status_code in (401, 403)
            line = json.dumps({"key": "file", "value": {
                "path": "x.txt", "encoding": "base64", "content": base64.b64encode(big).decode()}})
            body = json.dumps({"key": "header", "value": {"summary": "s"}}) + "\n" + line + "\n"
            assert hub.http.post("/api/models/alice/mod/commit/main", content=body,
                                 headers={**who, "Content-Type": "application/x-ndjson"}
                                 ).status_code in (401, 403)
        assert blob_files(hub.root) == blobs_before
        assert hub.http.get("/api/models/alice/mod").status_code == 404
        assert hub.http.get("/api/models/alice/new").status_code == 404
        # The genuine URL works, and the upload then shows in verify.
        assert httpx.put(href, content=big, timeout=30).status_code == 200
        assert blob_files(hub.root) == sorted(blobs_before + [oid])
        verify = hub.http.post("/api/lorahub/lfs-verify/alice/mod", headers=auth,
                               json={"oid": oid, "size": 4096})
        assert verify.status_code == 200, verify.text


XET_SCRIPT = textwrap.dedent(r"""
    import sys
    from huggingface_hub import HfApi
    import hf_xet  # installed: huggingface_hub then uploads through Xet unless HF_HUB_DISABLE_XET=1
    HfApi(endpoint=sys.argv[1], token=sys.argv[2]).upload_folder(folder_path=sys.argv[3],
                                                                 repo_id="alice/mod")
""")


def test_xet_uploads_are_told_to_disable_xet(tmp_path):
    folder = make_adapter(tmp_path / "a", seed=1)
    with Hub(tmp_path / "hub") as hub:
        token = create_token(hub.root, "alice")
        hub.http.post("/api/repos/create", json={"name": "mod"},
                      headers={"Authorization": f"Bearer {token}"}).raise_for_status()
        proc = run_hf(hub, tmp_path, XET_SCRIPT, hub.url, token, folder, xet=True)
        assert proc.returncode != 0
        # The last line is what the user reads: hf_xet's error, which names the URL it ended at.
        assert "HF_HUB_DISABLE_XET=1" in proc.stderr.strip().splitlines()[-1], proc.stderr[-2000:]
        # The same route explains itself to any other client.
        r = hub.http.get("/api/models/alice/mod/xet-write-token/main", follow_redirects=True)
        assert r.status_code == 400 and "HF_HUB_DISABLE_XET=1" in r.json()["error"]
        assert hub.http.get("/api/models/alice/mod").status_code == 404  # nothing committed
        # With the variable set, the same upload goes through.
        ok = run_hf(hub, tmp_path, XET_SCRIPT.replace("import hf_xet", "import os"), hub.url,
                    token, folder)
        assert ok.returncode == 0, ok.stderr[-2000:]
        assert hub.http.get("/api/models/alice/mod").status_code == 200


def ndjson(*items):
    return "".join(json.dumps(i) + "\n" for i in items).encode()


@pytest.mark.malformed
def test_malformed_commits_are_refused_cleanly(tmp_path):
    folder = make_adapter(tmp_path / "a", seed=1)
    files = folder_files(folder)
    with Hub(tmp_path / "hub") as hub:
        token = create_token(hub.root, "alice")
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
        hub.http.post("/api/repos/create", json={"name": "mod"}, headers=auth).raise_for_status()
        header = {"key": "header", "value": {"summary": "s"}}

        def add(path, data=b"x", **extra):
            return {"key": "file", "value": {"path": path, "encoding": "base64",
                                             "content": base64.b64encode(data).decode(), **extra}}

        cases = {
            "bad base64": ndjson(header, {"key": "file", "value": {
                "path": "a.txt", "encoding": "base64", "content": "%%%="}}),
            "invalid UTF-8": b'{"key": "header", "value": {"summary": "\xff\xfe"}}\n',
            "traversal": ndjson(header, add("../../etc/passwd")),
            "absolute": ndjson(header, add("/etc/passwd")),
            "huge LFS size": ndjson(header, {"key": "lfsFile", "value": {
                "path": "w.safetensors", "algo": "sha256", "oid": "a" * 64, "size": 2 ** 70}}),
            "negative size": ndjson(header, {"key": "lfsFile", "value": {
                "path": "w.safetensors", "algo": "sha256", "oid": "a" * 64, "size": -1}}),
            "unknown LFS object": ndjson(header, *[add(p, d) for p, d in files.items()
                                                   if p != "adapter_model.safetensors"],
                                         {"key": "lfsFile", "value": {
                                             "path": "adapter_model.safetensors", "oid": "b" * 64}}),
            "no header": ndjson(add("a.txt")),
            "missing path": ndjson(header, {"key": "file", "value": {"encoding": "base64",
                                                                      "content": ""}}),
            "twice": ndjson(header, add("a.txt"), add("a.txt")),
            "unknown key": ndjson(header, {"key": "rmrf", "value": {"path": "a"}}),
            "not JSON": b"{nope\n",
            "deep": b"[" * 100000 + b"\n",
            "bad parent": ndjson({"key": "header", "value": {"summary": "s", "parentCommit": "x"}}),
        }
        for name, body in cases.items():
            r = hub.http.post("/api/models/alice/mod/commit/main", content=body, headers=auth)
            assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
            assert r.json()["error"], name
        assert hub.http.get("/api/models/alice/mod").status_code == 404
        assert blob_files(hub.root) == []
        # A well-formed commit still goes through afterwards.
        good = ndjson(header, *[add(p, d) for p, d in files.items()])
        r = hub.http.post("/api/models/alice/mod/commit/main", content=good, headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["commitOid"] == hub.http.get("/api/models/alice/mod").json()["sha"]
