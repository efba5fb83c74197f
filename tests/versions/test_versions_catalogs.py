"""The release side end to end on each catalog backend (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from release_helpers import Env, make_env

import dataward
from dataward.lineage.queries import blast_radius
from dataward.lineage.runs import record_run
from dataward.log.verify import verify_log
from dataward.release.diff import diff_versions
from dataward.release.rollback import rollback
from dataward.release.versions import release, verify_version

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not


@pytest.fixture
def cat_env(tmp_path: Path, catalog_url: str) -> Iterator[Env]:
    e = make_env(tmp_path, catalog_url)
    yield e
    e.ws.engine.dispose()


def test_release_read_rollback_and_lineage(cat_env: Env) -> None:
    env = cat_env
    clean, bad = env.approved("t\nclean\n"), env.approved("t\nbad\n", source="web")
    alice = env.actor("alice")
    release(env.ws, alice, "train", [clean, bad])
    assert sorted(dataward.open("train@1", workspace=env.ws, principal="tom").column("t").to_pylist()) == [
        "bad",
        "clean",
    ]
    model = env.path / "m.bin"
    model.write_bytes(b"m")
    run = record_run(env.ws, env.actor("tom"), "train@1", [model])
    assert blast_radius(env.ws, "web")["models"][0]["runs"] == [run.id]
    v2, revoked = rollback(env.ws, alice, "train", without=["web"])
    assert revoked == [bad] and verify_version(env.ws, v2.spec).ok
    d = diff_versions(env.ws, "train@1", "train@2")
    assert [r.digest for r in d.removed] == [hashlib.sha256(b"\x00bad").hexdigest()]
    with pytest.raises(dataward.IntegrityError, match="revoked"):
        dataward.open("train@1", workspace=env.ws, principal="tom")
    assert verify_log(env.ws).ok
