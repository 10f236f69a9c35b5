"""Bad pushes and bad names are refused cleanly and leave nothing behind: missing or wrong tokens
(401), another user's repo (403), path traversal in repo and file names, oversize uploads (413),
malformed adapters (422), and two uploads racing on one repo (one wins, the other gets 409)."""
import http.server
import json
import sqlite3
import threading

import pytest

from conftest import assert_clean_error, run_lorahub
from hub_support import (Hub, blob_files, create_token, folder_files, head_of, make_adapter,
                         race_pushes, raw_push)

pytestmark = pytest.mark.malformed


@pytest.fixture
def hub(tmp_path):
    h = Hub(tmp_path / "hub", "--max-upload-mib", "0.25")
    try:
        h.token = create_token(h.root, "alice")
        h.other = create_token(h.root, "mallory")
        yield h
    finally:
        # A clean exit: under the ASan build, a memory error in the server fails the test here.
        code = h.stop()
        assert code == 0, h.proc.stderr.read()[-3000:]


@pytest.fixture
def adapter(tmp_path):
    return folder_files(make_adapter(tmp_path / "adapter"))


def assert_nothing_stored(hub, repo="alice/mod"):
    assert head_of(hub, repo) is None
    assert blob_files(hub.root) == []
    assert hub.http.get("/api/models").json() == []


def test_tokens_are_required_and_checked(hub, adapter, tmp_path):
    assert raw_push(hub, "alice/mod", adapter).status_code == 401
    assert raw_push(hub, "alice/mod", adapter, token="lh_" + "0" * 48).status_code == 401
    r = raw_push(hub, "alice/mod", adapter, token=hub.other)
    assert r.status_code == 403 and "mallory" in r.json()["error"]
    assert_nothing_stored(hub)
    folder = tmp_path / "adapter"
    no_token = run_lorahub("hub", "push", folder, "--repo", "alice/mod", "--endpoint", hub.url,
                           check=False, env={"HF_TOKEN": ""})
    assert_clean_error(no_token, "token")
    wrong = run_lorahub("hub", "push", folder, "--repo", "alice/mod", "--endpoint", hub.url,
                        "--token", "lh_wrong", check=False)
    assert_clean_error(wrong, "401")
    other = run_lorahub("hub", "push", folder, "--repo", "alice/mod", "--endpoint", hub.url,
                        check=False, env={"HF_TOKEN": hub.other})
    assert_clean_error(other, "403", "mallory")
    assert_nothing_stored(hub)
    # The token is stored hashed: the database never holds it.
    db = sqlite3.connect(hub.root / "hub.sqlite3")
    stored = [row[0] for row in db.execute("SELECT hash FROM tokens")]
    assert len(stored) == 2 and hub.token not in stored and hub.other not in stored


@pytest.mark.parametrize("repo", ["alice/..", "alice/.hidden", "alice/a%2F..%2F..%2Fb",
                                  "alice/bad%00name", "alice/sp%20ace", "..%2F../x"])
def test_bad_repo_names_are_refused(hub, adapter, repo):
    r = raw_push(hub, repo, adapter, token=hub.token)
    assert r.status_code in (400, 404), r.text
    assert_nothing_stored(hub)


@pytest.mark.parametrize("name", ["../evil.json", "/abs.json", "sub/../../x.json", "a\\b.json",
                                  "sub//x.json", "sub/", ".hidden", "x\x01y"])
def test_bad_file_names_are_refused(hub, adapter, name):
    r = raw_push(hub, "alice/mod", {**adapter, name: b"{}"}, token=hub.token)
    assert r.status_code == 400, r.text
    assert_nothing_stored(hub)


def test_traversal_in_downloads_is_refused(hub, tmp_path):
    run_lorahub("hub", "push", tmp_path / "adapter" if (tmp_path / "adapter").exists()
                else make_adapter(tmp_path / "adapter"), "--repo", "alice/mod", "--endpoint",
                hub.url, "--token", hub.token)
    for path in ["..%2F..%2Fhub.sqlite3", "../../hub.sqlite3", "%2Fetc%2Fpasswd",
                 "sub/..%2F..%2Fhub.sqlite3"]:
        r = hub.http.get(f"/alice/mod/resolve/main/{path}")
        assert r.status_code in (400, 404), (path, r.status_code)
        assert b"SQLite" not in r.content
    pull = run_lorahub("hub", "pull", "alice/..", "--to", tmp_path / "x", "--endpoint", hub.url,
                       check=False)
    assert_clean_error(pull, "repo name")


def test_oversize_upload_is_refused(hub, tmp_path):
    big = make_adapter(tmp_path / "big", rank=8, d_model=4096)  # 4 x 128 KiB > 0.25 MiB
    r = run_lorahub("hub", "push", big, "--repo", "alice/mod", "--endpoint", hub.url, "--token",
                    hub.token, check=False)
    assert_clean_error(r, "413")
    assert_nothing_stored(hub)
    # Far over the limit (more than the socket buffers hold): still one clean error line.
    huge = make_adapter(tmp_path / "huge", rank=128, d_model=4096)  # 4 x 2 MiB
    r = run_lorahub("hub", "push", huge, "--repo", "alice/mod", "--endpoint", hub.url, "--token",
                    hub.token, check=False)
    assert_clean_error(r, "push to")
    assert_nothing_stored(hub)
    assert hub.proc.poll() is None  # the server is still up


