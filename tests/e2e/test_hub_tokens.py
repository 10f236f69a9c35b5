"""`lorahub hub token revoke`: a revoked token is refused at once by a running server (401), other
tokens keep working, `--user` revokes all of a user's tokens, the token can come from stdin (so it
never shows in the process list), and mistakes (unknown token, wrong folder) are clean errors that
create nothing."""
import subprocess

import pytest

from conftest import assert_clean_error, lorahub_bin, run_lorahub
from hub_support import Hub, create_token, folder_files, make_adapter, raw_push


def test_revoked_tokens_are_refused_by_a_running_server(tmp_path):
    files = folder_files(make_adapter(tmp_path / "adapter"))
    with Hub(tmp_path / "hub") as hub:
        first, second = create_token(hub.root, "alice"), create_token(hub.root, "alice")
        assert raw_push(hub, "alice/a", files, token=first).status_code == 200

        out = run_lorahub("hub", "token", "revoke", "--root", hub.root, "--token", first).stdout
        assert out.strip() == "revoked 1 token"
        r = raw_push(hub, "alice/b", files, token=first)
        assert r.status_code == 401, r.text
        assert raw_push(hub, "alice/b", files, token=second).status_code == 200

        # From stdin, so the token is not an argument anyone can read in `ps`.
        proc = subprocess.run([lorahub_bin(), "hub", "token", "revoke", "--root", str(hub.root),
                               "--token", "-"], input=second + "\n", capture_output=True,
                              text=True, check=True)
        assert proc.stdout.strip() == "revoked 1 token"
        assert raw_push(hub, "alice/c", files, token=second).status_code == 401

        third, fourth = create_token(hub.root, "alice"), create_token(hub.root, "alice")
        bob = create_token(hub.root, "bob")
        out = run_lorahub("hub", "token", "revoke", "--root", hub.root, "--user", "alice").stdout
        assert out.strip() == "revoked 2 tokens of alice"
        for token in (third, fourth):
            assert raw_push(hub, "alice/d", files, token=token).status_code == 401
        assert raw_push(hub, "bob/a", files, token=bob).status_code == 200
        # Revisions pushed with a revoked token stay.
        assert hub.http.get("/api/models/alice/a").status_code == 200


@pytest.mark.malformed
def test_revoke_mistakes_are_clean_errors(tmp_path):
    root = tmp_path / "hub"
    create_token(root, "alice")
    proc = run_lorahub("hub", "token", "revoke", "--root", root, "--token", "lh_" + "0" * 48,
                       check=False)
    assert_clean_error(proc, "no such token")
    proc = run_lorahub("hub", "token", "revoke", "--root", root, "--user", "nobody", check=False)
    assert_clean_error(proc, "nobody", "no tokens")
    proc = run_lorahub("hub", "token", "revoke", "--root", root, check=False)
    assert_clean_error(proc, "--token or --user")
    proc = run_lorahub("hub", "token", "revoke", "--root", root, "--user", "../x", check=False)
    assert_clean_error(proc, "user name")
    proc = run_lorahub("hub", "token", "revoke", "--root", tmp_path / "typo", "--user", "alice",
                       check=False)
    assert_clean_error(proc, "not a hub folder")
    assert not (tmp_path / "typo").exists()
