"""Texts for tokenizer parity tests: every BBH input, target and prompt, plus edge cases.

Prompts follow DESIGN.md §1: "<task description>\\n\\nQ: <input>\\nA:", the description being the
third line of task-prompts/<task>.txt.
"""
import json

from conftest import run_lorahub

EDGE_CASES = [
    "", " ", "  ", "\n", "\n\n\n", "\ttab", "\t\tx\t", "\r\n", "a\r\nb\r\n\r\nc", "(x", "):\n",
    "    return f(x)\n\tpass\n", "def f(a, b):\n    return a+b  # sum\n", "if (x) {\n  y;\n}",
    "1234567890", "3.14159 2,345,678 0.5%", "year 2024-01-31 at 10:45", "x1y22z333w4444",
    "naïve café — “quotes” ‘single’ …", "日本語のテキストです。", "中文测试，标点！", "한국어 문장",
    "😀🎉👍🏽 👨‍👩‍👧 🇫🇷", "e\u0301 versus \u00e9", "A\u030a\u212b \u00c5", "ﬁ ligature ①②③ ＦＵＬＬ",
    "İstanbul ΣΑΣ ß", "it's I'LL we'Ve don’t", "a  b   c    d", "\u00a0nbsp\u00a0", "zero\u200bwidth",
    "ideographic\u3000space", "line\u2028sep", "trailing spaces   ", "   leading", "mixed 123abc def456",
    "<|im_start|>user\nhi<|im_end|>\n", "text<|im_end|>more<|im_start|>", "<s>a</s>", "<unk>",
    "<0x41> is not A", "\u2581already metaspace", "www.example.com/path?q=1&r=2", "a" * 300,
    "tab\there\tand\tthere", "x\r\n\r\ny", "a\n\n  b", "MixedCASE camelCase snake_case kebab-case", "¿Qué? ¡Sí!",
    "Ünïcödé ÄÖÜ äöü", "x\u0000y",
]


def bbh_strings(bbh_dir):
    """Every BBH input, target (as is and after a space) and prompt, in a fixed order."""
    texts = []
    for f in sorted((bbh_dir / "tasks").glob("*.json")):
        lines = (bbh_dir / "task-prompts" / f"{f.stem}.txt").read_text().splitlines()
        description = lines[2]
        for ex in json.loads(f.read_text())["examples"]:
            texts += [ex["input"], ex["target"], " " + ex["target"],
                      f"{description}\n\nQ: {ex['input']}\nA:"]
    return texts


def all_texts(bbh_dir):
    return EDGE_CASES + bbh_strings(bbh_dir)


def our_ids(model, texts, *flags):
    """Ids from `lorahub tokenize`, one process for all texts."""
    lines = "".join(json.dumps(t) + "\n" for t in texts)
    out = run_lorahub("tokenize", "--model", model, *flags, input=lines).stdout.split("\n")[:-1]
    assert len(out) == len(texts)
    return [json.loads(line) for line in out]


def our_decoded(model, ids, *flags):
    lines = "".join(json.dumps(i) + "\n" for i in ids)
    out = run_lorahub("tokenize", "--model", model, "--decode", *flags, input=lines).stdout
    return [json.loads(line) for line in out.split("\n")[:-1]]  # not splitlines(): U+2028


def assert_same(ours, theirs, texts, what="ids"):
    assert len(ours) == len(theirs) == len(texts)
    bad = [(t, o, h) for t, o, h in zip(texts, ours, theirs) if o != h]
    assert not bad, f"{len(bad)} of {len(texts)} {what} differ; first: {bad[0]!r}"