def corrupt_variants(adapter):
    config = json.loads(adapter["adapter_config.json"])
    weights = adapter["adapter_model.safetensors"]
    yield "no config", {"adapter_model.safetensors": weights}, "adapter_config.json"
    yield "no weights", {"adapter_config.json": adapter["adapter_config.json"]}, "adapter_model"
    yield "config not JSON", {**adapter, "adapter_config.json": b"{r: 4"}, "adapter_config.json"
    yield "config a list", {**adapter, "adapter_config.json": b"[]"}, "object"
    yield "rank mismatch", {**adapter, "adapter_config.json": json.dumps({**config, "r": 5}).encode()}, "disagree with r = 5"
    yield "bad r", {**adapter, "adapter_config.json": json.dumps({**config, "r": -1}).encode()}, "'r'"
    yield "not LoRA", {**adapter, "adapter_config.json": json.dumps({**config, "peft_type": "IA3"}).encode()}, "peft_type"
    yield "bad targets", {**adapter, "adapter_config.json": json.dumps({**config, "target_modules": 3}).encode()}, "target_modules"
    yield "DoRA", {**adapter, "adapter_config.json": json.dumps({**config, "use_dora": True}).encode()}, "dora"
    yield "weights garbage", {**adapter, "adapter_model.safetensors": b"\x01\x02\x03"}, "adapter_model.safetensors"
    huge_header = (10**12).to_bytes(8, "little") + weights[8:]
    yield "header length lies", {**adapter, "adapter_model.safetensors": huge_header}, "adapter_model.safetensors"
    yield "truncated weights", {**adapter, "adapter_model.safetensors": weights[:-9]}, "adapter_model.safetensors"


def test_malformed_adapters_are_refused(hub, adapter):
    for label, files, fragment in corrupt_variants(adapter):
        r = raw_push(hub, "alice/mod", files, token=hub.token)
        assert r.status_code == 422, (label, r.status_code, r.text)
        assert fragment.lower() in r.json()["error"].lower(), (label, r.json())
    assert_nothing_stored(hub)
    # And a good one still goes through afterwards.
    assert raw_push(hub, "alice/mod", adapter, token=hub.token).status_code == 200


def test_bad_push_meta_is_refused(hub, adapter):
    for meta in [{"parent": "not-a-sha"}, {"tags": "a,b"}, {"tags": ["../x"]}, {"task": 5},
                 {"description": "x" * 5000}]:
        r = raw_push(hub, "alice/mod", adapter, token=hub.token, meta=meta)
        assert r.status_code == 400, (meta, r.text)
    assert_nothing_stored(hub)


def test_racing_uploads_one_wins_the_other_gets_409(hub, tmp_path):
    first = raw_push(hub, "alice/mod", folder_files(make_adapter(tmp_path / "base")), token=hub.token)
    assert first.status_code == 200
    parent = first.json()["commit"]
    for round_ in range(4):
        payloads = [folder_files(make_adapter(tmp_path / f"r{round_}-{i}", seed=10 * round_ + i))
                    for i in range(2)]
        results = race_pushes([hub, hub], "alice/mod", payloads, hub.token, parent)
        codes = sorted(r.status_code for r in results)
        assert codes == [200, 409], [r.text for r in results]
        winner = next(i for i in range(2) if results[i].status_code == 200)
        parent = results[winner].json()["commit"]
        assert head_of(hub, "alice/mod") == parent
        pulled = tmp_path / f"pulled{round_}"
        run_lorahub("hub", "pull", "alice/mod", "--to", pulled, "--endpoint", hub.url)
        assert folder_files(pulled) == payloads[winner]
    # History is a chain: 1 + 4 revisions, each the parent of the next; no loser recorded.
    db = sqlite3.connect(hub.root / "hub.sqlite3")
    rows = dict(db.execute("SELECT sha, parent FROM revisions WHERE repo = 'alice/mod'"))
    assert len(rows) == 5
    chain, sha = [], parent
    while sha:
        chain.append(sha)
        sha = rows[sha]
    assert len(chain) == 5


class EvilHub(http.server.BaseHTTPRequestHandler):
    """Answers model info with a sibling whose name escapes the destination folder."""

    def do_GET(self):
        body = json.dumps({"id": "eve/mod", "sha": "a" * 40, "siblings": [
            {"rfilename": "../escaped.txt", "size": 2, "lfs": {"sha256": "0" * 64, "size": 2}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def test_pull_refuses_names_from_a_hostile_server(tmp_path):
    server = http.server.HTTPServer(("127.0.0.1", 0), EvilHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        r = run_lorahub("hub", "pull", "eve/mod", "--to", tmp_path / "to", "--endpoint",
                        f"http://127.0.0.1:{server.server_port}", check=False, timeout=60)
    finally:
        server.shutdown()
    assert_clean_error(r, "../escaped.txt")
    assert not (tmp_path / "escaped.txt").exists()
