"""The four SQL bypasses of issue 12, each refused at read time or named by `log verify` (both, here)."""

from __future__ import annotations

import pytest
from release_helpers import Env
from sqlalchemy import insert, update

import dataward
from dataward.errors import AuthorizationError, Error, IntegrityError
from dataward.log.verify import verify_log
from dataward.release.versions import release
from dataward.store import schema
from dataward.store.catalog import write_transaction
from dataward.timeutil import now_iso


def _sql(env: Env, stmt: object) -> None:
    with write_transaction(env.ws.engine) as conn:
        conn.execute(stmt)  # type: ignore[call-overload]


def _named(env: Env, table: str, column: str | None = None) -> list[str]:
    lines = [p.line() for p in verify_log(env.ws, max_problems=10_000).problems]
    want = f"table {table}, row "
    return [x for x in lines if want in x and (column is None or f", column {column}:" in x)]


def test_unrevoke_by_sql_after_rollback_is_refused_and_named(world: tuple[Env, dict[str, str]]) -> None:
    env, ids = world
    drop = ids["drop"]
    _sql(env, update(schema.batches).where(schema.batches.c.id == drop).values(state="released"))
    for spec in ("train@1",):
        with pytest.raises(IntegrityError, match=f"batch {drop} of train@1 is revoked"):
            dataward.open(spec, workspace=env.ws, principal="tom")
        assert env.cli("export", spec, str(env.path / "out"), principal="tom") == IntegrityError.exit_code
        assert not (env.path / "out").exists()
    assert dataward.open("train@2", workspace=env.ws, principal="tom").num_rows == 2  # the good version still reads
    assert _named(env, "batches", "state")
    # hiding the rollback by deleting the newer version's rows does not bring the old version back as latest
    _sql(env, schema.version_batches.delete().where(schema.version_batches.c.number == 2))
    _sql(env, schema.dataset_versions.delete().where(schema.dataset_versions.c.number == 2))
    with pytest.raises(Exception, match="no version 2"):
        dataward.open("train@latest", workspace=env.ws, principal="tom")
    assert _named(env, "dataset_versions")


def test_role_grant_by_sql_grants_nothing_and_is_named(world: tuple[Env, dict[str, str]]) -> None:
    env, ids = world
    _sql(
        env,
        insert(schema.role_grants).values(principal="tom", role="approver", source=None, granted_at=now_iso()),
    )
    b = env.acquire("text,label\nnew,0\nrow,1\n")
    from dataward.workflow import approval

    with pytest.raises(AuthorizationError, match="tom may not"):
        approval.reject(env.ws, env.actor("tom"), b, reason="a trainer playing approver")
    with pytest.raises(AuthorizationError):
        release(env.ws, env.actor("tom"), "train", [ids["keep"]])
    assert _named(env, "role_grants")


def test_rejected_batch_set_to_approved_by_sql_is_refused_and_named(world: tuple[Env, dict[str, str]]) -> None:
    env, ids = world
    rejected = ids["rejected"]
    _sql(env, update(schema.batches).where(schema.batches.c.id == rejected).values(state="approved"))
    # refused (the catalog's own approval check or the log's state check, whichever comes first)
    with pytest.raises(Error, match=f"batch {rejected}"):
        release(env.ws, env.actor("alice"), "train", [rejected])
    from dataward.evidence.gates import require_cleared_for_release
    from dataward.workflow import approval_policy as policy

    with pytest.raises(IntegrityError, match=f"batch {rejected} is rejected according to the signed log"):
        require_cleared_for_release(env.ws, rejected, policy)
    assert _named(env, "batches", "state")


def test_edited_approval_policy_digest_is_named(world: tuple[Env, dict[str, str]]) -> None:
    env, ids = world
    _sql(env, update(schema.approvals).where(schema.approvals.c.batch_id == ids["keep"]).values(policy_digest="0" * 64))
    assert _named(env, "approvals", "policy_digest")
    # the gate never read it: the policy in force is pinned by digest in the log entry
    assert dataward.open("train@2", workspace=env.ws, principal="tom").num_rows == 2


def test_clean_world_verifies(world: tuple[Env, dict[str, str]]) -> None:
    env, _ids = world
    rep = verify_log(env.ws)
    assert rep.ok, [p.line() for p in rep.problems]


@pytest.mark.parametrize("column", ["entry", "signature", "leaf_hash"])
def test_log_verify_names_an_entry_whose_cell_was_rewritten_as_text(
    world: tuple[Env, dict[str, str]], column: str
) -> None:
    env = world[0]
    if env.ws.engine.dialect.name != "sqlite":
        # PostgreSQL refuses the edit itself (typed columns): that is the test there, not a skip
        from sqlalchemy import text

        from dataward.errors import CatalogError

        # the storage boundary translates the driver error (which stays chained)
        with pytest.raises(CatalogError) as refused, env.ws.engine.begin() as conn:
            conn.execute(text(f"UPDATE log_entries SET {column} = CAST('not bytes' AS TEXT) WHERE seq = 1"))
        assert refused.value.__cause__ is not None
        return
    from sqlalchemy import text

    with write_transaction(env.ws.engine) as conn:
        conn.execute(text(f"UPDATE log_entries SET {column} = CAST('rewritten' AS TEXT) WHERE seq = 3"))
    rep = verify_log(env.ws)
    assert not rep.ok and any(p.seq == 3 for p in rep.problems), [p.line() for p in rep.problems]
