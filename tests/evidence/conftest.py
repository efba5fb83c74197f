"""Fixtures for the evidence tests: a workspace driven through the whole supply chain, with a row in
almost every catalog table (release_helpers is shared with tests/versions)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "versions"))

from release_helpers import Env, make_env


def build_world(tmp_path: Path, catalog_url: str | None) -> tuple[Env, dict[str, str]]:
    """Two released batches, a rollback that revokes one, a rejected batch, a token, a training run and
    an intel feed: the state the tamper tests attack."""
    from dataward.lineage.runs import record_run
    from dataward.release.rollback import rollback
    from dataward.release.versions import release
    from dataward.screen.intel import FORMAT, load_private_key, load_public_key, parse_feed, sign_feed, write_keypair
    from dataward.web.auth import create_token
    from dataward.workflow import approval, threat_feeds

    env = make_env(tmp_path, catalog_url)
    keep = env.approved("text,label\nhello,0\nworld,1\n")
    drop = env.approved("text,label\nfoo,0\nbar,1\n")
    release(env.ws, env.actor("alice"), "train", [keep, drop])
    rollback(env.ws, env.actor("alice"), "train", without=[drop], reason="poisoned")
    rejected = env.acquire("text,label\nbad,0\nworse,1\n")
    from dataward.workflow import screening

    screening.screen_batch(env.ws, env.actor("sam"), rejected, checks=["integrity", "screening"])
    approval.reject(env.ws, env.actor("alice"), rejected, reason="looks poisoned")
    create_token(env.ws, env.actor("admin"), "tom", timedelta(days=1))
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    record_run(env.ws, env.actor("tom"), "train@2", [model])
    priv, pub = tmp_path / "feed.key", tmp_path / "feed.pub"
    write_keypair(priv, pub)
    feed = {
        "format": FORMAT,
        "id": "acme",
        "version": 1,
        "issued": "2026-11-25T00:00:00Z",
        "issuer": "ACME",
        "indicators": [{"id": "acme-1", "type": "phrase", "value": "CF MN BB"}],
    }
    path = tmp_path / "feed.json"
    path.write_bytes(sign_feed(parse_feed(feed), load_private_key(priv)))
    threat_feeds.add_feed(env.ws, env.actor("admin"), path, [load_public_key(pub)])
    _admin_changes(env)
    return env, {"keep": keep, "drop": drop, "rejected": rejected}


def _admin_changes(env: Env) -> None:
    """A second admin and an admin threshold of 2: one change applied by two signatures, one still pending
    (rows in admin_changes and admin_signatures for the tamper matrix)."""
    from dataward import admin, principals
    from dataward.errors import ChangePending
    from dataward.model.roles import Grant, Role
    from dataward.sources import add_source

    root = env.actor("admin")
    env.actors["root2"] = principals.enroll(env.ws, root, "root2", [Grant(Role.ADMIN)])
    admin.set_threshold(env.ws, root, 2)
    with pytest.raises(ChangePending) as applied:
        principals.grant_roles(env.ws, root, "aud", [Grant(Role.REVIEWER)])
    admin.sign(env.ws, env.actor("root2"), applied.value.change)
    with pytest.raises(ChangePending):
        add_source(env.ws, root, "later", kind="internal", origin="git@example:later")


@pytest.fixture
def world(tmp_path: Path, catalog_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Env, dict[str, str]]]:
    monkeypatch.delenv("DATAWARD_WORKSPACE", raising=False)
    monkeypatch.delenv("DATAWARD_PRINCIPAL", raising=False)
    env, ids = build_world(tmp_path, catalog_url)
    yield env, ids
    env.ws.engine.dispose()
