"""The hub against hostile clients (issue 14): bad bytes in every route, Range per RFC 9110, limits
checked before a body is read, bounded headers, slow sockets, and keep-alive latency. Each check
also asserts that the server still answers afterwards."""
import http.client
import json
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests

from hub_support import Hub, create_token, folder_files, hf_env, make_adapter, raw_push


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    h = Hub(tmp / "hub", "--max-upload-mib", "4", "--page-size", "1")
    try:
        h.token = create_token(h.root, "alice")
        for name in ("mod", "other"):
            r = raw_push(h, f"alice/{name}", folder_files(make_adapter(tmp / name)), token=h.token)
            assert r.status_code == 200, r.text
        h.sha = r.json()["commit"]
        h.readme = (tmp / "other" / "README.md").read_bytes()
        yield h
    finally:
        code = h.stop()
        assert code == 0, h.proc.stderr.read()[-3000:]


def address(hub):
    parts = urlsplit(hub.url)
    return parts.hostname, parts.port


def connect(hub, timeout=10):
    return socket.create_connection(address(hub), timeout=timeout)


def read_answer(sock):
    """The response on `sock` (status, headers, body) with http.client's parser."""
    answer = http.client.HTTPResponse(sock)
    answer.begin()
    return answer.status, answer.headers, answer.read()


def exchange(hub, raw, timeout=10):
    with connect(hub, timeout) as sock:
        sock.sendall(raw)
        return read_answer(sock)


