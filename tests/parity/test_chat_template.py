"""Chat templates: our Jinja renderer against Python's jinja2 as transformers runs it.

Real templates (see chat_templates/README.md for where each comes from): SmolLM2 (its GGUF),
Qwen2.5, Qwen3, Gemma 3 (fixtures), Llama 3, Mistral, ChatML (llama-cpp-python). Expected text
comes from transformers' own compiled template (jinja2 with trim_blocks, lstrip_blocks, its tojson
and raise_exception); ours from `lorahub tokenize --render-chat`. `--chat` ids are compared with
`apply_chat_template(tokenize=True)`.
"""
import json
import os
from pathlib import Path

import pytest

from conftest import assert_clean_error, run_lorahub, smollm2_gguf

import jinja2  # noqa: E402,F401  (hard imports: a broken venv fails, it does not skip)
import tokenizers  # noqa: E402

HERE = Path(__file__).resolve().parent
BOS, EOS = "<|endoftext|>", "<|im_end|>"


def templates():
    import gguf
    from llama_cpp import llama_chat_format as f
    smollm2 = gguf.GGUFReader(smollm2_gguf()).fields["tokenizer.chat_template"].contents()
    out = {"smollm2": smollm2, "llama3": f.LLAMA3_INSTRUCT_CHAT_TEMPLATE,
           "mistral": f.MISTRAL_INSTRUCT_CHAT_TEMPLATE, "chatml": f.CHATML_CHAT_TEMPLATE}
    for name in ["qwen2.5", "qwen3", "gemma3"]:
        out[name] = (HERE / "chat_templates" / f"{name}.jinja").read_text()
    return out


TEMPLATES = templates()


def u(text):
    return {"role": "user", "content": text}


def a(text, **extra):
    return {"role": "assistant", "content": text, **extra}


TOOL_CALL = {"type": "function", "function": {"name": "get_weather",
                                              "arguments": {"city": "Paris", "unit": "°C", "days": 2}}}
CONVERSATIONS = {
    "one_turn": [u("Hello!")],
    "system": [{"role": "system", "content": "You are terse."}, u("Hi")],
    "multi_turn": [u("  What is 2+2?\n"), a("4"), u("And\tthree\r\ntimes that?  ")],
    "think": [u("q1"), a("<think>\nstep 1\nstep 2\n</think>\n\nThe answer."), u("q2"),
              a("final", reasoning_content="\nwhy\n")],
    "tools": [u("Weather?"), a("", tool_calls=[TOOL_CALL]), {"role": "tool", "content": "22"},
              {"role": "tool", "content": "sunny"}, u("Thanks")],
    "content_parts": [{"role": "user", "content": [{"type": "text", "text": " Describe "},
                                                   {"type": "image"}, {"type": "text", "text": "it"}]}],
    "unicode": [u("日本語 😀 e\u0301 “quotes” {{ not a tag }} {% raw %}")],
}
APPLIES = {  # which conversations a template is meant for (others may raise or need strings)
    "smollm2": ["one_turn", "system", "multi_turn", "unicode"],
    "llama3": ["one_turn", "system", "multi_turn", "unicode"],
    "mistral": ["one_turn", "multi_turn", "unicode"],
    "chatml": ["one_turn", "system", "multi_turn", "unicode"],
    "qwen2.5": ["one_turn", "system", "multi_turn", "tools", "unicode"],
    "qwen3": ["one_turn", "system", "multi_turn", "think", "tools", "unicode"],
    "gemma3": ["one_turn", "system", "multi_turn", "content_parts", "unicode"],
}


def jinja2_render(template, messages, add_generation_prompt=True):
    from transformers.utils.chat_template_utils import _compile_jinja_template
    return _compile_jinja_template(template).render(
        messages=messages, add_generation_prompt=add_generation_prompt, bos_token=BOS, eos_token=EOS)


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    """A byte-level tokenizer directory (SmolLM2's vocabulary) with BOS/EOS named."""
    import gguf
    from tokenizers import decoders, models, pre_tokenizers
    r = gguf.GGUFReader(smollm2_gguf())
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    merges = [tuple(m.split(" ", 1)) for m in r.fields["tokenizer.ggml.merges"].contents()]
    types = r.fields["tokenizer.ggml.token_type"].contents()
    tok = tokenizers.Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges))
    tok.add_special_tokens([t for t, ty in zip(tokens, types) if ty == 3])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    d = tmp_path_factory.mktemp("chat_tok")
    tok.save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": BOS, "eos_token": EOS, "tokenizer_class": "PreTrainedTokenizerFast"}))
    return d


