"""API tokens: made once (only a hash stored), listed, revoked; who may make and revoke whose; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from copilot.cli import main
from copilot.config import Settings
from copilot.errors import NotFoundError, PermissionDenied, UserError
from copilot.queue import tables
from copilot.queue.db import reading
from copilot.queue.store import ReviewQueue, open_queue
from copilot.queue.users import hash_token


@pytest.fixture
def queue(tmp_path: Path) -> ReviewQueue:
    q = open_queue(Settings(data_dir=tmp_path))
    q.add_user("ann", "admin")
    q.add_user("bob", "agent", by="ann")
    q.add_user("cy", "reviewer", by="ann")
    return q


def test_a_token_is_stored_only_as_its_hash_and_authenticates_its_user(queue: ReviewQueue) -> None:
    token, secret = queue.create_token("bob", label="ci")
    assert secret.startswith("cpt_") and len(secret) > 40
    with reading(queue.engine) as conn:
        stored = conn.execute(select(tables.api_tokens)).mappings().one()
    assert stored["token_hash"] == hash_token(secret) and secret not in str(dict(stored))
    found = queue.authenticate_token(secret)
    assert found is not None and (found.user, found.role, found.label) == ("bob", "agent", "ci")
    [listed] = queue.list_tokens()
    assert listed.last_used_at is not None  # its use is noted
    assert queue.authenticate_token(secret + "x") is None and queue.authenticate_token("") is None
    assert token.created_by == "bob"


def test_only_an_admin_makes_tokens_for_others(queue: ReviewQueue) -> None:
    with pytest.raises(PermissionDenied, match="users needs admin"):
        queue.create_token("bob", by="cy")
    made, _ = queue.create_token("bob", by="ann")
    assert made.created_by == "ann"
    with pytest.raises(UserError, match="unknown user 'zed'"):
        queue.create_token("zed", by="ann")


def test_revoking_ends_a_token_and_only_its_owner_or_an_admin_may(queue: ReviewQueue) -> None:
    token, secret = queue.create_token("cy")
    with pytest.raises(PermissionDenied):
        queue.revoke_token(token.id, by="bob")  # not bob's, and bob is no admin
    revoked = queue.revoke_token(token.id, by="cy")
    assert not revoked.active and queue.authenticate_token(secret) is None
    assert queue.revoke_token(token.id, by="ann").revoked_at == revoked.revoked_at  # once
    with pytest.raises(NotFoundError):
        queue.revoke_token(999, by="ann")
    assert [t.id for t in queue.list_tokens("cy")] == [token.id] and queue.list_tokens("bob") == []


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COPILOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COPILOT_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.delenv("COPILOT_DATABASE_URL", raising=False)
    with open_queue(Settings(data_dir=tmp_path)) as q:
        q.add_user("ann", "admin")
        q.add_user("bob", "agent", by="ann")
    return tmp_path


def test_cli_token_tokens_and_revoke_token(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["users", "token", "bob", "--label", "zapier"]) == 0
    out, err = capsys.readouterr()
    secret = out.strip()
    assert secret.startswith("cpt_") and "shown only now" in err
    assert main(["users", "token", "ann", "--by", "bob"]) == 1
    assert "bob is an agent; users needs admin" in capsys.readouterr().err
    assert main(["users", "token", "bob", "--by", "ann", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["user"] == "bob" and second["created_by"] == "ann" and second["token"].startswith("cpt_")

    assert main(["users", "tokens"]) == 0
    listed = capsys.readouterr().out
    assert "zapier" in listed and secret not in listed and listed.count("active") == 2
    assert main(["users", "revoke-token", "1"]) == 0
    assert "API token 1 of bob revoked" in capsys.readouterr().out
    assert main(["users", "tokens", "--json", "--user", "bob"]) == 0
    assert [t["active"] for t in json.loads(capsys.readouterr().out)] == [False, True]
    with open_queue(Settings(data_dir=data_dir)) as q:
        assert q.authenticate_token(secret) is None
        assert q.authenticate_token(second["token"]) is not None
    assert main(["users", "revoke-token", "99"]) == 1
    assert "no API token 99" in capsys.readouterr().err
