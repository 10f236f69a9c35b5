"""The hub against the real Hugging Face stack: a module pushed with `lorahub hub push` is read
back by huggingface_hub (hf_hub_download, snapshot_download, list_repo_tree, model_info,
list_models) and loaded by PeftModel.from_pretrained, with outputs identical to loading the same
adapter from disk. Also: pull verification, immutable revisions, search filters."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import assert_clean_error, run_lorahub
from hub_support import (Hub, create_token, folder_files, hf_env, make_adapter, sha256)

HF_SCRIPT = textwrap.dedent(r"""
    import hashlib, json, os, sys
    import torch
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
    from peft import PeftModel
    from transformers import T5ForConditionalGeneration
    repo, first_sha, base_dir, local_adapter, bin_repo, bin_adapter = sys.argv[1:7]
    out = {}
    path = hf_hub_download(repo, "adapter_model.safetensors")
    out["download_sha256"] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    old = hf_hub_download(repo, "adapter_model.safetensors", revision=first_sha)
    out["old_sha256"] = hashlib.sha256(open(old, "rb").read()).hexdigest()
    snap = snapshot_download(repo)
    out["snapshot"] = {f: hashlib.sha256(open(os.path.join(snap, f), "rb").read()).hexdigest()
                       for f in sorted(os.listdir(snap))}
    api = HfApi()
    out["tree"] = sorted(f.path for f in api.list_repo_tree(repo, recursive=True))
    out["info_sha"] = api.model_info(repo).sha
    out["siblings"] = sorted(s.rfilename for s in api.model_info(repo, files_metadata=True).siblings)
    out["listed"] = [m.id for m in api.list_models(search=repo.split("/")[1])]
    for name, call in [("missing_file", lambda: hf_hub_download(repo, "nope.bin")),
                       ("missing_repo", lambda: hf_hub_download("nobody/nothing", "x.json")),
                       ("missing_rev", lambda: hf_hub_download(repo, "README.md", revision="f" * 40))]:
        try:
            call()
            out[name] = "no error"
        except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError) as e:
            out[name] = type(e).__name__
    torch.manual_seed(0)
    ids = torch.randint(2, 60, (2, 7))
    def run(adapter):
        base = T5ForConditionalGeneration.from_pretrained(base_dir)
        model = PeftModel.from_pretrained(base, adapter).eval()
        with torch.no_grad():
            return model(input_ids=ids, decoder_input_ids=ids[:, :4]).logits
    hub_logits, local_logits = run(repo), run(local_adapter)
    base_logits = T5ForConditionalGeneration.from_pretrained(base_dir).eval()(
        input_ids=ids, decoder_input_ids=ids[:, :4]).logits
    out["peft_max_diff"] = float((hub_logits - local_logits).abs().max())
    # A legacy torch adapter_model.bin module: PEFT finds no safetensors on the hub, falls back.
    out["bin_max_diff"] = float((run(bin_repo) - run(bin_adapter)).abs().max())
    out["adapter_effect"] = float((hub_logits - base_logits).abs().max())
    print(json.dumps(out))
""")


def make_peft_adapter(tmp_path, seed, safetensors=True):
    """A real tiny T5 and a PEFT LoRA adapter for it (lora_B randomized so it matters)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import T5Config, T5ForConditionalGeneration
    torch.manual_seed(seed)
    base_dir = tmp_path / "base"
    if not base_dir.exists():
        config = T5Config(vocab_size=64, d_model=16, d_kv=8, d_ff=32, num_layers=1,
                          num_decoder_layers=1, num_heads=2, decoder_start_token_id=0,
                          pad_token_id=0, eos_token_id=1)
        T5ForConditionalGeneration(config).save_pretrained(base_dir)
    model = T5ForConditionalGeneration.from_pretrained(base_dir)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q", "v"],
                                                  task_type="SEQ_2_SEQ_LM"))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_()
    adapter = tmp_path / f"adapter{seed}"
    peft_model.save_pretrained(adapter, safe_serialization=safetensors)
    return base_dir, adapter


def push(hub, folder, repo, token, *extra):
    out = run_lorahub("hub", "push", folder, "--repo", repo, "--endpoint", hub.url,
                      "--token", token, *extra).stdout.split()
    assert out[0] == repo and len(out[1]) == 40
    return out[1]


