"""The hub behind nginx terminating TLS (deploy/nginx-hub.conf, as README.md deploys it): with a
self-signed certificate made here, huggingface_hub creates a repo, uploads a module (LFS through
the signed upload URLs, which point at nginx) and downloads it again, all over https; a client
that does not trust the certificate is refused, and nginx's body limit answers 413."""
import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import ROOT
from hub_support import (Hub, create_token, folder_files, hf_env, make_adapter, sha256,
                         stop_process)

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

HF_SCRIPT = textwrap.dedent(r"""
    import hashlib, json, os, sys
    from huggingface_hub import HfApi, snapshot_download
    endpoint, token, folder = sys.argv[1:]
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo("alice/tls-mod")
    sha = api.upload_folder(folder_path=folder, repo_id="alice/tls-mod").oid
    snap = snapshot_download("alice/tls-mod", endpoint=endpoint)
    files = {f: hashlib.sha256(open(os.path.join(snap, f), "rb").read()).hexdigest()
             for f in sorted(os.listdir(snap))}
    print(json.dumps({"sha": sha, "info_sha": api.model_info("alice/tls-mod").sha, "files": files}))
""")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed(folder):
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class Nginx:
    """nginx with the repo's template, its own prefix (pid, logs, temp) in `folder`."""

    def __init__(self, folder, port, upstream, cert, key, max_body):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = (ROOT / "deploy" / "nginx-hub.conf").read_text()
        for name, value in {"PREFIX": self.folder, "LISTEN": f"127.0.0.1:{port}", "CERT": cert,
                            "KEY": key, "UPSTREAM": upstream, "MAX_BODY": max_body}.items():
            conf = conf.replace(f"@{name}@", str(value))
        assert not re.search(r"@[A-Z_]+@", conf), "a placeholder left unfilled"
        (self.folder / "nginx.conf").write_text(conf)
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(self.folder), "-c", str(self.folder / "nginx.conf"),
             "-e", str(self.folder / "error.log"), "-g", "daemon off;"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited: {self.proc.stderr.read()}"
                                     f"{(self.folder / 'error.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError("nginx did not start listening")

    def stop(self):
        stop_process(self.proc)


def test_hf_client_uploads_and_downloads_over_https(tmp_path):
    folder = make_adapter(tmp_path / "a", seed=3)
    cert, key = self_signed(tmp_path)
    port = free_port()
    https = f"https://127.0.0.1:{port}"
    with Hub(tmp_path / "hub", "--public-url", https, "--max-upload-mib", 1) as hub:
        token = create_token(hub.root, "alice")
        nginx = Nginx(tmp_path / "nginx", port, hub.url.removeprefix("http://"), cert, key, "2m")
        try:
            env = {**hf_env(hub, tmp_path), "HF_ENDPOINT": https, "SSL_CERT_FILE": str(cert),
                   "REQUESTS_CA_BUNDLE": str(cert)}
            proc = subprocess.run([sys.executable, "-c", HF_SCRIPT, https, token, str(folder)],
                                  capture_output=True, text=True, timeout=300, env=env)
            assert proc.returncode == 0, proc.stderr[-3000:]
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            assert out["files"] == {k: sha256(v) for k, v in folder_files(folder).items()}
            assert out["info_sha"] == out["sha"]
            # The upload went through nginx: the LFS PUT of the weights is in its access log.
            log = (tmp_path / "nginx" / "access.log").read_text()
            assert "PUT /api/lorahub/lfs/alice/tls-mod/" in log and "/commit/main" in log
            # TLS is real: without the certificate the client refuses the server.
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                httpx.get(f"{https}/api/models", verify=True, timeout=10)
            trusted = ssl.create_default_context(cafile=str(cert))
            with httpx.Client(base_url=https, verify=trusted, timeout=30) as client:
                assert client.get("/api/models").json()[0]["id"] == "alice/tls-mod"
                # nginx's body limit: more than 2 MiB is refused before it reaches the hub.
                big = client.post("/api/models/alice/tls-mod/commit/main", content=b"x" * (3 << 20),
                                  headers={"Authorization": f"Bearer {token}"})
                assert big.status_code == 413
                # Under nginx's limit, the hub's own (before-body) checks still answer.
                anon = client.post("/api/models/alice/tls-mod/commit/main", content=b"{}\n")
                assert anon.status_code == 401 and "token" in anon.json()["error"]
        finally:
            nginx.stop()


def tls_socket(port, cert):
    context = ssl.create_default_context(cafile=str(cert))
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def trickle(sock, first, limit):
    """Sends `first`, then a byte every 0.25 s, until the other end closes; returns the seconds
    that took (`limit` at most) and what came back."""
    start, received = time.monotonic(), b""
    sock.sendall(first)
    sock.settimeout(0.25)
    while time.monotonic() - start < limit:
        try:
            sock.sendall(b"x")
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except (OSError, ssl.SSLError):
            break
        if not chunk:
            break
        received += chunk
    return time.monotonic() - start, received


@pytest.mark.serial  # asserts wall-clock bounds: not beside another busy worker
@pytest.mark.malformed
def test_slow_clients_are_cut_by_nginx_and_the_hub_while_others_are_served(tmp_path):
    """Through deploy/nginx-hub.conf: headers trickling in are cut by nginx's client_header_timeout
    (10 s); a body trickling in (never 30 s between two reads, so nginx lets it through) is cut
    by the hub's body deadline (--body-timeout 2 plus the length at 64 KiB/s). Meanwhile a normal
    client is answered at once, and afterwards both still serve."""
    cert, key = self_signed(tmp_path)
    port = free_port()
    with Hub(tmp_path / "hub", "--body-timeout", 2) as hub:
        token = create_token(hub.root, "alice")
        nginx = Nginx(tmp_path / "nginx", port, hub.url.removeprefix("http://"), cert, key, "2m")
        try:
            results = {}
            requests_ = {
                "headers": b"GET /api/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
                "body": (b"POST /api/lorahub/push/alice/mod HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Authorization: Bearer " + token.encode() + b"\r\n"
                         b"Content-Type: multipart/form-data; boundary=b\r\n"
                         b"Content-Length: 100000\r\n\r\n"),
            }

            def slow(name):
                with tls_socket(port, cert) as sock:
                    results[name] = trickle(sock, requests_[name], limit=25)

            threads = [threading.Thread(target=slow, args=(name,)) for name in requests_]
            for t in threads:
                t.start()
            trusted = ssl.create_default_context(cafile=str(cert))
            with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=trusted,
                              timeout=10) as client:
                for _ in range(8):  # while the slow ones trickle
                    start = time.monotonic()
                    assert client.get("/api/models").status_code == 200
                    assert time.monotonic() - start < 2
                    time.sleep(0.5)
                for t in threads:
                    t.join(timeout=40)
                header_seconds, _ = results["headers"]
                assert 9 <= header_seconds < 15, results
                body_seconds, answer = results["body"]
                assert 2 <= body_seconds < 8, results  # nginx alone would wait 30 s per read
                assert hub.proc.poll() is None and nginx.proc.poll() is None
                assert client.get("/api/models").status_code == 200
        finally:
            nginx.stop()