def rss_peak_kib(hub):
    """The server's peak resident set (VmHWM), in KiB."""
    for line in open(f"/proc/{hub.proc.pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def assert_alive(hub):
    assert hub.proc.poll() is None, "the server died"
    r = requests.get(f"{hub.url}/api/models/alice/mod", timeout=10)
    assert r.status_code == 200 and r.json()["id"] == "alice/mod"


def assert_json_error(status, headers, body, allowed=range(400, 500)):
    assert status in allowed, (status, body[:200])
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    message = json.loads(body.decode("utf-8"))["error"]  # strict UTF-8: never bad bytes
    assert isinstance(message, str) and message


BAD = "%FF%C0%80%ED%A0%80"  # a lone 0xFF, an overlong NUL, a surrogate

# Every GET route with each path segment, then each query parameter, made invalid UTF-8.
BAD_TARGETS = [
    f"/api/models/{BAD}/mod", f"/api/models/alice/{BAD}",
    f"/api/models/alice/mod/revision/{BAD}",
    f"/api/models/alice/mod/tree/{BAD}", f"/api/models/alice/mod/tree/main/{BAD}",
    f"/{BAD}/mod/resolve/main/README.md", f"/alice/{BAD}/resolve/main/README.md",
    f"/alice/mod/resolve/{BAD}/README.md", f"/alice/mod/resolve/main/{BAD}",
    f"/alice/mod/resolve/main/dir/{BAD}/x", f"/{BAD}", f"/api/{BAD}",
] + [f"/api/models?{key}={BAD}" for key in ("limit", "cursor", "rank")] + [
    f"/api/models/alice/mod/tree/main?{key}={BAD}" for key in ("limit", "cursor")]

# Parameters where any bytes are a valid (if useless) filter: an answer, never a crash.
FILTER_TARGETS = [f"/api/models?{key}={BAD}" for key in
                  ("search", "author", "base_model", "task", "tag", "filter", "full")] + [
    f"/api/models?{BAD}=1", f"/api/models/alice/mod/tree/main?recursive={BAD}"]


@pytest.mark.malformed
def test_invalid_utf8_in_every_segment_and_parameter_is_a_json_4xx(hub):
    for target in BAD_TARGETS:
        r = requests.get(hub.url + target, timeout=10)
        assert_json_error(r.status_code, r.headers, r.content)
    for target in FILTER_TARGETS:
        r = requests.get(hub.url + target, timeout=10)
        assert r.status_code in (200, 400), (target, r.status_code)
        json.loads(r.content.decode("utf-8"))
    # The push route, its bad names refused before any body byte (a valid token).
    for repo in (f"{BAD}/mod", f"alice/{BAD}"):
        r = requests.post(f"{hub.url}/api/lorahub/push/{repo}", data=b"x",
                          headers={"Authorization": f"Bearer {hub.token}"}, timeout=10)
        assert_json_error(r.status_code, r.headers, r.content)
    # Raw bytes where a client would percent-encode, and in a header.
    for raw in (b"GET /api/models?limit=\xff HTTP/1.1\r\nHost: h\r\n\r\n",
                b"GET /api/models/\xff/x HTTP/1.1\r\nHost: h\r\n\r\n",
                b"GET /api/whoami-v2 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer \xff\xfe\r\n\r\n"):
        assert_json_error(*exchange(hub, raw))
    assert_alive(hub)


def get_range(hub, header):
    headers = {"Range": header} if header is not None else {}
    return requests.get(f"{hub.url}/alice/other/resolve/{hub.sha}/README.md", headers=headers,
                        timeout=10)


@pytest.mark.malformed
def test_range_requests_follow_rfc_9110(hub):
    data, size = hub.readme, len(hub.readme)
    assert size > 20
    partial = {  # header -> the bytes RFC 9110 selects (206)
        "bytes=0-8191": (0, size - 1),  # past the end: clamped, never bytes beyond the file
        "bytes=0-0": (0, 0),
        "bytes=3-9": (3, 9),
        f"bytes={size - 1}-": (size - 1, size - 1),
        "bytes=5-": (5, size - 1),
        "bytes=-5": (size - 5, size - 1),
        "bytes=-100000": (0, size - 1),
        f"bytes=0-{10 ** 30}": (0, size - 1),
    }
    for header, (first, last) in partial.items():
        r = get_range(hub, header)
        assert r.status_code == 206, header
        assert r.headers["Content-Range"] == f"bytes {first}-{last}/{size}", header
        assert r.content == data[first:last + 1], header
        assert int(r.headers["Content-Length"]) == last - first + 1
    for header in (f"bytes={size}-", f"bytes={size}-{size + 10}", "bytes=8192-9000", "bytes=-0",
                   f"bytes={10 ** 30}-"):
        r = get_range(hub, header)
        assert r.status_code == 416, header
        assert r.headers["Content-Range"] == f"bytes */{size}", header
        assert_json_error(r.status_code, r.headers, r.content, allowed=(416,))
    # Malformed, zero-length (last < first), several, overlapping or many ranges: the whole
    # file once (RFC 9110 lets a server ignore Range), so a request never amplifies the answer.
    for header in (None, "bytes=5-4", "bytes=abc", "bytes=1-2x", "chars=0-5", "bytes=",
                   "bytes=0-1,3-4", "bytes=0-10,5-15", ",".join(["bytes=0-"] + ["0-"] * 999)):
        r = get_range(hub, header)
        assert r.status_code == 200, header
        assert r.content == data and "Content-Range" not in r.headers, header
    head = requests.head(f"{hub.url}/alice/other/resolve/{hub.sha}/README.md", timeout=10,
                         headers={"Range": "bytes=2-3"})
    assert head.status_code == 206 and head.headers["Content-Length"] == "2"
    assert_alive(hub)


def resolve_url(hub):
    return f"{hub.url}/alice/other/resolve/{hub.sha}/README.md"


@pytest.mark.malformed
def test_if_range_sends_a_part_only_of_the_same_version(hub):
    data = hub.readme
    etag = requests.head(resolve_url(hub), timeout=10).headers["ETag"]
    assert etag.startswith('"') and "Last-Modified" not in requests.head(resolve_url(hub)).headers
    same = requests.get(resolve_url(hub), headers={"Range": "bytes=5-", "If-Range": etag},
                        timeout=10)
    assert same.status_code == 206 and same.content == data[5:]
    # Another version, a weak tag, a date (the hub sends no Last-Modified), junk: all of it.
    for other in ('"' + "0" * 64 + '"', "W/" + etag, "Sun, 06 Nov 1994 08:49:37 GMT",
                  etag[:-1], "\xff"):
        for range_ in ("bytes=5-", "bytes=100000-"):  # satisfiable or not: never 206 nor 416
            r = requests.get(resolve_url(hub), headers={"Range": range_, "If-Range": other},
                             timeout=10)
            assert r.status_code == 200 and r.content == data, (other, range_, r.status_code)
            assert "Content-Range" not in r.headers
    assert_alive(hub)


def test_curl_resumes_a_download_and_if_range_guards_it(hub, tmp_path):
    data, url = hub.readme, resolve_url(hub)
    partial = tmp_path / "README.md"
    partial.write_bytes(data[:7])
    subprocess.run(["curl", "-sS", "-f", "-C", "-", "-o", str(partial), url], check=True,
                   timeout=30)
    assert partial.read_bytes() == data
    etag = requests.head(url, timeout=10).headers["ETag"]

    def curl_status(if_range):
        out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-r", "3-",
                              "-H", f"If-Range: {if_range}", url],
                             capture_output=True, text=True, check=True, timeout=30)
        return out.stdout

    assert curl_status(etag) == "206"
    assert curl_status('"stale"') == "200"


