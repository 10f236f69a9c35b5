"""The CLI as a new user meets it: an option error is one line `lorahub: error: ...` and exit 1
(not CLI11's two lines and its own exit codes, nor a 300-digit range), invalid JSON names the file
and the line, and --sample beyond the pool says so; missing and truncated model files, values out
of range (named by their own flag), bad token ids and hub client errors are one line too. Only
tokenize's check reads a model (the SmolLM2 GGUF's tokenizer)."""
import json

import pytest

from conftest import BBH_DIR, ROOT, assert_clean_error, run_lorahub, smollm2_gguf

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


def truncated_gguf(path):
    """A GGUF header (magic, version 3) that promises 272 tensors and 33 metadata entries, then
    ends: what a cut download leaves."""
    path.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + (272).to_bytes(8, "little")
                     + (33).to_bytes(8, "little"))
    return path


def test_bad_model_paths_are_one_line(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"input": "a", "output": "b"}\n')
    missing = tmp_path / "no-model"
    r = run_lorahub("score", "--model", missing, "--data", data, check=False)
    one_line_error(r, str(missing), "no such file or directory", paths=[missing])
    cut = truncated_gguf(tmp_path / "cut.gguf")
    for args in (["score", "--model", cut, "--data", data], ["inspect", cut],
                 ["convert", cut, tmp_path / "out"]):
        one_line_error(run_lorahub(*args, check=False), str(cut), "more than the file holds",
                       paths=[cut, tmp_path])


def test_bad_values_name_their_own_flag(tmp_path):
    """A value out of range is blamed on its flag, not on the method or a neighbour."""
    modules = [ROOT / "library" / "smollm2" / m for m in ("parity", "sort_words")]
    compose = ["compose", "--lora", *modules, "--weights", "1,2", "--out", tmp_path / "c"]
    for extra, flag in [(["--method", "ties", "--density", "1.5"], "--density"),
                        (["--method", "ties", "--density", "-0.5"], "--density"),  # not "absent"
                        (["--method", "ties"], "--method"),  # the method needs a density
                        (["--method", "ties_svd", "--density", "0.5", "--svd-rank", "-2"],
                         "--svd-rank"),
                        (["--method", "ties_svd", "--density", "0.5", "--svd-clamp", "3"],
                         "--svd-clamp")]:
        r = run_lorahub(*compose, *extra, check=False)
        one_line_error(r, flag, paths=modules + [tmp_path])
        assert r.stderr.startswith(f"lorahub: error: {flag}"), (extra, r.stderr)
    (tmp_path / "pool.txt").write_text("".join(f"{m}\n" for m in modules))
    bbh = ["bbh", "--model", tmp_path / "m.gguf", "--lora-list", tmp_path / "pool.txt",
           "--out", tmp_path / "bbh"]
    r = run_lorahub(*bbh, "--data-dir", tmp_path / "no-bbh", check=False)
    one_line_error(r, "--data-dir", "no tasks/ folder", paths=[tmp_path] * 4)
    r = run_lorahub(*bbh, "--data-dir", BBH_DIR, "--density", "5", check=False)
    one_line_error(r, "--density", paths=[tmp_path] * 3)


def test_tokenize_decode_names_the_bad_id(tmp_path):
    for line, fragment in [('[1, "a"]', '"a" is not a token id'),
                           ("[1, 18446744073709551615]", "is not a token id"),
                           ("{}", "expected an array of token ids"),
                           ("[1,", "stdin line 1: not JSON: parse error")]:
        r = run_lorahub("tokenize", "--model", smollm2_gguf(), "--decode", input=line + "\n",
                        check=False)
        one_line_error(r, fragment, paths=[smollm2_gguf()])
        assert "json.exception" not in r.stderr


def test_hub_client_errors_before_and_without_a_hub(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    # The folder is checked before anything goes over the network (no hub listens on port 1).
    r = run_lorahub("hub", "push", not_a_folder, "--repo", "a/b", "--token", "t", "--endpoint",
                    "http://127.0.0.1:1", check=False)
    one_line_error(r, f"{not_a_folder}: not a folder", paths=[not_a_folder])
    r = run_lorahub("hub", "search", "--endpoint", "http://127.0.0.1:1", check=False)
    one_line_error(r, "http://127.0.0.1:1", "cannot connect")
