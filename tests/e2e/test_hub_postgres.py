"""Several hub servers sharing one store: metadata in PostgreSQL (`--db postgresql://...`), blobs
in one folder. The test starts Debian's PostgreSQL itself (initdb into a temp folder, pg_ctl on a
free loopback port, as the `postgres` user when we are root, which PostgreSQL refuses)."""
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import run_lorahub
from hub_support import (Hub, blob_files, create_token, folder_files, head_of, make_adapter,
                         race_pushes)


def pg_bin_dir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url():
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        pytest.fail("Debian's PostgreSQL server is not installed (scripts/setup.sh installs it)")
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    work = Path(tempfile.mkdtemp(prefix="lorahub-pg-"))
    if as_root:
        shutil.chown(work, "postgres")
    data, port = work / "data", free_port()

    def run(*cmd, timeout=120):
        subprocess.run([*prefix, *map(str, cmd)], check=True, capture_output=True, timeout=timeout,
                       cwd=work)

    try:
        run(bin_dir / "initdb", "-D", data, "-U", "lorahub", "--auth=trust", "--no-sync")
        run(bin_dir / "pg_ctl", "-D", data, "-l", work / "log", "-w", "-t", "60", "-o",
            f"-p {port} -k {work} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        run(bin_dir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "lorahub", "hub")
        yield f"postgresql://lorahub@127.0.0.1:{port}/hub"
    finally:
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True, timeout=60, cwd=work)
        shutil.rmtree(work, ignore_errors=True)


def test_two_servers_share_one_store_through_postgresql(tmp_path, postgres_url):
    root = tmp_path / "store"
    a = Hub(root, "--db", postgres_url)
    b = Hub(root, "--db", postgres_url)
    try:
        token = create_token(root, "erin", "--db", postgres_url)
        assert not (root / "hub.sqlite3").exists()  # the metadata went to PostgreSQL
        first = make_adapter(tmp_path / "first", seed=1)
        out = run_lorahub("hub", "push", first, "--repo", "erin/mod", "--task", "sports",
                          "--endpoint", a.url, "--token", token).stdout.split()
        # Server B serves what A accepted: info, search, and the files themselves.
        assert head_of(b, "erin/mod") == out[1]
        found = run_lorahub("hub", "search", "--task", "sports", "--endpoint", b.url).stdout
        assert found.split("\t")[0] == "erin/mod"
        pulled = tmp_path / "pulled"
        run_lorahub("hub", "pull", "erin/mod", "--to", pulled, "--endpoint", b.url)
        assert folder_files(pulled) == folder_files(first)

        # Pushes racing through different servers: the database decides, one wins.
        payloads = [folder_files(make_adapter(tmp_path / f"race{i}", seed=10 + i)) for i in range(2)]
        results = race_pushes([a, b], "erin/mod", payloads, token, out[1])
        assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
        winner = next(r for r in results if r.status_code == 200).json()["commit"]
        assert head_of(a, "erin/mod") == head_of(b, "erin/mod") == winner

        # Garbage collection reads the references from PostgreSQL: it keeps every file of both
        # revisions (and removes only what the losing push may have stored).
        gc = run_lorahub("hub", "gc", "--root", root, "--db", postgres_url,
                         "--min-age-minutes", "0").stdout
        kept = int(gc.split("gc: ")[1].split()[0])  # at least 2 files in each of 2 revisions
        assert kept >= 4 and len(blob_files(root)) == kept, gc
        for sha in (out[1], winner):
            run_lorahub("hub", "pull", "erin/mod", "--rev", sha, "--to", tmp_path / sha,
                        "--endpoint", b.url)
    finally:
        a.stop()
        b.stop()