def ours_render(tok_dir, template_path, conversations):
    lines = "".join(json.dumps(c) + "\n" for c in conversations)
    res = run_lorahub("tokenize", "--model", tok_dir, "--render-chat", "--chat-template",
                      template_path, input=lines)
    return [json.loads(line) for line in res.stdout.splitlines()]


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_renders_like_jinja2(name, tok_dir, bbh_dir, tmp_path):
    template = TEMPLATES[name]
    path = tmp_path / "t.jinja"
    path.write_text(template)
    convs = [CONVERSATIONS[c] for c in APPLIES[name]]
    # Real BBH inputs as single user turns.
    for f in sorted((bbh_dir / "tasks").glob("*.json"))[:10]:
        convs += [[u(ex["input"])] for ex in json.loads(f.read_text())["examples"][:3]]
    expected = [jinja2_render(template, c) for c in convs]
    got = ours_render(tok_dir, path, convs)
    bad = [(c, g, e) for c, g, e in zip(convs, got, expected) if g != e]
    assert not bad, f"{len(bad)} of {len(convs)} differ; first: {bad[0]!r}"


def test_qwen_default_system_turn_in_chat_ids(tok_dir, bbh_dir, tmp_path):
    """--chat ids equal apply_chat_template(tokenize=True): Qwen2.5's default system turn kept."""
    from transformers import PreTrainedTokenizerFast
    d = tmp_path / "qwen"
    d.mkdir()
    for f in ["tokenizer.json", "tokenizer_config.json"]:
        (d / f).write_text((tok_dir / f).read_text())
    (d / "chat_template.jinja").write_text(TEMPLATES["qwen2.5"])
    hf = PreTrainedTokenizerFast(tokenizer_file=str(d / "tokenizer.json"), bos_token=BOS, eos_token=EOS)
    inputs = [ex["input"] for ex in json.loads((bbh_dir / "tasks" / "date_understanding.json").read_text())["examples"][:20]]
    expected = [list(hf.apply_chat_template([u(x)], tokenize=True, add_generation_prompt=True,
                                            chat_template=TEMPLATES["qwen2.5"], return_dict=False))
                for x in inputs]
    res = run_lorahub("tokenize", "--model", d, "--chat", input="".join(json.dumps(x) + "\n" for x in inputs))
    got = [json.loads(line) for line in res.stdout.splitlines()]
    assert got == expected
    assert "You are Qwen" in hf.decode(got[0])


def test_bos_in_template_is_not_doubled(tok_dir, tmp_path):
    """Gemma-style: the template writes bos_token and the tokenizer adds BOS: one BOS in the ids."""
    from transformers import PreTrainedTokenizerFast
    from tokenizers import processors
    tok = tokenizers.Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, bos_id)])
    d = tmp_path / "gemma_like"
    d.mkdir()
    tok.save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text((tok_dir / "tokenizer_config.json").read_text())
    (d / "chat_template.jinja").write_text(TEMPLATES["gemma3"])
    hf = PreTrainedTokenizerFast(tokenizer_file=str(d / "tokenizer.json"), bos_token=BOS, eos_token=EOS)
    expected = list(hf.apply_chat_template([u("Hi there")], tokenize=True, add_generation_prompt=True,
                                           chat_template=TEMPLATES["gemma3"], return_dict=False))
    got = json.loads(run_lorahub("tokenize", "--model", d, "--chat", input='"Hi there"\n').stdout)
    assert got == expected and got.count(bos_id) == 1


@pytest.mark.malformed
@pytest.mark.parametrize("template,fragment", [
    ("line one\n{% if %}x{% endif %}", "chat template line 2"),
    ("{% for m in messages %}\n{{ m | no_such_filter }}\n{% endfor %}", "unsupported filter 'no_such_filter'"),
    ("{% if true %}\nnever closed", "missing '{% endif %}'"),
    ("{{ messages.__class__.__mro__ }}", "line 1: '__mro__' of an undefined value"),
    ("{{ 'x' ~ }}", "unexpected end of expression"),
    ("{% for i in range(1000) %}{% for j in range(1001) %}{% endfor %}{% endfor %}", "step limit"),
    ("{% set s = 'x' * 100000 %}{% for i in range(1000) %}{{ s }}{% endfor %}", "exceeds 16 MiB"),
    ("{{ " + "(" * 500 + "1" + ")" * 500 + " }}", "nested too deeply"),
    ("\n\n{{ raise_exception('Only user and assistant roles are supported!') }}",
     "line 3: the template raised an error: Only user and assistant roles are supported!"),
])
def test_bad_templates_fail_cleanly(template, fragment, tok_dir, tmp_path):
    path = tmp_path / "t.jinja"
    path.write_text(template)
    res = run_lorahub("tokenize", "--model", tok_dir, "--render-chat", "--chat-template", path,
                      input='"hi"\n', check=False)
    assert_clean_error(res, fragment)


@pytest.mark.malformed
def test_gemma_alternation_error_is_raised(tok_dir, tmp_path):
    path = tmp_path / "t.jinja"
    path.write_text(TEMPLATES["gemma3"])
    res = run_lorahub("tokenize", "--model", tok_dir, "--render-chat", "--chat-template", path,
                      input=json.dumps([u("a"), u("b")]) + "\n", check=False)
    assert_clean_error(res, "Conversation roles must alternate")
