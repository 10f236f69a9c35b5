"""`lorahub serve` with Arrow routing per request ("lora": {"method": "arrow", "modules",
"top_k", "temperature", "general"}): the served greedy text equals `lorahub generate --arrow
TOP_K,TEMPERATURE [--gks-lora ...]` with the same settings (real openai client, streamed and
not), and bad Arrow parameters are a 400 in OpenAI's error format with the server still up."""
import openai
import pytest

from serve_support import generate, serving_tiny_t5

MAX_TOKENS = 8


@pytest.fixture(scope="module")
def t5(bbh_dir, tmp_path_factory):
    with serving_tiny_t5(bbh_dir, tmp_path_factory) as t5:
        yield t5


def served(server, prompt, lora, stream=False):
    kwargs = dict(model="tiny-t5", prompt=prompt, max_tokens=MAX_TOKENS, temperature=0,
                  extra_body={"lora": lora})
    if not stream:
        return server.client.completions.create(**kwargs).choices[0].text
    return "".join(c.choices[0].text
                   for c in server.client.completions.create(stream=True, **kwargs))


def arrow_generate(t5, prompts, tmp_path, tasks, top_k, temperature, general=()):
    flags = ["--arrow", f"{top_k},{temperature!r}"]
    for g in general:
        flags += ["--gks-lora", g]
    return generate(t5["model"], prompts, tmp_path, MAX_TOKENS, tasks, flags=flags)


@pytest.mark.parametrize("top_k,temperature,with_general", [(1, 1.0, False), (2, 0.5, False),
                                                             (2, 1.0, True)])
def test_arrow_text_equals_generate(t5, tmp_path, top_k, temperature, with_general):
    s, modules = t5["server"], t5["modules"]
    tasks, general = (modules[:2], modules[2:]) if with_general else (modules, [])
    lora = {"method": "arrow", "modules": [m.name for m in tasks], "top_k": top_k,
            "temperature": temperature}
    if general:
        lora["general"] = [m.name for m in general]
    prompts = [e["input"] for e in t5["examples"][:2]]
    want = arrow_generate(t5, prompts, tmp_path, tasks, top_k, temperature, general)
    for prompt, w in zip(prompts, want):
        assert served(s, prompt, lora) == w
        assert served(s, prompt, lora, stream=True) == w


def test_arrow_is_not_the_weighted_composition(t5, tmp_path):
    """The route is really taken: top_k 1 (one module per token) differs from the uniform
    LoraHub composition of the same modules on some prompt (else the test above proves nothing)."""
    s, modules = t5["server"], t5["modules"]
    names = [m.name for m in modules]
    prompts = [e["input"] for e in t5["examples"]]
    arrow = [served(s, p, {"method": "arrow", "modules": names, "top_k": 1}) for p in prompts]
    uniform = [served(s, p, {"modules": names, "weights": [1 / 3] * 3}) for p in prompts]
    base = generate(t5["model"], prompts, tmp_path, MAX_TOKENS)
    assert arrow != uniform and arrow != base


BAD_ARROW = [
    ({"method": "arrow", "modules": ["module_0", "module_1"], "top_k": 3}, "lora.top_k",
     "between 1 and the number of modules (2)"),
    ({"method": "arrow", "modules": ["module_0"], "top_k": 0}, "lora.top_k", "between 1"),
    ({"method": "arrow", "modules": ["module_0"], "top_k": 1.5}, "lora.top_k", "integer"),
    ({"method": "arrow", "modules": ["module_0"], "top_k": "2"}, "lora.top_k", "integer"),
    ({"method": "arrow", "modules": ["module_0"], "temperature": 0}, "lora.temperature", "> 0"),
    ({"method": "arrow", "modules": ["module_0"], "temperature": -1}, "lora.temperature", "> 0"),
    ({"method": "arrow", "modules": ["module_0"], "temperature": "warm"}, "lora.temperature",
     "finite"),
    ({"method": "arrow", "modules": ["module_0"], "weights": [1]}, "lora.weights",
     "must not be given"),
    ({"method": "arrow", "modules": ["module_0"], "general": []}, "lora.general", "empty"),
    ({"method": "arrow", "modules": ["module_0"], "general": "module_1"}, "lora.general",
     "list of strings"),
    ({"modules": ["module_0"], "weights": [1], "top_k": 1}, "lora.top_k", "arrow"),
    ({"modules": ["module_0"], "weights": [1], "general": ["module_1"]}, "lora.general", "arrow"),
]


@pytest.mark.malformed
@pytest.mark.parametrize("lora,param,fragment", BAD_ARROW)
def test_bad_arrow_parameters_are_400(t5, lora, param, fragment):
    s = t5["server"]
    with pytest.raises(openai.BadRequestError) as e:
        served(s, "hello", lora)
    err = e.value.body
    assert e.value.status_code == 400 and err["param"] == param, err
    assert err["type"] == "invalid_request_error" and fragment in err["message"], err
    assert s.http.get("/health").status_code == 200


@pytest.mark.malformed
def test_unknown_arrow_module_is_404(t5):
    s = t5["server"]
    for lora, param in [({"method": "arrow", "modules": ["module_0", "nope"], "top_k": 1},
                         "lora.modules"),
                        ({"method": "arrow", "modules": ["module_0"], "general": ["nope"]},
                         "lora.general")]:
        with pytest.raises(openai.NotFoundError) as e:
            served(s, "hello", lora)
        assert e.value.body["param"] == param and "nope" in e.value.body["message"]
    assert s.http.get("/health").status_code == 200
