"""`lorahub serve` refuses bad requests with a 4xx in OpenAI's error format
{"error": {"message", "type", "param", "code"}} and stays up (also run against the ASan build)."""
import json
import socket

import httpx
import pytest

from serve_support import Serve, tiny_t5

pytestmark = pytest.mark.malformed
KEY = "sk-test-0123456789"


@pytest.fixture(scope="module")
def srv(bbh_dir, tmp_path_factory):
    serve_t5 = tiny_t5(bbh_dir, tmp_path_factory)
    keys = tmp_path_factory.mktemp("serve_keys") / "keys.txt"
    keys.write_text(f"# test keys\n{KEY}\n")
    with Serve(serve_t5["model"], "--modules", serve_t5["root"] / "modules", "--name", "t5",
               "--api-key-file", keys, "--max-body-mib", 0.05, api_key=KEY) as s:
        yield s


def post(srv, body, path="/v1/completions", key=KEY, raw=None, headers=None):
    h = {"Authorization": f"Bearer {key}"} if key else {}
    h.update(headers or {})
    if raw is not None:
        return srv.http.post(path, content=raw, headers={"Content-Type": "application/json", **h})
    return srv.http.post(path, json=body, headers=h)


def assert_openai_error(r, status, param=None, fragment=""):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    assert err["type"] == {401: "authentication_error", 404: "not_found_error",
                           429: "rate_limit_error"}.get(status, "invalid_request_error")
    if param is not None:
        assert err["param"] == param
    assert fragment.lower() in err["message"].lower(), err["message"]
    return err


def ok_body(**extra):
    return {"model": "t5", "prompt": "hello world", "max_tokens": 2, "temperature": 0, **extra}


BAD = [
    (ok_body(lora={"modules": ["module_0", "nope"], "weights": [1, 1]}), 404, "lora.modules", "nope"),
    (ok_body(lora={"modules": ["module_0", "module_1"], "weights": [1]}), 400, "lora.weights",
     "1 weights for 2 modules"),
    (ok_body(lora={"modules": ["module_0"], "weights": ["x"]}), 400, "lora.weights", "finite"),
    (ok_body(lora={"modules": ["module_0"], "weights": [1], "method": "nosuch"}), 400, "lora",
     "nosuch"),
    (ok_body(lora={"modules": [], "weights": []}), 400, "lora.modules", "empty"),
    (ok_body(lora={"modules": ["module_0"], "weights": [1], "extra": 1}), 400, "lora.extra", ""),
    (ok_body(model="module_0", lora={"modules": ["module_0"], "weights": [1]}), 400, "model",
     "base model"),
    (ok_body(max_tokens=-1), 400, "max_tokens", "between"),
    (ok_body(max_tokens=0), 400, "max_tokens", "between"),
    (ok_body(max_tokens=1.5), 400, "max_tokens", "integer"),
    (ok_body(max_tokens=10**30), 400, "max_tokens", ""),
    (ok_body(temperature=-0.1), 400, "temperature", "between"),
    (ok_body(temperature="hot"), 400, "temperature", "number"),
    (ok_body(top_p=0), 400, "top_p", ""),
    (ok_body(n=2), 400, "n", "n=1"),
    (ok_body(stop=[1]), 400, "stop", "strings"),
    (ok_body(stop=["a", "b", "c", "d", "e"]), 400, "stop", "more than 4"),
    (ok_body(stream="yes"), 400, "stream", "true or false"),
    (ok_body(frobnicate=1), 400, "frobnicate", "unknown field"),
    (ok_body(model="gpt-4"), 404, "model", "does not exist"),
    (ok_body(model=7), 400, "model", "string"),
    (ok_body(prompt=[1, 2, 3]), 400, "prompt", "token ids"),
    ({"model": "t5"}, 400, "prompt", "required"),
    (ok_body(logprobs=5), 400, "logprobs", "not supported"),
    ([1, 2], 400, None, "object"),
]


@pytest.mark.parametrize("body,status,param,fragment", BAD,
                         ids=[f"{i}-{b[2]}" for i, b in enumerate(BAD)])
def test_bad_completion_requests(srv, body, status, param, fragment):
    assert_openai_error(post(srv, body), status, param, fragment)


@pytest.mark.parametrize("messages,param", [
    ([], "messages"), ("hi", "messages"), ([{"role": "robot", "content": "x"}], "messages[0].role"),
    ([{"role": "user"}], "messages[0].content"), ([{"role": "user", "content": 3}], "messages[0].content"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}], "messages[0].content"),
])
def test_bad_chat_requests(srv, messages, param):
    assert_openai_error(post(srv, {"model": "t5", "messages": messages},
                             "/v1/chat/completions"), 400, param)


def test_invalid_json_and_utf8(srv):
    assert_openai_error(post(srv, None, raw=b'{"model": "t5", "prompt": '), 400, None, "not valid JSON")
    assert_openai_error(post(srv, None, raw=b'{"model": "t5", "prompt": "\xff\xfe"}'), 400, None,
                        "not valid JSON")
    assert_openai_error(post(srv, None, raw=b'{"model": "t5", "prompt": "\xed\xa0\x80"}'), 400)
    assert_openai_error(post(srv, None, raw=b""), 400)


def test_huge_body_is_refused_before_it_is_read(srv):
    huge = json.dumps(ok_body(prompt="x" * 200_000)).encode()
    assert_openai_error(post(srv, None, raw=huge), 413, None, "at most")
    # Announced but never sent: the answer comes from the Content-Length alone.
    host, port = srv.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: 999999999\r\n\r\n".encode())
        answer = sock.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 413") and '"type":"invalid_request_error"' in answer


def test_api_keys(srv):
    for key in (None, "sk-wrong", KEY + "x", KEY[:-1]):
        assert_openai_error(post(srv, ok_body(), key=key), 401)
    err = assert_openai_error(srv.http.get("/v1/models"), 401)
    assert err["code"] == "invalid_api_key"
    assert post(srv, ok_body()).status_code == 200
    assert srv.http.get("/health").status_code == 200  # no key needed for health and metrics


def test_unknown_routes_and_methods(srv):
    assert_openai_error(srv.http.get("/v1/nothing"), 404)
    r = srv.http.get("/v1/completions", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 405 and r.json()["error"]["type"] == "invalid_request_error"


def test_bad_learn_requests(srv):
    path = "/v1/lorahub/learn"
    ex = [{"input": "a", "output": "b"}]
    assert_openai_error(post(srv, {"modules": ["module_0"], "examples": []}, path), 400, "examples")
    assert_openai_error(post(srv, {"modules": ["zzz"], "examples": ex}, path), 404, "modules")
    assert_openai_error(post(srv, {"modules": ["module_0"], "examples": [{"input": 1}]}, path), 400,
                        "examples[0]")
    assert_openai_error(post(srv, {"modules": ["module_0"], "examples": ex, "steps": 0}, path), 400,
                        "steps")


def test_server_alive_after_all_that(srv):
    r = srv.client.completions.create(model="t5", prompt="hello world", max_tokens=3, temperature=0)
    assert r.choices[0].finish_reason in ("stop", "length")
    assert srv.http.get("/health").json()["status"] == "ok"
    metrics = srv.http.get("/metrics").text
    assert 'status="400"' in metrics and 'status="401"' in metrics
