"""`lorahub learn --hub URL`: LoraHub composes modules straight from a hub. Modules pushed with
our client are pulled into a local cache (by revision) and give exactly the weights that the
same modules give from local folders."""
from pathlib import Path

import pytest

from conftest import assert_clean_error, run_lorahub
from hub_learn_support import learn, learn_fixture
from hub_support import Hub, create_token

fx = learn_fixture("hub_learn")


def test_learn_composes_modules_from_the_hub(fx, tmp_path):
    cache = tmp_path / "cache"
    with Hub(tmp_path / "hub") as hub:
        token = create_token(hub.root, "lib")
        pushed = {}
        for i, module in enumerate(fx["modules"]):
            tags = "pool,t5" if i < 3 else "other"  # the filter must leave the last one out
            out = run_lorahub("hub", "push", module, "--repo", f"lib/module{i}", "--tags", tags,
                              "--task", f"task{i}", "--endpoint", hub.url, "--token", token)
            repo, sha = out.stdout.split()
            pushed[repo] = (sha, module)
        from_hub = learn(fx, tmp_path / "out-hub", "--hub", hub.url, "--hub-filter", "tag=pool",
                         "--hub-cache", cache)
        sampled = learn(fx, tmp_path / "out-sampled", "--hub", hub.url, "--hub-filter",
                        "tag=pool,rank=4", "--hub-cache", cache, "--sample", 2)

    # Each module came from the cache folder <user>/<name>/<revision>; map back to the originals.
    local = []
    for path in from_hub["modules"]:
        rel = Path(path).relative_to(cache)
        repo, sha = f"{rel.parts[0]}/{rel.parts[1]}", rel.parts[2]
        assert pushed[repo][0] == sha
        local.append(pushed[repo][1])
    assert sorted(str(m) for m in local) == sorted(str(m) for m in fx["modules"][:3])
    from_disk = learn(fx, tmp_path / "out-disk", "--lora", *local)
    assert from_hub["weights"] == from_disk["weights"]
    assert from_hub["objective"] == from_disk["objective"]
    assert len(sampled["modules"]) == 2 and set(sampled["modules"]) <= set(from_hub["modules"])
    # The cache holds the three revisions and nothing half-pulled.
    cached = sorted(p.relative_to(cache).as_posix() for p in cache.glob("*/*/*"))
    assert cached == sorted(f"{repo}/{sha}" for repo, (sha, _) in pushed.items()
                            if repo != "lib/module3")


@pytest.mark.malformed
def test_learn_hub_errors_are_clean(fx, tmp_path):
    base = ["learn", "--model", fx["model"], "--examples", fx["examples"], "--out",
            tmp_path / "out", "--hub-cache", tmp_path / "cache"]
    with Hub(tmp_path / "hub") as hub:
        bad_key = run_lorahub(*base, "--hub", hub.url, "--hub-filter", "colour=red", check=False)
        assert_clean_error(bad_key, "colour")
        empty = run_lorahub(*base, "--hub", hub.url, "--hub-filter", "tag=none", check=False)
        assert_clean_error(empty, "no module matches")
        url = hub.url
    gone = run_lorahub(*base, "--hub", url, check=False, timeout=120)
    assert_clean_error(gone, "api/models")
    assert not (tmp_path / "out").exists()