def test_huggingface_hub_and_peft_read_pushed_modules(tmp_path):
    base_dir, first = make_peft_adapter(tmp_path, seed=1)
    _, second = make_peft_adapter(tmp_path, seed=2)
    _, legacy = make_peft_adapter(tmp_path, seed=3, safetensors=False)
    assert (legacy / "adapter_model.bin").exists()
    with Hub(tmp_path / "hub", "--page-size", "2") as hub:  # small pages: Link pagination used
        token = create_token(hub.root, "alice")
        first_sha = push(hub, first, "alice/tiny-lora", token, "--task", "boolean_expressions")
        second_sha = push(hub, second, "alice/tiny-lora", token, "--tags", "bbh,t5")
        push(hub, legacy, "alice/tiny-lora-bin", token)
        assert first_sha != second_sha
        proc = subprocess.run([sys.executable, "-c", HF_SCRIPT, "alice/tiny-lora", first_sha,
                               str(base_dir), str(second), "alice/tiny-lora-bin", str(legacy)],
                              capture_output=True, text=True, timeout=600, env=hf_env(hub, tmp_path))
        assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    local = {k: sha256(v) for k, v in folder_files(second).items()}
    assert out["download_sha256"] == local["adapter_model.safetensors"]
    assert out["old_sha256"] == sha256((first / "adapter_model.safetensors").read_bytes())
    assert out["snapshot"] == local
    assert out["tree"] == sorted(local) == out["siblings"]
    assert out["info_sha"] == second_sha
    assert sorted(out["listed"]) == ["alice/tiny-lora", "alice/tiny-lora-bin"]
    assert out["missing_file"] == "RemoteEntryNotFoundError"
    assert out["missing_repo"] == "RepositoryNotFoundError"
    assert out["missing_rev"] == "RevisionNotFoundError"
    assert out["peft_max_diff"] == 0.0
    assert out["bin_max_diff"] == 0.0
    assert out["adapter_effect"] > 1e-3


def test_pull_verifies_every_file_and_revisions_are_immutable(tmp_path):
    a = make_adapter(tmp_path / "a", seed=1)
    b = make_adapter(tmp_path / "b", seed=2)
    with Hub(tmp_path / "hub") as hub:
        token = create_token(hub.root, "bob")
        sha_a = push(hub, a, "bob/mod", token)
        sha_b = push(hub, b, "bob/mod", token)
        for rev, folder in [(sha_a, a), (sha_b, b), ("main", b)]:
            to = tmp_path / f"pulled-{rev}"
            out = run_lorahub("hub", "pull", "bob/mod", "--rev", rev, "--to", to,
                              "--endpoint", hub.url).stdout.split()
            assert out[1] == (sha_b if rev == "main" else rev)
            assert folder_files(to) == folder_files(folder)
        # Only a pinned revision may be cached forever; main moves.
        pinned = hub.http.head(f"/bob/mod/resolve/{sha_a}/README.md").headers["Cache-Control"]
        moving = hub.http.head("/bob/mod/resolve/main/README.md").headers["Cache-Control"]
        assert "immutable" in pinned and moving == "no-cache"
        # Flip one byte of a stored blob: pull must notice and refuse.
        weights = sha256((b / "adapter_model.safetensors").read_bytes())
        blob = hub.root / "blobs" / weights[:2] / weights
        data = bytearray(blob.read_bytes())
        data[-1] ^= 0xFF
        blob.write_bytes(bytes(data))
        bad = run_lorahub("hub", "pull", "bob/mod", "--to", tmp_path / "bad", "--endpoint",
                          hub.url, check=False)
        assert_clean_error(bad, "adapter_model.safetensors", "SHA-256")


def test_search_filters_by_text_base_rank_and_tag(tmp_path):
    with Hub(tmp_path / "hub", "--page-size", "2") as hub:
        token = create_token(hub.root, "carol")
        specs = [("carol/logic-r4", 4, "base/one", "bbh,logic", "boolean_expressions"),
                 ("carol/logic-r8", 8, "base/one", "bbh", "formal_fallacies"),
                 ("carol/math-r8", 8, "base/two", "math", "multistep_arithmetic")]
        for i, (repo, rank, base, tags, task) in enumerate(specs):
            folder = make_adapter(tmp_path / repo, rank=rank, base=base, seed=i)
            push(hub, folder, repo, token, "--tags", tags, "--task", task,
                 "--description", f"module {i}")

        def search(*args):
            out = run_lorahub("hub", "search", "--endpoint", hub.url, *args).stdout
            return sorted(line.split("\t")[0] for line in out.splitlines())

        assert search() == ["carol/logic-r4", "carol/logic-r8", "carol/math-r8"]  # 2 pages
        assert search("--rank", "8") == ["carol/logic-r8", "carol/math-r8"]
        assert search("--tag", "bbh") == ["carol/logic-r4", "carol/logic-r8"]
        assert search("--base", "base/two") == ["carol/math-r8"]
        assert search("logic") == ["carol/logic-r4", "carol/logic-r8"]
        assert search("FALLACIES") == ["carol/logic-r8"]  # task text, case-insensitive
        assert search("--rank", "8", "--tag", "bbh") == ["carol/logic-r8"]
        assert search("100%") == []  # LIKE wildcards are literal
        listed = json.loads(run_lorahub("hub", "search", "--json", "--task", "formal_fallacies",
                                        "--endpoint", hub.url).stdout)
        assert [m["lorahub"]["rank"] for m in listed] == [8]
        assert listed[0]["lorahub"]["targets"] == ["q", "v"]
        assert listed[0]["lorahub"]["base_model"] == "base/one"
        assert listed[0]["lorahub"]["description"] == "module 1"
        assert hub.stop() == 0  # SIGTERM stops the server cleanly
