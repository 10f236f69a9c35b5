"""The hub under load and under kill -9, on loopback only, with bounded loops:
8 clients x 200 downloads plus 20 uploads with zero errors and every download's SHA-256 checked;
then uploads killed mid-flight, the server restarted, and every committed module intact."""
import random
import sqlite3
import threading
import time

import httpx

from hub_support import (Hub, create_token, folder_files, make_adapter, raw_push, sha256)

CLIENTS = 8
DOWNLOADS_PER_CLIENT = 200
UPLOADS = 20


def seed_modules(hub, tmp_path, token, count):
    """Pushes `count` modules; returns {(repo, path): sha256} for every file."""
    expected = {}
    for i in range(count):
        files = folder_files(make_adapter(tmp_path / f"seed{i}", seed=i, d_model=64))
        r = raw_push(hub, f"load/mod{i}", files, token=token)
        assert r.status_code == 200, r.text
        expected.update({(f"load/mod{i}", p): sha256(d) for p, d in files.items()})
    return expected


def test_eight_clients_download_while_twenty_uploads_land(tmp_path):
    with Hub(tmp_path / "hub") as hub:
        token = create_token(hub.root, "load")
        expected = seed_modules(hub, tmp_path, token, 4)
        upload_payloads = [folder_files(make_adapter(tmp_path / f"up{i}", seed=100 + i))
                           for i in range(UPLOADS)]
        errors, verified, commits = [], [0] * CLIENTS, []
        keys = sorted(expected)

        def downloader(k):
            rng = random.Random(k)
            with httpx.Client(base_url=hub.url, timeout=60) as http:
                for _ in range(DOWNLOADS_PER_CLIENT):
                    repo, path = rng.choice(keys)
                    r = http.get(f"/{repo}/resolve/main/{path}")
                    if r.status_code != 200 or sha256(r.content) != expected[(repo, path)]:
                        errors.append((repo, path, r.status_code))
                    else:
                        verified[k] += 1

        def uploader(u):
            parent = None
            for i in range(u, UPLOADS, 2):  # two uploaders, each pushing revisions to its repo
                r = raw_push(hub, f"load/upload{u}", upload_payloads[i], token=token, parent=parent)
                if r.status_code != 200:
                    errors.append(("upload", i, r.status_code, r.text))
                    return
                parent = r.json()["commit"]
                commits.append((f"load/upload{u}", parent, i))

        start = time.monotonic()
        threads = [threading.Thread(target=downloader, args=(k,)) for k in range(CLIENTS)]
        threads += [threading.Thread(target=uploader, args=(u,)) for u in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        elapsed = time.monotonic() - start
        assert not any(t.is_alive() for t in threads), "load test did not finish in 300 s"
        assert errors == []
        assert sum(verified) == CLIENTS * DOWNLOADS_PER_CLIENT
        assert len(commits) == UPLOADS
        for repo, sha, i in commits:  # every upload's revision serves exactly what was sent
            for path, data in upload_payloads[i].items():
                r = hub.http.get(f"/{repo}/resolve/{sha}/{path}")
                assert r.status_code == 200 and r.content == data
        print(f"\nhub load: {CLIENTS}x{DOWNLOADS_PER_CLIENT} downloads + {UPLOADS} uploads "
              f"in {elapsed:.1f} s ({CLIENTS * DOWNLOADS_PER_CLIENT / elapsed:.0f} downloads/s)")


def check_store_intact(hub, acknowledged):
    """Every acknowledged push and every revision the database holds is whole and servable."""
    for repo, sha, files in acknowledged:
        for path, data in files.items():
            r = hub.http.get(f"/{repo}/resolve/{sha}/{path}")
            assert r.status_code == 200 and r.content == data, (repo, sha, path, r.status_code)
    db = sqlite3.connect(hub.root / "hub.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = db.execute("SELECT v.repo, v.sha, f.path, f.sha256 FROM revisions v "
                      "JOIN files f ON f.revision = v.sha").fetchall()
    for repo, sha, path, digest in rows:
        r = hub.http.get(f"/{repo}/resolve/{sha}/{path}")
        assert r.status_code == 200 and sha256(r.content) == digest, (repo, sha, path)
    heads = db.execute("SELECT r.id FROM repos r LEFT JOIN revisions v ON v.sha = r.head "
                       "WHERE v.sha IS NULL").fetchall()
    assert heads == []  # no head points at a revision that was not recorded
    db.close()
    return len(rows)


def test_kill_9_during_uploads_loses_no_committed_module(tmp_path):
    root = tmp_path / "hub"
    payloads = [folder_files(make_adapter(tmp_path / f"p{i}", seed=i, rank=8, d_model=512))
                for i in range(6)]
    acknowledged, interrupted = [], []
    for cycle in range(3):
        hub = Hub(root)
        if cycle == 0:
            token = create_token(root, "crash")
        check_store_intact(hub, acknowledged)
        stop = threading.Event()

        def uploader(u):
            parent = None
            r = hub.http.get(f"/api/models/crash/repo{u}")
            if r.status_code == 200:
                parent = r.json()["sha"]
            for i in range(200):  # bounded; the kill ends it much sooner
                if stop.is_set():
                    return
                files = payloads[(u + i) % len(payloads)]
                try:
                    r = raw_push(hub, f"crash/repo{u}", files, token=token, parent=parent)
                except httpx.HTTPError:
                    interrupted.append(u)  # the server died under this push
                    return
                if r.status_code != 200:
                    return
                parent = r.json()["commit"]
                acknowledged.append((f"crash/repo{u}", parent, files))

        threads = [threading.Thread(target=uploader, args=(u,)) for u in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.6 + 0.3 * cycle)  # let some pushes commit, then kill mid-stream
        hub.kill9()
        stop.set()
        for t in threads:
            t.join(timeout=60)
    print(f"\nhub crash test: {len(acknowledged)} acknowledged pushes across 3 kill -9 cycles")
    assert interrupted, "no push was in flight at any kill"
    assert len(acknowledged) >= 3, "too few pushes committed before the kills to test anything"
    hub = Hub(root)
    try:
        stored = check_store_intact(hub, acknowledged)
        assert stored >= 3 * len(acknowledged)
        # The store still accepts pushes on top of what survived.
        head = hub.http.get("/api/models/crash/repo0").json()["sha"]
        assert raw_push(hub, "crash/repo0", payloads[0], token=token, parent=head).status_code == 200
    finally:
        hub.stop()
