"""The installed C++ package: `cmake --install` the build tree into a fresh prefix, build
examples/cpp (an out-of-tree project with find_package(lorahub)) against it, run it on a tiny
random T5 and PEFT modules made here, and check that it scores and generates what the CLI does
with the same composition (`lorahub score` / `generate --lora ... --weights ...`)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, build_tree_lock, lorahub_bin, run_lorahub
from hub_support import Hub, create_token

sys.path.insert(0, str(ROOT / "tests" / "parity"))
from lorahub_tiny import make_modules  # noqa: E402
from t5_tiny import bbh_prompts, make_t5, train_spm, write_jsonl  # noqa: E402

WEIGHTS = "0.6,-0.4,0.3"


def run(cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example program, built against a fresh install of the build tree."""
    root = tmp_path_factory.mktemp("package")
    build = Path(lorahub_bin()).parent.parent
    prefix = root / "prefix"
    with build_tree_lock(build):  # not while a pip wheel of the extension reconfigures it
        run(["cmake", "--install", build, "--prefix", prefix])
    headers = sorted(p.name for p in (prefix / "include" / "lorahub").iterdir())
    # check.h: fail/check over {fmt}, for programs that use {fmt} too (lorahub.h needs only std).
    assert headers == ["bbh.h", "check.h", "error.h", "hub.h", "learn.h", "lorahub.h", "serve.h"]
    for h in headers:  # the installed headers stand on their own
        text = (prefix / "include" / "lorahub" / h).read_text()
        assert '#include "' not in text.replace('#include "lorahub/', "")
    out = root / "example"
    flags = []
    if "LORAHUB_SANITIZE:BOOL=ON" in (build / "CMakeCache.txt").read_text():
        # A sanitized library loads only into a sanitized program (the malformed tests' run).
        sanitize = "-fsanitize=address,undefined"
        flags = [f"-DCMAKE_CXX_FLAGS={sanitize}", f"-DCMAKE_EXE_LINKER_FLAGS={sanitize}"]
    run(["cmake", "-S", ROOT / "examples" / "cpp", "-B", out, f"-DCMAKE_PREFIX_PATH={prefix}",
         *flags] + (["-G", "Ninja"] if shutil.which("ninja") else []))
    run(["cmake", "--build", out])
    return out / "compose_and_generate"


@pytest.fixture(scope="module")
def tiny(bbh_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    model = make_t5("v1.1", train_spm(bbh_dir, root), root / "t5")
    modules = make_modules(model, root, 3, scale=0.5)
    rows = [(p.replace("\n", " "), t) for p, t in bbh_prompts(bbh_dir, per_task=1)[:4]]
    (root / "inputs.txt").write_text("".join(p + "\n" for p, _ in rows))
    (root / "outputs.txt").write_text("".join(t + "\n" for _, t in rows))
    write_jsonl(root / "rows.jsonl", [{"input": p, "output": t} for p, t in rows])
    return {"root": root, "model": model, "modules": modules, "rows": rows}


def test_example_links_the_installed_package_and_matches_the_cli(example, tiny):
    root = tiny["root"]
    proc = run([example, tiny["model"], WEIGHTS, root / "inputs.txt", root / "outputs.txt",
                *tiny["modules"]])
    lines = [json.loads(l) for l in proc.stdout.splitlines()]
    n = len(tiny["rows"])
    scores, texts, version = lines[:n], lines[n:2 * n], lines[2 * n]
    assert version["version"] == run([lorahub_bin(), "--version"]).stdout.split()[1]

    lora = ["--lora", *tiny["modules"], "--weights", WEIGHTS]
    cli = run_lorahub("score", "--model", tiny["model"], *lora, "--data", root / "rows.jsonl",
                      "--json").json()
    for ours, theirs in zip(scores, cli["examples"]):
        assert ours["tokens"] == theirs["tokens"]
        # The CLI merges the composition into the weights, the session runs it as a side path.
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-4)
    gen = run_lorahub("generate", "--model", tiny["model"], *lora, "--data", root / "rows.jsonl",
                      "--max-new-tokens", 8, "--json").json()
    assert [t["text"] for t in texts] == gen["predictions"]
    # The composition matters: the base model scores differently.
    base = run_lorahub("score", "--model", tiny["model"], "--data", root / "rows.jsonl",
                       "--json").json()
    assert base["examples"][0]["loss"] != pytest.approx(scores[0]["loss"], rel=1e-3)


def test_module_ids_come_from_the_hub(example, tiny, tmp_path):
    """Names that are not local folders are hub ids (LORAHUB_ENDPOINT), pulled into the cache
    once: the same composition as from the folders."""
    root = tiny["root"]
    args = [WEIGHTS, root / "inputs.txt", root / "outputs.txt"]
    local = run([example, tiny["model"], *args, *tiny["modules"]]).stdout
    with Hub(tmp_path / "hub") as hub:
        token = create_token(hub.root, "cpp")
        ids = []
        for i, module in enumerate(tiny["modules"]):
            run_lorahub("hub", "push", module, "--repo", f"cpp/module{i}", "--endpoint", hub.url,
                        "--token", token)
            ids.append(f"cpp/module{i}")
        env = {**os.environ, "LORAHUB_ENDPOINT": hub.url, "LORAHUB_CACHE": str(tmp_path / "cache")}
        assert run([example, tiny["model"], *args, *ids], env=env).stdout == local
        assert len(list((tmp_path / "cache" / "cpp").iterdir())) == 3
        env.pop("LORAHUB_ENDPOINT")
        proc = subprocess.run([str(c) for c in [example, tiny["model"], *args, *ids]],
                              capture_output=True, text=True, timeout=120, env=env)
        assert proc.returncode == 1 and "LORAHUB_ENDPOINT" in proc.stderr, proc.stderr


@pytest.mark.malformed
def test_example_reports_library_errors(example, tiny, tmp_path):
    proc = subprocess.run([str(example), str(tiny["model"]), "1,2", str(tiny["root"] / "inputs.txt"),
                           str(tiny["root"] / "outputs.txt"), *map(str, tiny["modules"])],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "2 weights for 3 modules" in proc.stderr
    proc = subprocess.run([str(example), str(tiny["model"]), "0.6,x,0.3", str(tiny["root"] / "inputs.txt"),
                           str(tiny["root"] / "outputs.txt"), *map(str, tiny["modules"])],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1  # a message, not std::terminate's abort
    assert "compose_and_generate: error: weight 'x' of '0.6,x,0.3' is not a number" in proc.stderr
    # The example's own check (lorahub/check.h, {fmt} from the installed package's dependency).
    missing = tmp_path / "no-inputs.txt"
    proc = subprocess.run([str(example), str(tiny["model"]), WEIGHTS, str(missing),
                           str(tiny["root"] / "outputs.txt"), *map(str, tiny["modules"])],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert f"compose_and_generate: error: {missing}: cannot open" in proc.stderr, proc.stderr
