"""`lorahub serve`: the OpenAI API with a composition per request, checked with the real openai
client. The server's greedy text equals `lorahub generate` with the same composition (SmolLM2
GGUF + the committed library, and a tiny T5), streamed or not; 8 clients with 8 compositions at
once get their sequential answers and were batched together; learning is a call whose result
is a model; a client that leaves cancels its sequence; SIGTERM ends streams cleanly."""
import json
import signal
import socket
import time

import httpx
import pytest

from serve_support import (LIBRARY, Serve, at_once, generate, library_prompt, serving_tiny_t5,
                           smollm2_gguf)

TASKS = ["add_sub", "boolean_eval", "count_letter", "sort_words", "reverse_word", "parity",
         "larger_number", "first_letters"]
QUESTIONS = {"add_sub": "12 + 7 - 5", "boolean_eval": "not ( True and False )",
             "count_letter": "How many times does the letter r occur in 'strawberry'?",
             "sort_words": "pear apple fig", "reverse_word": "garden", "parity": "17",
             "larger_number": "Which is larger: 41 or 14?", "first_letters": "red old sun"}
MAX_TOKENS = 12


def composition(i):
    """The i-th of 8 distinct compositions: two library modules, weights that differ."""
    a, b = TASKS[i], TASKS[(i + 3) % len(TASKS)]
    return {"modules": [a, b], "weights": [round(0.9 - 0.1 * i, 2), round(0.2 + 0.05 * i, 2)]}


def paths(lora):
    return [LIBRARY / m for m in lora["modules"]]


@pytest.fixture(scope="module")
def smol():
    with Serve(smollm2_gguf(), "--modules", LIBRARY, "--max-batch", 8, "--name", "smollm2") as s:
        yield s


@pytest.fixture(scope="module")
def t5(bbh_dir, tmp_path_factory):
    with serving_tiny_t5(bbh_dir, tmp_path_factory) as t5:
        yield t5


def complete(server, prompt, lora=None, model="smollm2", stream=False, max_tokens=MAX_TOKENS):
    extra = {"lora": lora} if lora else None
    if not stream:
        r = server.client.completions.create(model=model, prompt=prompt, max_tokens=max_tokens,
                                             temperature=0, extra_body=extra)
        return r.choices[0].text, r.choices[0].finish_reason, r.usage
    text, reasons = "", []
    for chunk in server.client.completions.create(model=model, prompt=prompt, stream=True,
                                                  max_tokens=max_tokens, temperature=0,
                                                  extra_body=extra):
        text += chunk.choices[0].text
        reasons.append(chunk.choices[0].finish_reason)
    assert reasons[-1] in ("stop", "length") and set(reasons[:-1]) <= {None}
    return text, reasons[-1], None


def chat(server, content, lora=None, model="smollm2", stream=False, max_tokens=MAX_TOKENS):
    messages = [{"role": "user", "content": content}]
    extra = {"lora": lora} if lora else None
    if not stream:
        r = server.client.chat.completions.create(model=model, messages=messages,
                                                  max_tokens=max_tokens, temperature=0,
                                                  extra_body=extra)
        assert r.choices[0].message.role == "assistant"
        return r.choices[0].message.content
    chunks = list(server.client.chat.completions.create(
        model=model, messages=messages, max_tokens=max_tokens, temperature=0, stream=True,
        extra_body=extra))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    return "".join(c.choices[0].delta.content or "" for c in chunks)


def test_smollm2_completions_and_chat_equal_generate(smol, tmp_path):
    lora = composition(0)
    prompt = library_prompt("add_sub", QUESTIONS["add_sub"])
    [want] = generate(smollm2_gguf(), [prompt], tmp_path, MAX_TOKENS, paths(lora), lora["weights"])
    text, reason, usage = complete(smol, prompt, lora)
    assert text == want
    assert usage.completion_tokens >= 1 and usage.prompt_tokens > 10
    assert complete(smol, prompt, lora, stream=True)[0] == want
    # The base model differs from the composition (the modules matter).
    [base] = generate(smollm2_gguf(), [prompt], tmp_path, MAX_TOKENS)
    assert complete(smol, prompt)[0] == base
    # A single module by name as "model".
    [one] = generate(smollm2_gguf(), [prompt], tmp_path, MAX_TOKENS, [LIBRARY / "add_sub"])
    assert complete(smol, prompt, model="add_sub")[0] == one

    question = "What is the capital of France?"
    [want_chat] = generate(smollm2_gguf(), [question], tmp_path, MAX_TOKENS, paths(lora),
                           lora["weights"], chat=True)
    assert chat(smol, question, lora) == want_chat
    assert chat(smol, question, lora, stream=True) == want_chat


def test_eight_clients_with_eight_compositions_are_batched(smol):
    prompts = [library_prompt(TASKS[i], QUESTIONS[TASKS[i]]) for i in range(8)]
    sequential = [complete(smol, prompts[i], composition(i))[0] for i in range(8)]
    assert len(set(sequential)) > 1  # the compositions differ in what they say
    results = at_once(lambda i: complete(smol, prompts[i], composition(i), stream=i % 2 == 1)[0],
                      8, timeout=300)
    assert results == sequential
    assert smol.metric("lorahub_batch_size_max") > 1
    metrics = smol.http.get("/metrics").text
    assert 'lorahub_requests_total{endpoint="completions",status="200"}' in metrics
    assert "lorahub_time_to_first_token_seconds_count" in metrics


