"""`lorahub serve --quantized` / `--int8`: the faster weight paths of `lorahub generate` (GGUF
blocks, int8 per output channel), each request's composition an f32 side path. The served
greedy text equals `lorahub generate` with the same flag and composition, for requests that
decode together in one batch (each with its own composition) and for the base model."""
import pytest

from serve_support import LIBRARY, Serve, at_once, generate, library_prompt, smollm2_gguf
from test_serve import QUESTIONS, TASKS, complete, composition, paths

MAX_TOKENS = 12
CLIENTS = 3


@pytest.mark.parametrize("flag", ["--quantized", "--int8"])
def test_served_text_equals_generate_on_the_weight_path(flag, tmp_path):
    prompts = [library_prompt(TASKS[i], QUESTIONS[TASKS[i]]) for i in range(CLIENTS)]
    want = [generate(smollm2_gguf(), [prompts[i]], tmp_path, MAX_TOKENS, paths(composition(i)),
                     composition(i)["weights"], flags=[flag])[0] for i in range(CLIENTS)]
    [want_base] = generate(smollm2_gguf(), [prompts[0]], tmp_path, MAX_TOKENS, flags=[flag])
    assert len(set(want + [want_base])) > 1  # the compositions matter on this path too
    with Serve(smollm2_gguf(), "--modules", LIBRARY, "--name", "smollm2", flag) as s:
        results = at_once(lambda i: complete(s, prompts[i], composition(i), stream=i == 1)[0],
                          CLIENTS, timeout=120)
        assert results == want
        assert s.metric("lorahub_batch_size_max") > 1
        assert complete(s, prompts[0])[0] == want_base