def test_huggingface_hub_resumes_a_download_with_range(hub, tmp_path):
    """huggingface_hub's http_get resumes a partial file with Range (its retries after a dropped
    connection do this). The part already there is kept: garbage planted in it stays, which
    proves the hub answered just the rest (206), not the whole file again."""
    script = ("import sys\n"
              "from huggingface_hub.file_download import http_get\n"
              "url, path, size = sys.argv[1], sys.argv[2], int(sys.argv[3])\n"
              "with open(path, 'r+b') as f:\n"
              "    f.seek(7)\n"
              "    http_get(url, f, resume_size=7, expected_size=size)\n")
    partial = tmp_path / "partial"
    partial.write_bytes(b"#" * 7)
    subprocess.run([sys.executable, "-c", script, resolve_url(hub), str(partial),
                    str(len(hub.readme))], check=True, timeout=60, env=hf_env(hub, tmp_path))
    assert partial.read_bytes() == b"#" * 7 + hub.readme[7:]


def send_chunked_forever(sock, total, stop):
    """Writes a chunked body of `total` bytes (or until the server closes)."""
    chunk = b"%x\r\n" % (1 << 20) + b"x" * (1 << 20) + b"\r\n"
    try:
        for _ in range(total >> 20):
            if stop.is_set():
                return
            sock.sendall(chunk)
        sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server stopped reading: what it should do


