"""The CLI as a new user meets it: an option error is one line `lorahub: error: ...` and exit 1
(not CLI11's two lines and its own exit codes, nor a 300-digit range), invalid JSON names the file
and the line, and --sample beyond the pool says so. No model is needed."""
import json

import pytest

from conftest import assert_clean_error, run_lorahub

pytestmark = pytest.mark.malformed


def one_line_error(result, *fragments, paths=()):
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, result.stderr
    assert len(lines[0]) - sum(len(str(p)) for p in paths) < 160, lines[0]
    assert_clean_error(result, *fragments)


@pytest.mark.parametrize("args, fragment", [
    (["generate", "--model", "m", "--data", "d", "--batch-size", "0"], "--batch-size"),
    (["score", "--model", "m", "--data", "d", "--batch-size", "-1"], "--batch-size"),
    (["generate", "--model", "m", "--data", "d", "--top-p", "2"], "--top-p"),
    (["generate", "--model", "m", "--data", "d", "--no-such-flag"], "--no-such-flag"),
    (["generate", "--data", "d"], "--model"),
    (["no-such-command"], "no-such-command"),
    ([], "subcommand"),
])
def test_option_errors_are_one_line_and_exit_1(args, fragment):
    one_line_error(run_lorahub(*args, check=False), fragment)


def test_help_and_version_still_exit_0():
    assert run_lorahub("--version").stdout.startswith("lorahub ")
    assert "--max-new-tokens" in run_lorahub("generate", "--help").stdout


def test_invalid_json_names_file_and_line(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{\n  "model_type": "t5",\n  "d_model": ,\n}\n')
    data = tmp_path / "d.jsonl"
    data.write_text('{"input": "a"}\n')
    r = run_lorahub("score", "--model", model, "--data", data, check=False)
    one_line_error(r, "config.json", "line 3, column", paths=[model])
    assert "json.exception" not in r.stderr
    data.write_text('{"input": "a"}\n{"input": oops}\n')
    r = run_lorahub("generate", "--model", model, "--data", data, check=False)
    one_line_error(r, "d.jsonl:2", "column", paths=[data])
    assert "json.exception" not in r.stderr


def test_sample_beyond_the_pool_says_so(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_text(json.dumps(
            {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q"]}))
    ex = tmp_path / "ex.jsonl"
    ex.write_text('{"input": "a", "output": "b"}\n')
    r = run_lorahub("learn", "--model", tmp_path / "no-model", "--out", tmp_path / "out",
                    "--lora", tmp_path / "a", tmp_path / "b", "--sample", 20, "--examples", ex,
                    check=False)
    assert "--sample 20 but only 2 modules are available" in r.stderr


def test_library_errors_name_no_flags_the_user_did_not_pass(tmp_path):
    """The layers below cli/ do not know flag names; the CLI names the flag the value came
    from."""
    ex = tmp_path / "ex.jsonl"
    ex.write_text('{"input": "a", "output": "b"}\n')
    r = run_lorahub("learn", "--model", tmp_path / "m", "--out", tmp_path / "out", "--lora",
                    tmp_path / "a", "--examples", ex, "--sampler", "dice", check=False)
    one_line_error(r, "--sampler", "dice")
    r = run_lorahub("learn", "--model", tmp_path / "m", "--out", tmp_path / "out",
                    "--examples", ex, check=False)
    one_line_error(r, "no LoRA modules given", "--lora")
