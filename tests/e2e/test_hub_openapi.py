"""/openapi.json against the live hub: it is served, every documented route answers (not the
router's "no such route"), and schemathesis fuzzes every operation from the document for a
bounded time (~60 s): every answer must match its documented schema, status and content type,
and none may be a 5xx. The route table itself is compared with the document in the unit tests
(HubOpenApi.DocumentsExactlyTheServersRoutes)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from hub_support import Hub, create_token, make_adapter, raw_push, folder_files

SAMPLES = {"user": "alice", "name": "mod", "git_name": "mod.git", "rev": "main",
           "path": "adapter_config.json", "oid": "0" * 64}


def test_every_documented_route_is_served(tmp_path):
    with Hub(tmp_path / "hub") as hub:
        doc = hub.http.get("/openapi.json").json()
        assert doc["openapi"].startswith("3.")
        for path, operations in doc["paths"].items():
            url = re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m.group(1)], path)
            for method in operations:
                r = hub.http.request(method.upper(), url, content=b"{}",
                                     headers={"Content-Type": "application/json"})
                body = r.text if "json" not in r.headers.get("content-type", "") else r.json()
                assert r.status_code != 405 and "no such route" not in str(body), (method, path)
        assert "no such route" in hub.http.get("/api/not-a-route").json()["error"]


def test_schemathesis_finds_no_5xx_and_no_schema_mismatch(tmp_path):
    folder = make_adapter(tmp_path / "a", seed=1)
    with Hub(tmp_path / "hub") as hub:
        token = create_token(hub.root, "alice")
        assert raw_push(hub, "alice/mod", folder_files(folder), token=token).status_code == 200
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
               "PYTHONPATH": str(Path(__file__).parent)}
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "schemathesis"), "run", f"{hub.url}/openapi.json",
             "--checks", "not_a_server_error,response_schema_conformance,"
             "content_type_conformance,status_code_conformance,response_headers_conformance",
             "-H", f"Authorization: Bearer {token}", "--max-time", "60", "--seed", "1",
             "--workers", "1", "--request-timeout", "10", "--suppress-health-check", "all",
             "--no-color"],
            capture_output=True, text=True, timeout=240, env=env)
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
        assert hub.proc.poll() is None  # still serving
        assert hub.http.get("/api/models/alice/mod").status_code == 200
    cases = re.search(r"(\d+) generated, (\d+) passed", proc.stdout)
    assert cases and int(cases.group(1)) > 100 and cases.group(1) == cases.group(2), proc.stdout[-3000:]