@pytest.mark.serial  # asserts wall-clock bounds: not beside another busy worker
@pytest.mark.malformed
def test_chunked_body_without_token_is_refused_before_it_is_read(hub):
    before = rss_peak_kib(hub)
    stop = threading.Event()
    with connect(hub) as sock:
        sock.sendall(b"POST /api/lorahub/push/alice/mod HTTP/1.1\r\nHost: h\r\n"
                     b"Content-Type: multipart/form-data; boundary=b\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        sender = threading.Thread(target=send_chunked_forever, args=(sock, 64 << 20, stop))
        start = time.monotonic()
        sender.start()
        status, headers, body = read_answer(sock)
        elapsed = time.monotonic() - start
        stop.set()
        sender.join(timeout=30)
    assert_json_error(status, headers, body, allowed=(401,))
    assert elapsed < 2, elapsed
    grown = rss_peak_kib(hub) - before
    assert grown < 16 << 10, f"the server's peak RSS grew by {grown} KiB"
    # With a token but over --max-upload-mib 4: 413 while reading, also without buffering it all.
    with connect(hub) as sock:
        sock.sendall(b"POST /api/lorahub/push/alice/mod HTTP/1.1\r\nHost: h\r\n"
                     b"Authorization: Bearer " + hub.token.encode() + b"\r\n"
                     b"Content-Type: multipart/form-data; boundary=b\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        stop.clear()
        sender = threading.Thread(target=send_chunked_forever, args=(sock, 64 << 20, stop))
        sender.start()
        status, headers, body = read_answer(sock)
        stop.set()
        sender.join(timeout=30)
    assert_json_error(status, headers, body, allowed=(413,))
    grown = rss_peak_kib(hub) - before
    assert grown < 16 << 10, f"the server's peak RSS grew by {grown} KiB"
    # A declared length over the limit: 413 at once, before the body.
    status, headers, body = exchange(
        hub, b"POST /api/lorahub/push/alice/mod HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer "
        + hub.token.encode() + b"\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 536870912\r\n\r\n")
    assert_json_error(status, headers, body, allowed=(413,))
    assert_alive(hub)


@pytest.mark.malformed
def test_post_without_content_length_is_411(hub):
    # Not read to EOF: the answer comes while the socket stays open for writing.
    status, headers, body = exchange(
        hub, b"POST /api/lorahub/push/alice/mod HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer "
        + hub.token.encode() + b"\r\nContent-Type: multipart/form-data; boundary=b\r\n\r\n--b",
        timeout=5)
    assert_json_error(status, headers, body, allowed=(411,))
    assert_alive(hub)


def send_until_refused(sock, data, stop):
    try:
        for i in range(0, len(data), 1 << 16):
            if stop.is_set():
                return
            sock.sendall(data[i:i + (1 << 16)])
    except OSError:
        pass


@pytest.mark.malformed
def test_oversized_headers_are_refused_with_bounded_memory(hub):
    before = rss_peak_kib(hub)
    attacks = {
        "a 1 MiB line without a line break": b"GET /api/models HTTP/1.1\r\nX-Long: "
        + b"a" * (1 << 20),
        "10000 header fields": b"GET /api/models HTTP/1.1\r\nHost: h\r\n"
        + b"".join(b"X-%d: v\r\n" % i for i in range(10000)) + b"\r\n",
        "a 1 MiB request line": b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\n\r\n",
    }
    for what, data in attacks.items():
        stop = threading.Event()
        with connect(hub) as sock:
            sender = threading.Thread(target=send_until_refused, args=(sock, data, stop))
            sender.start()
            status, headers, body = read_answer(sock)
            stop.set()
            sender.join(timeout=30)
        assert_json_error(status, headers, body, allowed=(400, 431)), what
    # Just under the field cap is served.
    few = b"".join(b"X-%d: v\r\n" % i for i in range(60))
    status, _, _ = exchange(hub, b"GET /api/models HTTP/1.1\r\nHost: h\r\n" + few + b"\r\n")
    assert status == 200
    grown = rss_peak_kib(hub) - before
    assert grown < 8 << 10, f"the server's peak RSS grew by {grown} KiB"
    assert_alive(hub)


def test_link_header_does_not_echo_the_host(hub):
    r = requests.get(f"{hub.url}/api/models", headers={"Host": "evil.example"}, timeout=10)
    assert r.status_code == 200 and len(r.json()) == 1  # --page-size 1: there is a next page
    assert r.links["next"]["url"].startswith(hub.url + "/api/models?"), r.headers["Link"]
    assert "evil" not in r.headers["Link"]
    r = requests.get(f"{hub.url}/api/models/alice/mod/tree/main", headers={"Host": "evil.example"},
                     timeout=10)
    assert r.links["next"]["url"].startswith(f"{hub.url}/api/models/alice/mod/tree/main?")
    # The next page is where the link says.
    assert requests.get(r.links["next"]["url"], timeout=10).status_code == 200


def test_security_headers(hub):
    page = requests.get(hub.url + "/", timeout=10)
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp and "script-src 'sha256-" in csp
    for path in ("/api/models", "/api/models/alice/mod", f"/alice/mod/resolve/{hub.sha}/README.md",
                 "/no/such/route/here"):
        assert requests.get(hub.url + path, timeout=10).headers["X-Content-Type-Options"] == "nosniff"


def slow_header_sender(hub, closed_after, index, budget):
    """Sends a request header one byte a second; records when the server cut it off."""
    start = time.monotonic()
    try:
        with connect(hub, timeout=2) as sock:
            header = b"GET /api/models HTTP/1.1\r\nHost: h\r\nX-Slow: " + b"a" * 100
            for byte in header:
                if time.monotonic() - start > budget:
                    return
                sock.send(bytes([byte]))
                readable, _, _ = select.select([sock], [], [], 1.0)
                if readable and sock.recv(1024) == b"":
                    break  # closed by the server
    except OSError:
        pass
    closed_after[index] = time.monotonic() - start


def test_slow_sockets_do_not_starve_other_clients(hub):
    count, budget = 50, 15.0
    closed_after = [None] * count
    senders = [threading.Thread(target=slow_header_sender, args=(hub, closed_after, i, budget))
               for i in range(count)]
    for t in senders:
        t.start()
    time.sleep(1.5)  # all of them connected and trickling
    worst = 0.0
    with requests.Session() as session:
        for _ in range(10):
            start = time.monotonic()
            r = session.get(f"{hub.url}/api/models/alice/mod", timeout=5)
            worst = max(worst, time.monotonic() - start)
            assert r.status_code == 200
            r = requests.get(f"{hub.url}/api/models", timeout=5)  # a fresh connection too
            worst = max(worst, time.monotonic() - start)
            time.sleep(0.3)
    for t in senders:
        t.join(timeout=30)
    assert worst < 2, f"a normal request took {worst:.2f} s"
    # The header deadline (10 s for the whole header, not per byte) cut every slow socket off.
    print("slow sockets closed after", sorted(closed_after))
    assert all(c is not None and c < 13 for c in closed_after), closed_after
    assert_alive(hub)


def test_keep_alive_gets_are_fast(hub):
    with requests.Session() as session:
        url = f"{hub.url}/api/models/alice/mod"
        session.get(url, timeout=10)
        times = []
        for _ in range(50):
            start = time.perf_counter()
            assert session.get(url, timeout=10).status_code == 200
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"keep-alive GET median {median * 1000:.2f} ms")
    assert median < 0.005, f"median {median * 1000:.1f} ms"
