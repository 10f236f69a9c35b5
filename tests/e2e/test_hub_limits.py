"""`lorahub hub serve`'s HTTP limits as flags (issue 14): nonsense values are one-line errors,
each flag given is the limit the server enforces, and a client over the connection cap is told
503 with Retry-After instead of being dropped or left waiting."""
import json
import select
import socket
import time
from urllib.parse import urlsplit

import pytest
import requests

from conftest import assert_clean_error, run_lorahub
from hub_support import Hub, create_token


def connect(hub, timeout=10):
    parts = urlsplit(hub.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=timeout)


def read_all(sock):
    """Everything the server sends until it closes (or the socket's timeout)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (socket.timeout, ConnectionResetError):
        pass
    return b"".join(chunks)


def status_of(answer):
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None


def trickle_until_closed(sock, seconds):
    """Sends a byte every 0.2 s until the server closes the connection (True) or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sock.sendall(b"x")
        except (BrokenPipeError, ConnectionResetError):
            return True
        readable, _, _ = select.select([sock], [], [], 0.2)
        if readable:
            try:
                if sock.recv(65536) == b"":
                    return True
            except ConnectionResetError:
                return True
    return False


def assert_alive(hub):
    assert hub.proc.poll() is None, "the server died"
    assert requests.get(f"{hub.url}/api/models", timeout=10).status_code == 200


@pytest.mark.malformed
@pytest.mark.parametrize("flag", ["--max-connections", "--max-header-kib", "--max-header-fields",
                                  "--header-timeout", "--idle-timeout", "--body-timeout",
                                  "--min-body-rate-kib", "--write-timeout", "--max-upload-mib",
                                  "--port"])
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e309", "abc", "99999999999999999999"])
def test_nonsense_limits_are_one_line_errors(tmp_path, flag, value):
    if flag == "--port" and value == "0":
        return  # port 0 is meaningful: any free port
    proc = run_lorahub("hub", "serve", "--root", tmp_path / "hub", flag, value, check=False,
                       timeout=30)
    assert_clean_error(proc, flag)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "hub").exists()  # refused before anything was created


def test_help_documents_every_limit():
    out = run_lorahub("hub", "serve", "--help").stdout
    for flag in ("--max-connections", "--max-header-kib", "--max-header-fields", "--header-timeout",
                 "--idle-timeout", "--body-timeout", "--min-body-rate-kib", "--write-timeout",
                 "--max-upload-mib"):
        assert flag in out, flag


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    """A hub with every limit set far from its default, to see each flag take effect."""
    hub = Hub(tmp_path_factory.mktemp("limits") / "hub", "--max-connections", "4",
              "--max-header-kib", "2", "--max-header-fields", "8", "--header-timeout", "1",
              "--idle-timeout", "0.5", "--body-timeout", "1", "--min-body-rate-kib", "1")
    try:
        hub.token = create_token(hub.root, "alice")
        yield hub
    finally:
        code = hub.stop()
        assert code == 0, hub.proc.stderr.read()[-3000:]


@pytest.mark.malformed
def test_header_size_and_count_flags_are_enforced(tight):
    with connect(tight) as sock:  # 3 KiB of header > --max-header-kib 2
        sock.sendall(b"GET /api/models HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n")
        assert status_of(read_all(sock)) == 431
    with connect(tight) as sock:  # 1.5 KiB passes
        sock.sendall(b"GET /api/models HTTP/1.1\r\nHost: h\r\nConnection: close\r\nX-Big: "
                     + b"a" * 1500 + b"\r\n\r\n")
        assert status_of(read_all(sock)) == 200
    fields = b"".join(b"X-%d: 1\r\n" % i for i in range(9))  # 10 fields with Host > 8
    with connect(tight) as sock:
        sock.sendall(b"GET /api/models HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n")
        assert status_of(read_all(sock)) == 431
    assert_alive(tight)


@pytest.mark.serial  # asserts wall-clock bounds: not beside another busy worker
@pytest.mark.malformed
def test_timeout_flags_cut_slow_clients(tight):
    # --header-timeout 1: a request line that never ends is cut after ~1 s, not the default 10.
    with connect(tight) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /api/models HTTP/1.1\r\nHost: h\r\n")
        assert read_all(sock) == b""
        assert 0.8 < time.monotonic() - start < 4
    # --idle-timeout 0.5: a kept-alive connection with nothing more to ask is closed.
    with connect(tight) as sock:
        sock.sendall(b"GET /api/models HTTP/1.1\r\nHost: h\r\n\r\n")
        start = time.monotonic()
        answer = read_all(sock)
        assert status_of(answer) == 200
        assert 0.3 < time.monotonic() - start < 3
    # --body-timeout 1 + 1 KiB/s: a 2 KiB body trickled at a few bytes a second is cut after
    # ~1 + 2 s (the default would wait 30 s).
    with connect(tight) as sock:
        sock.sendall(b"POST /api/lorahub/push/alice/mod HTTP/1.1\r\nHost: h\r\n"
                     b"Authorization: Bearer " + tight.token.encode() + b"\r\n"
                     b"Content-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: 2048\r\n\r\n")
        start = time.monotonic()
        assert trickle_until_closed(sock, seconds=10), "a slow body was never cut"
        assert 2 < time.monotonic() - start < 6
    assert_alive(tight)


@pytest.mark.serial  # asserts wall-clock bounds: not beside another busy worker
def test_over_the_connection_cap_answers_503_with_retry_after(tmp_path):
    with Hub(tmp_path / "hub", "--max-connections", "4") as hub:
        held = [connect(hub) for _ in range(4)]
        try:
            for sock in held:  # each one served once, so surely counted, and kept alive
                sock.sendall(b"GET /api/models HTTP/1.1\r\nHost: h\r\n\r\n")
                assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            start = time.monotonic()
            r = requests.get(f"{hub.url}/api/models", timeout=10)
            assert time.monotonic() - start < 2
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"] == "1"
            assert r.headers["Content-Type"] == "application/json"
            assert "retry later" in json.loads(r.content.decode("utf-8"))["error"]
        finally:
            for sock in held:
                sock.close()
        # The slots are free again (closing is seen by the server a moment later).
        for _ in range(50):
            if requests.get(f"{hub.url}/api/models", timeout=10).status_code == 200:
                break
            time.sleep(0.1)
        assert_alive(hub)