def test_models_lists_base_modules_and_compositions(smol):
    ids = {m.id for m in smol.client.models.list().data}
    assert {"smollm2", "add_sub", "boolean_eval"} <= ids
    assert smol.client.models.retrieve("add_sub").id == "add_sub"


def test_a_client_that_leaves_cancels_its_sequence(smol):
    prompt = library_prompt("sort_words", "kiwi banana apple cherry")
    body = {"model": "smollm2", "prompt": prompt, "max_tokens": 2000, "temperature": 0.7,
            "seed": 1, "stream": True}
    with httpx.stream("POST", f"{smol.url}/v1/completions", json=body, timeout=60) as r:
        assert r.status_code == 200
        next(r.iter_lines())  # generation is under way
    deadline = time.monotonic() + 20
    while smol.http.get("/health").json()["running"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert smol.http.get("/health").json()["running"] == 0  # long before 2000 tokens


@pytest.mark.serial  # asserts wall-clock bounds: not beside another busy worker
def test_a_client_that_leaves_a_whole_answer_cancels_its_sequence(smol):
    """Not streamed: nothing is written to the client until the end, so the server watches the
    socket; one closed mid-generation frees its place at once and is counted as a 499."""
    def cancelled():
        for line in smol.http.get("/metrics").text.splitlines():
            if line.startswith('lorahub_requests_total{endpoint="completions",status="499"}'):
                return float(line.split()[-1])
        return 0.0

    before = cancelled()
    body = json.dumps({"model": "smollm2", "prompt": "Once upon a time", "max_tokens": 2000,
                       "temperature": 0.7, "seed": 4}).encode()
    host, port = smol.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        deadline = time.monotonic() + 20
        while smol.http.get("/health").json()["running"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert smol.http.get("/health").json()["running"] == 1  # decoding
        time.sleep(0.3)  # some tokens in
    closed = time.monotonic()
    while smol.http.get("/health").json()["running"] and time.monotonic() - closed < 10:
        time.sleep(0.05)
    assert smol.http.get("/health").json()["running"] == 0
    assert time.monotonic() - closed < 3  # a few steps, not 2000 tokens
    assert wait_for(lambda: cancelled() == before + 1)


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def test_t5_completions_equal_generate(t5, tmp_path):
    s, modules = t5["server"], t5["modules"]
    lora = {"modules": [m.name for m in modules], "weights": [0.5, -0.3, 0.8]}
    prompts = [e["input"] for e in t5["examples"][:2]]
    want = generate(t5["model"], prompts, tmp_path, 8, modules, lora["weights"])
    for prompt, w in zip(prompts, want):
        assert complete(s, prompt, lora, model="tiny-t5", max_tokens=8)[0] == w
        assert complete(s, prompt, lora, model="tiny-t5", max_tokens=8, stream=True)[0] == w


def test_learn_gives_a_composition_usable_as_model(t5, tmp_path):
    s, modules = t5["server"], t5["modules"]
    r = s.http.post("/v1/lorahub/learn", json={
        "modules": [m.name for m in modules], "examples": t5["examples"], "steps": 4, "seed": 3})
    assert r.status_code == 200, r.text
    learned = r.json()
    assert len(learned["weights"]) == 3 and len(learned["history"]) == 4
    assert learned["objective"] == min(h["objective"] for h in learned["history"])
    prompt = t5["examples"][0]["input"]
    [want] = generate(t5["model"], [prompt], tmp_path, 8, modules, learned["weights"])
    assert complete(s, prompt, model=learned["id"], max_tokens=8)[0] == want
    assert learned["id"] in {m.id for m in s.client.models.list().data}


def test_t5_has_no_chat_template(t5):
    import openai
    with pytest.raises(openai.BadRequestError) as e:
        chat(t5["server"], "hello", model="tiny-t5")
    assert "chat template" in e.value.body["message"]


def test_full_queue_is_429(t5):
    """One sequence decoding, one waiting: more at once are refused with 429, not queued."""
    model = t5["model"]
    with Serve(model, "--max-batch", 1, "--max-queue", 1) as s:
        body = {"model": "t5", "prompt": t5["examples"][0]["input"], "max_tokens": 400,
                "temperature": 1.0, "seed": 5}
        codes = at_once(lambda i: httpx.post(f"{s.url}/v1/completions", json=body,
                                             timeout=120).status_code, 6, timeout=120)
        assert 429 in codes and 200 in codes and set(codes) <= {200, 429}, codes
        assert s.http.get("/health").status_code == 200


def test_sigterm_during_streaming_ends_cleanly(t5):
    with Serve(smollm2_gguf(), "--name", "smollm2", "--shutdown-timeout", 1) as s:
        body = {"model": "smollm2", "prompt": "Once upon a time", "max_tokens": 2000,
                "temperature": 0.8, "seed": 2, "stream": True}
        lines = []
        with httpx.stream("POST", f"{s.url}/v1/completions", json=body, timeout=60) as r:
            it = r.iter_lines()
            lines.append(next(it))
            started = time.monotonic()
            s.proc.send_signal(signal.SIGTERM)
            lines += list(it)  # the stream ends (cancelled after the 1 s bound), never hangs
        assert time.monotonic() - started < 15
        # Either it finished in time ([DONE]) or it was cancelled with an OpenAI error event.
        events = [l[6:] for l in lines if l.startswith("data: ")]
        assert events[-1] == "[DONE]" or json.loads(events[-1])["error"]["code"] == "unavailable"
        assert s.proc.wait(timeout=15) == 0
