"""`dataward log replay`: the catalog projection rebuilt from the signed log after SQL tampering."""

from __future__ import annotations

import json

import pytest
from release_helpers import Env
from sqlalchemy import insert, select, update

import dataward
from dataward.errors import AuthorizationError, IntegrityError
from dataward.log.query import show_entries
from dataward.log.rebuild import rebuild_projection
from dataward.log.verify import verify_log
from dataward.store import _schema as schema
from dataward.store.catalog import write_transaction
from dataward.timeutil import now_iso

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not


def _sql(env: Env, *stmts: object) -> None:
    with write_transaction(env.ws.engine) as conn:
        for s in stmts:
            conn.execute(s)  # type: ignore[call-overload]


def _replay(env: Env, *args: str, principal: str | None = "admin") -> tuple[int, str]:
    """`dataward log replay ARGS` through the real entry point: (exit status, stdout)."""
    import contextlib
    import io

    from dataward.cli import main

    pre = ["-w", str(env.ws.path)] + (["--as", principal] if principal else [])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*pre, "log", "replay", *args])
    return code, out.getvalue()


def _projection_problems(env: Env) -> list[str]:
    return [p.line() for p in verify_log(env.ws, max_problems=10_000).problems]


def test_replay_restores_tampered_cells_rows_and_inserts(world: tuple[Env, dict[str, str]]) -> None:
    env, ids = world
    drop, rejected = ids["drop"], ids["rejected"]
    b, g = schema.batches, schema.role_grants
    _sql(
        env,
        update(b).where(b.c.id == drop).values(state="released"),  # un-revoke
        update(b).where(b.c.id == rejected).values(state="approved"),
        update(schema.approvals).where(schema.approvals.c.batch_id == ids["keep"]).values(policy_digest="0" * 64),
        insert(g).values(principal="tom", role="approver", source=None, granted_at=now_iso()),  # forged grant
        g.delete().where(g.c.principal == "sam"),  # a deleted grant
        update(schema.keys).where(schema.keys.c.principal == "tom").values(status="revoked", public_key="ab" * 32),
    )
    before = _projection_problems(env)
    assert any("table batches, row " + drop in x for x in before)
    assert verify_log(env.ws).ok is False
    size = len(show_entries(env.ws, limit=100_000))

    # the dry run names every divergence, exits 1 and changes nothing
    code, out = _replay(env, "--check", principal=None)
    assert code == 1, out
    for needle in (
        f"row {drop}, column state",
        f"row {rejected}, column state",
        "table role_grants, row tom/approver",
        "table role_grants, row sam/screener",
        "column policy_digest",
        "column public_key",
    ):
        assert needle in out, (needle, out)
    assert _projection_problems(env) == before
    assert len(show_entries(env.ws, limit=100_000)) == size

    code, out = _replay(env)
    assert code == 0, out
    assert verify_log(env.ws).ok, _projection_problems(env)
    with env.ws.engine.connect() as conn:
        assert conn.execute(select(b.c.state).where(b.c.id == drop)).scalar() == "revoked"
        assert conn.execute(select(b.c.state).where(b.c.id == rejected)).scalar() == "rejected"
        assert conn.execute(select(g.c.id).where(g.c.principal == "tom", g.c.role == "approver")).first() is None
        assert conn.execute(select(g.c.id).where(g.c.principal == "sam", g.c.role == "screener")).first() is not None
    # logged, signed by the admin, with what it changed
    last = show_entries(env.ws, action="log.replay", limit=1)[0]
    assert last.principal == "admin" and last.details["repaired"] >= 6 and last.details["unrestorable"] == 0
    # tom's key row was restored: tom can act again
    assert dataward.open("train@2", workspace=env.ws, principal="tom").num_rows == 2

    # idempotent: a second run finds nothing and changes nothing
    code, out = _replay(env, "--json")
    assert code == 0, out
    again = json.loads(out)
    assert again["repairs"] == [] and again["rows_changed"] == 0
    assert _replay(env, "--check", principal=None)[0] == 0


def test_replay_deletes_a_forged_batch_with_its_files(world: tuple[Env, dict[str, str]]) -> None:
    env, ids = world
    with env.ws.engine.connect() as conn:
        row = dict(conn.execute(select(schema.batches).where(schema.batches.c.id == ids["keep"])).one()._mapping)
        files = [
            dict(r._mapping)
            for r in conn.execute(select(schema.batch_files).where(schema.batch_files.c.batch_id == ids["keep"]))
        ]
    forged = "f" * 32
    _sql(
        env,
        insert(schema.batches).values({**row, "id": forged, "state": "approved"}),
        *[insert(schema.batch_files).values({**f, "batch_id": forged}) for f in files],
    )
    rebuild_projection(env.ws, env.actor("admin"))
    with env.ws.engine.connect() as conn:
        assert conn.execute(select(schema.batches.c.id).where(schema.batches.c.id == forged)).first() is None
        assert conn.execute(select(schema.batch_files).where(schema.batch_files.c.batch_id == forged)).first() is None
    assert verify_log(env.ws).ok


def test_replay_needs_an_admin_and_a_log_that_verifies(world: tuple[Env, dict[str, str]]) -> None:
    env, ids = world
    _sql(env, update(schema.batches).where(schema.batches.c.id == ids["drop"]).values(state="released"))
    with pytest.raises(AuthorizationError):
        rebuild_projection(env.ws, env.actor("tom"))
    assert _replay(env, principal="tom")[0] == AuthorizationError.exit_code
    # a forged log entry: rebuilding from that log would side with the forger
    t = schema.log_entries
    with env.ws.engine.connect() as conn:
        seq, body = conn.execute(select(t.c.seq, t.c.entry).where(t.c.action == "dataset.rollback")).one()
    _sql(env, update(t).where(t.c.seq == seq).values(entry=bytes(body).replace(b"poisoned", b"harmless")))
    with pytest.raises(IntegrityError, match="the audit log itself fails verification"):
        rebuild_projection(env.ws, env.actor("admin"))
    assert _replay(env, "--check", principal=None)[0] == IntegrityError.exit_code
    with env.ws.engine.connect() as conn:
        assert conn.execute(select(schema.batches.c.state).where(schema.batches.c.id == ids["drop"])).scalar() == (
            "released"
        )
