"""`lorahub hub gc`: blobs no revision points at (left by pushes that lost a race for their parent)
are removed, while the server runs, and every revision still pulls with verified hashes; young
unreferenced blobs (a push in flight) and everything referenced stay; a dry run removes nothing."""
import hashlib
import os
import sqlite3
import time

import pytest

from conftest import assert_clean_error, run_lorahub
from hub_support import (Hub, blob_files, create_token, folder_files, make_adapter, race_pushes,
                         raw_push)


def referenced(root):
    db = sqlite3.connect(root / "hub.sqlite3")
    return sorted({row[0] for row in db.execute("SELECT sha256 FROM files")})


def plant_orphan(root, content, age_seconds):
    """A blob as the store writes it (blobs/ab/abcd...), with its mtime `age_seconds` ago."""
    sha = hashlib.sha256(content).hexdigest()
    path = root / "blobs" / sha[:2] / sha
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    return sha


def racing_pushes(hub, tmp_path, parent, rounds):
    """Two pushes on the same parent per round; returns every winning commit."""
    commits = []
    for round_ in range(rounds):
        payloads = [folder_files(make_adapter(tmp_path / f"r{round_}-{i}", seed=10 * round_ + i))
                    for i in range(2)]
        results = race_pushes([hub, hub], "alice/mod", payloads, hub.token, parent)
        assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
        parent = next(r for r in results if r.status_code == 200).json()["commit"]
        commits.append(parent)
    return commits


def test_gc_removes_orphans_while_serving_and_every_revision_still_pulls(tmp_path):
    with Hub(tmp_path / "hub") as hub:
        hub.token = create_token(hub.root, "alice")
        first = raw_push(hub, "alice/mod", folder_files(make_adapter(tmp_path / "base")),
                         token=hub.token)
        assert first.status_code == 200
        commits = [first.json()["commit"]]
        commits += racing_pushes(hub, tmp_path, commits[0], 3)
        old = plant_orphan(hub.root, b"left by a crashed push", 3 * 3600)
        young = plant_orphan(hub.root, b"a push in flight", 0)
        keep = referenced(hub.root)
        orphans = sorted(set(blob_files(hub.root)) - set(keep))
        assert old in orphans and young in orphans

        dry = run_lorahub("hub", "gc", "--root", hub.root, "--dry-run")
        assert f"would remove {old}" in dry.stdout and young not in dry.stdout
        assert sorted(blob_files(hub.root)) == sorted(keep + orphans)  # nothing removed

        default = run_lorahub("hub", "gc", "--root", hub.root)  # 60-minute grace period
        assert f"removed {old}" in default.stdout and young not in default.stdout
        assert young in blob_files(hub.root) and old not in blob_files(hub.root)

        everything = run_lorahub("hub", "gc", "--root", hub.root, "--min-age-minutes", "0")
        assert f"{len(keep)} referenced blobs kept" in everything.stdout
        assert sorted(blob_files(hub.root)) == keep

        for sha in commits:  # pull verifies every file's SHA-256
            run_lorahub("hub", "pull", "alice/mod", "--rev", sha, "--to", tmp_path / sha,
                        "--endpoint", hub.url)
        # The hub still takes pushes, reusing nothing that was removed.
        again = raw_push(hub, "alice/mod", folder_files(make_adapter(tmp_path / "next", seed=99)),
                         token=hub.token, parent=commits[-1])
        assert again.status_code == 200
        assert sorted(blob_files(hub.root)) == referenced(hub.root)


@pytest.mark.malformed
def test_gc_refuses_a_folder_that_is_not_a_hub_missing_metadata_and_a_negative_age(tmp_path):
    proc = run_lorahub("hub", "gc", "--root", tmp_path / "typo", check=False)
    assert_clean_error(proc, "not a hub folder", "typo")
    assert not (tmp_path / "typo").exists()  # no hub created by mistake
    # Blobs but no SQLite metadata (a hub on PostgreSQL named without --db): collecting against
    # an empty store would remove every blob.
    orphan = plant_orphan(tmp_path / "hub", b"referenced in PostgreSQL", 3 * 3600)
    proc = run_lorahub("hub", "gc", "--root", tmp_path / "hub", "--min-age-minutes", "0",
                       check=False)
    assert_clean_error(proc, "not a hub folder", "PostgreSQL")
    assert blob_files(tmp_path / "hub") == [orphan]
    assert not (tmp_path / "hub" / "hub.sqlite3").exists()
    create_token(tmp_path / "hub", "alice")  # now a hub with (empty) SQLite metadata
    proc = run_lorahub("hub", "gc", "--root", tmp_path / "hub", "--min-age-minutes", "-1",
                       check=False)
    assert_clean_error(proc, "--min-age-minutes")
