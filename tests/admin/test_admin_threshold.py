"""Admin changes under a k-of-n admin threshold (TUF root style): pending changes, admin signatures, and the
replay that recounts them from the signed log (a stolen admin key, a forged entry or an SQL edit grants
nothing and is named by ``log verify``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from dataward import admin, principals
from dataward.errors import AuthorizationError, ChangePending, ConflictError
from dataward.evidence.load import trusted_state
from dataward.evidence.replay import TrustedState
from dataward.identity import Actor
from dataward.log import auditlog
from dataward.log.verify import verify_log
from dataward.model.keys import PublicKey
from dataward.model.roles import Grant, Role
from dataward.store import schema
from dataward.store.catalog import write_transaction
from dataward.store.keyring import FileKeyring
from dataward.timeutil import now_iso
from dataward.workspace import Workspace


@dataclass
class Trio:
    ws: Workspace
    ring: FileKeyring
    ada: Actor
    bob: Actor
    carol: Actor

    def problems(self) -> list[str]:
        return [p.line() for p in verify_log(self.ws, max_problems=1000).problems]

    def new_key(self, name: str) -> PublicKey:
        return self.ring.generate(name, None)[1]


@pytest.fixture
def trio(tmp_path: Path, catalog_url: str) -> Iterator[Trio]:
    """Three admins (ada, bob, carol) under an admin threshold of 2 (SQLite, and PostgreSQL when available)."""
    ring = FileKeyring(tmp_path / "ring")
    ws = Workspace.init(tmp_path / "ws", admin="ada", keyring=ring, admin_threshold=2, catalog=catalog_url)
    ada = ws.actor("ada", keyring=ring)
    # one admin: the threshold cannot exceed the admins there are, so ada alone adds the second
    bob = principals.enroll(ws, ada, "bob", [Grant(Role.ADMIN)], keyring=ring)
    with pytest.raises(ChangePending) as pending:
        principals.enroll(ws, ada, "carol", [Grant(Role.ADMIN)], keyring=ring)
    assert pending.value.signatures == 1 and pending.value.required == 2
    assert admin.sign(ws, bob, pending.value.change)["applied"]
    carol = ws.actor("carol", keyring=ring)
    t = Trio(ws, ring, ada, bob, carol)
    assert trusted_state(ws).admins() == {"ada", "bob", "carol"}
    assert not t.problems()
    yield t
    ws.engine.dispose()


def _roles(ws: Workspace, name: str) -> set[str]:
    return {g.role.value for g in trusted_state(ws).grants_of(name)}


def _pending(fn: Any) -> ChangePending:
    with pytest.raises(ChangePending) as e:
        fn()
    return e.value


# --- each admin change waits for the K-th signature, then applies exactly as proposed -------------------------


def _policy_text() -> str:
    from dataward.workflow.approval_policy import default_policy_text

    return default_policy_text().replace("approvals = 2", "approvals = 3", 1)


def _add_feed(t: Trio) -> Any:
    from dataward.screen.intel import FORMAT, load_private_key, load_public_key, parse_feed, sign_feed, write_keypair
    from dataward.workflow import threat_feeds

    d = t.ws.path.parent
    write_keypair(d / "feed.key", d / "feed.pub")
    feed = {
        "format": FORMAT,
        "id": "acme",
        "version": 1,
        "issued": "2026-11-25T00:00:00Z",
        "issuer": "ACME",
        "indicators": [{"id": "acme-1", "type": "phrase", "value": "CF MN BB"}],
    }
    (d / "feed.json").write_bytes(sign_feed(parse_feed(feed), load_private_key(d / "feed.key")))
    return threat_feeds.add_feed(t.ws, t.ada, d / "feed.json", [load_public_key(d / "feed.pub")])


def _feeds(t: Trio) -> list[Any]:
    from dataward.workflow import threat_feeds

    return threat_feeds.list_feeds(t.ws)


CHANGES: dict[str, Any] = {
    "intel.add": (_add_feed, lambda t: [f.feed_id for f in _feeds(t)] == ["acme"]),
    "principal.add": (
        lambda t: principals.add_principal(t.ws, t.ada, "eve", [Grant(Role.APPROVER)], t.new_key("eve")),
        lambda t: _roles(t.ws, "eve") == {"approver"},
    ),
    "role.grant": (
        lambda t: principals.grant_roles(t.ws, t.ada, "bob", [Grant(Role.AUDITOR)]),
        lambda t: "auditor" in _roles(t.ws, "bob"),
    ),
    "role.revoke": (
        lambda t: principals.revoke_roles(t.ws, t.ada, "carol", [Grant(Role.ADMIN)]),
        lambda t: "admin" not in _roles(t.ws, "carol"),
    ),
    "key.add": (
        lambda t: principals.add_key(t.ws, t.ada, "svc", t.new_key("svc"), expires_days=30),
        lambda t: any(k.principal == "svc" for k in trusted_state(t.ws).keys.values()),
    ),
    "key.rotate": (
        lambda t: principals.rotate_key(t.ws, t.ada, "carol", t.new_key("carol")),
        lambda t: trusted_state(t.ws).keys[t.carol.keyid].retired_at is not None,
    ),
    "key.revoke": (
        lambda t: principals.revoke_key(t.ws, t.ada, t.carol.keyid[:12], reason="laptop lost"),
        lambda t: trusted_state(t.ws).keys[t.carol.keyid].revoked_at is not None,
    ),
    "source.add": (
        lambda t: __import__("dataward.sources", fromlist=["add_source"]).add_source(
            t.ws, t.ada, "vendor", kind="third-party", origin="https://vendor.example", license="MIT"
        ),
        lambda t: "vendor" in trusted_state(t.ws).sources,
    ),
    "policy.set": (
        lambda t: __import__("dataward.workflow.approval_policy", fromlist=["set_policy"]).set_policy(
            t.ws, t.ada, _policy_text(), where="stricter.toml"
        ),
        lambda t: (t.ws.path / "policy.toml").is_file() and len(trusted_state(t.ws).policies) == 1,
    ),
    "admin.threshold": (
        lambda t: admin.set_threshold(t.ws, t.ada, 3),
        lambda t: trusted_state(t.ws).admin_threshold == 3,
    ),
}


@pytest.mark.parametrize("action", sorted(CHANGES))
def test_each_admin_change_waits_for_a_second_admin(trio: Trio, action: str) -> None:
    propose, applied = CHANGES[action]
    p = _pending(lambda: propose(trio))
    assert p.action == action and p.signatures == 1 and p.required == 2
    # nothing changed yet: not in the log's state, and the catalog has no row for it either
    assert not applied(trio)
    listed = admin.pending(trio.ws)
    assert [c["change"] for c in listed] == [p.change] and listed[0]["signed_by"] == ["ada"]
    assert not trio.problems()
    # the proposer signing again counts once: refused, still pending
    with pytest.raises(ConflictError, match="already signed"):
        admin.sign(trio.ws, trio.ada, p.change)
    assert not applied(trio)
    out = admin.sign(trio.ws, trio.bob, p.change[:10])
    assert out == {"change": p.change, "applied": True, "valid_signatures": 2, "required": 2}
    assert applied(trio)
    assert admin.pending(trio.ws) == []
    assert not trio.problems()
    # the applying entry names its change and carries exactly the signed details
    st = trusted_state(trio.ws)
    e = next(x for x in reversed(st.entries) if x["action"] == action)
    stmt = st.changes[p.change].statement
    assert e["details"]["change"] == p.change and e["details"]["signers"] == ["ada", "bob"]
    assert {k: v for k, v in e["details"].items() if k not in ("change", "signers")} == stmt["details"]
    with pytest.raises(ConflictError, match="applied"):
        admin.sign(trio.ws, trio.carol, p.change)


def test_a_policy_proposal_leaves_the_policy_file_alone(trio: Trio) -> None:
    from dataward.workflow.approval_policy import load_policy, set_policy

    p = _pending(lambda: set_policy(trio.ws, trio.ada, _policy_text(), where="stricter.toml"))
    assert not (trio.ws.path / "policy.toml").exists()
    before = load_policy(trio.ws).digest
    admin.sign(trio.ws, trio.carol, p.change)
    assert load_policy(trio.ws).digest != before


def test_a_change_that_no_longer_applies_is_refused_whole(trio: Trio) -> None:
    from dataward.errors import NotFoundError
    from dataward.sources import add_source

    # a proposal fails where the change itself would, and logs nothing
    size = trusted_state(trio.ws).size
    with pytest.raises(NotFoundError, match="nobody"):
        principals.grant_roles(trio.ws, trio.ada, "nobody", [Grant(Role.AUDITOR)])
    assert trusted_state(trio.ws).size == size and admin.pending(trio.ws) == []
    # a conflicting change lands first: the pending source.add would now fail, so signing writes nothing
    q = _pending(lambda: add_source(trio.ws, trio.ada, "src", kind="internal", origin="x"))
    r = _pending(lambda: add_source(trio.ws, trio.bob, "src", kind="internal", origin="y"))
    admin.sign(trio.ws, trio.bob, q.change)
    size = trusted_state(trio.ws).size
    with pytest.raises(ConflictError, match="already exists"):
        admin.sign(trio.ws, trio.ada, r.change)
    assert trusted_state(trio.ws).size == size  # nothing half-written: no signature, no entry
    assert trusted_state(trio.ws).changes[r.change].status == "pending"
    admin.withdraw(trio.ws, trio.ada, r.change, reason="superseded")
    assert trusted_state(trio.ws).changes[r.change].status == "withdrawn"
    assert not trio.problems()


# --- who may sign, and which signatures count ---------------------------------------------------------------


def test_a_non_admin_signature_is_refused(trio: Trio) -> None:
    p = _pending(
        lambda: principals.add_principal(trio.ws, trio.ada, "eve", [Grant(Role.APPROVER)], trio.new_key("eve"))
    )
    admin.sign(trio.ws, trio.bob, p.change)
    eve_actor = trio.ws.actor("eve", keyring=trio.ring)
    q = _pending(lambda: principals.grant_roles(trio.ws, trio.ada, "eve", [Grant(Role.ADMIN)]))
    with pytest.raises(AuthorizationError, match="only admins"):
        admin.sign(trio.ws, eve_actor, q.change)
    assert "admin" not in _roles(trio.ws, "eve")
    denied = [e for e in trusted_state(trio.ws).changes[q.change].signatures]
    assert denied == ["ada"]


def test_a_revoked_key_signature_does_not_count(trio: Trio) -> None:
    # carol proposes; then her key is revoked (by ada and bob): her signature no longer counts
    p = _pending(lambda: principals.grant_roles(trio.ws, trio.carol, "bob", [Grant(Role.AUDITOR)]))
    r = _pending(lambda: principals.revoke_key(trio.ws, trio.ada, trio.carol.keyid[:12], reason="stolen"))
    admin.sign(trio.ws, trio.bob, r.change)
    out = admin.sign(trio.ws, trio.bob, p.change)
    assert out["applied"] is False and out["valid_signatures"] == 1
    assert "auditor" not in _roles(trio.ws, "bob")
    assert admin.sign(trio.ws, trio.ada, p.change)["applied"]
    assert "auditor" in _roles(trio.ws, "bob")
    assert not trio.problems()


def test_one_admin_threshold_applies_at_once_as_before(tmp_path: Path) -> None:
    ring = FileKeyring(tmp_path / "ring")
    ws = Workspace.init(tmp_path / "ws", admin="ada", keyring=ring)
    ada = ws.actor("ada", keyring=ring)
    principals.enroll(ws, ada, "bob", [Grant(Role.ADMIN)], keyring=ring)
    principals.enroll(ws, ada, "eve", [Grant(Role.APPROVER)], keyring=ring)
    st = trusted_state(ws)
    assert st.admin_threshold == 1 and _roles(ws, "eve") == {"approver"} and not st.changes
    assert all("change" not in e["details"] for e in st.entries)
    ws.engine.dispose()


# --- evidence over state: one stolen admin key, forged entries, SQL edits ------------------------------------


def _forge(t: Trio, actor: Actor, action: str, subject: str, details: dict[str, Any]) -> int:
    """Append a correctly signed entry with ``actor``'s (stolen) key, bypassing the library's checks."""
    with write_transaction(t.ws.engine) as conn:
        entries = auditlog.append(
            conn, [auditlog.PendingEntry(actor, action, subject, details)], log_key=t.ws.log_actor(), origin=t.ws.origin
        )
    return entries[0].seq


def test_one_stolen_admin_key_cannot_add_a_principal(trio: Trio) -> None:
    mallory = trio.new_key("mallory")
    # the thief holds bob's key and write access to the catalog: the principal, its key and an admin grant
    # are inserted, and a principal.add entry signed with bob's key is appended to the log
    with write_transaction(trio.ws.engine) as conn:
        conn.execute(
            insert(schema.principals).values(name="mallory", created_at=now_iso(), created_by="bob", disabled=False)
        )
        conn.execute(
            insert(schema.role_grants).values(principal="mallory", role="admin", source=None, granted_at=now_iso())
        )
        conn.execute(
            insert(schema.keys).values(
                keyid=mallory.keyid,
                principal="mallory",
                public_key=mallory.hex(),
                created_at=now_iso(),
                status="active",
            )
        )
    seq = _forge(
        trio,
        trio.bob,
        "principal.add",
        "principal:mallory",
        {"roles": ["admin"], "keyid": mallory.keyid, "public_key": mallory.hex(), "expires_at": None},
    )
    lines = trio.problems()
    assert any(
        x.startswith(f"entry {seq}: ")
        and "principal.add of principal:mallory applied with 1 admin signature, 2 required" in x
        for x in lines
    ), lines
    assert any("table role_grants, row mallory/admin/*" in x for x in lines), lines
    # and mallory holds nothing: every gate reads the roles the log grants
    assert _roles(trio.ws, "mallory") == set()
    m = trio.ws.actor("mallory", keyring=trio.ring)
    with pytest.raises(AuthorizationError):
        principals.grant_roles(trio.ws, m, "mallory", [Grant(Role.APPROVER)])


def test_one_stolen_admin_key_cannot_grant_a_role_with_modified_code(
    trio: Trio, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the thief runs a dataward that skips the threshold: the entry is appended, the log refuses it
    monkeypatch.setattr(TrustedState, "effective_admin_threshold", lambda self: 1)
    principals.grant_roles(trio.ws, trio.bob, "bob", [Grant(Role.APPROVER)])
    monkeypatch.undo()
    lines = trio.problems()
    assert any("role.grant of principal:bob applied with 1 admin signature, 2 required" in x for x in lines), lines
    assert any("table role_grants, row bob/approver/*" in x for x in lines), lines
    assert "approver" not in _roles(trio.ws, "bob")


def test_a_change_applied_with_one_signature_is_refused(trio: Trio) -> None:
    # bob proposes (his signature counts once), then applies it himself with a forged applying entry
    p = _pending(lambda: principals.grant_roles(trio.ws, trio.bob, "bob", [Grant(Role.APPROVER)]))
    _forge(trio, trio.bob, "admin.sign", f"change:{p.change}", {"change": p.change})  # twice counts once
    stmt = trusted_state(trio.ws).changes[p.change].statement
    seq = _forge(
        trio,
        trio.bob,
        "role.grant",
        "principal:bob",
        {**stmt["details"], "change": p.change, "signers": ["ada", "bob"]},
    )
    lines = trio.problems()
    assert any(x.startswith(f"entry {seq}: ") and "1 valid admin signature(s)" in x for x in lines), lines
    assert "approver" not in _roles(trio.ws, "bob")
    # and an applying entry that differs from what was signed is refused too, whoever signed
    q = _pending(lambda: principals.grant_roles(trio.ws, trio.ada, "bob", [Grant(Role.AUDITOR)]))
    _forge(trio, trio.carol, "admin.sign", f"change:{q.change}", {"change": q.change})
    seq2 = _forge(
        trio,
        trio.carol,
        "role.grant",
        "principal:bob",
        {"roles": ["admin@x", "approver"], "change": q.change, "signers": []},
    )
    lines = trio.problems()
    assert any(x.startswith(f"entry {seq2}: ") and "does not match the signed statement" in x for x in lines), lines
    assert "approver" not in _roles(trio.ws, "bob")


def test_a_forged_proposal_is_refused(trio: Trio) -> None:
    stmt = {"action": "role.grant", "subject": "principal:bob", "details": {"roles": ["approver"]}}
    seq = _forge(trio, trio.bob, "admin.propose", "change:" + "0" * 64, {"change": "0" * 64, "statement": stmt})
    lines = trio.problems()
    assert any(x.startswith(f"entry {seq}: ") and "not the digest of the statement" in x for x in lines), lines


def test_a_role_grant_inserted_by_sql_is_named_and_grants_nothing(trio: Trio) -> None:
    with write_transaction(trio.ws.engine) as conn:
        conn.execute(
            insert(schema.role_grants).values(principal="bob", role="approver", source=None, granted_at=now_iso())
        )
    lines = trio.problems()
    assert any(x.startswith("log: table role_grants, row bob/approver/*") for x in lines), lines
    assert "approver" not in _roles(trio.ws, "bob")


def test_the_threshold_change_itself_needs_k(trio: Trio) -> None:
    p = _pending(lambda: admin.set_threshold(trio.ws, trio.ada, 1))
    assert trusted_state(trio.ws).admin_threshold == 2
    # forged: ada alone lowers the threshold, then adds a principal on her own
    seq = _forge(trio, trio.ada, "admin.threshold", "workspace:admins", {"threshold": 1, "previous": 2})
    eve = trio.new_key("eve")
    seq2 = _forge(
        trio,
        trio.ada,
        "principal.add",
        "principal:eve",
        {"roles": ["admin"], "keyid": eve.keyid, "public_key": eve.hex(), "expires_at": None},
    )
    lines = trio.problems()
    assert any(x.startswith(f"entry {seq}: ") and "admin.threshold" in x and "2 required" in x for x in lines), lines
    assert any(x.startswith(f"entry {seq2}: ") and "2 required" in x for x in lines), lines
    st = trusted_state(trio.ws)
    assert st.admin_threshold == 2 and "eve" not in st.principals
    # the real way: a second admin signs the pending change
    assert admin.sign(trio.ws, trio.carol, p.change)["applied"]
    assert trusted_state(trio.ws).admin_threshold == 1


def test_threshold_above_the_admin_count_is_refused(trio: Trio) -> None:
    from dataward.errors import InputError

    with pytest.raises(InputError, match="more than the 3 admin"):
        admin.set_threshold(trio.ws, trio.ada, 4)


def test_the_projection_rows_match_the_log(trio: Trio) -> None:
    p = _pending(lambda: principals.grant_roles(trio.ws, trio.ada, "bob", [Grant(Role.AUDITOR)]))
    with trio.ws.engine.connect() as conn:
        row = conn.execute(select(schema.admin_changes).where(schema.admin_changes.c.id == p.change)).one()
        sigs = (
            conn.execute(
                select(schema.admin_signatures.c.principal).where(schema.admin_signatures.c.change_id == p.change)
            )
            .scalars()
            .all()
        )
    assert row.status == "pending" and json.loads(row.statement)["action"] == "role.grant" and sigs == ["ada"]


# --- the same through the command line, each person with their own keyring ----------------------------------


def _run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, root: Path, who: str, *args: str
) -> tuple[int, str, str]:
    from dataward.cli import main

    monkeypatch.setenv("DATAWARD_KEYRING", str(root / "people" / who))  # on who's own machine
    capsys.readouterr()
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_two_of_three_admins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATAWARD_PRINCIPAL", raising=False)
    ws = str(tmp_path / "ws")

    def run(who: str, *args: str) -> tuple[int, str, str]:
        return _run(capsys, monkeypatch, tmp_path, who, *args)

    def pub(name: str) -> str:
        rc, out, _ = run(name, "key", "generate", name)
        assert rc == 0
        path = tmp_path / f"{name}.pub"
        path.write_text(out)
        return str(path)

    assert run("ada", "init", ws, "--admin", "ada", "--admin-threshold", "2")[0] == 0
    W = ["-w", ws, "--as", "ada"]
    # while ada is the only admin, her signature is all there is: bob is added at once
    assert run("ada", *W, "principal", "add", "bob", "--role", "admin", "--key", pub("bob"))[0] == 0
    rc, out, err = run("ada", *W, "principal", "add", "carol", "--role", "admin", "--key", pub("carol"), "--json")
    assert rc == 0, err
    first = json.loads(out)
    assert first["pending"] is True and first["valid_signatures"] == 1 and first["required"] == 2
    rc, out, err = run("bob", "-w", ws, "admin", "sign", first["change"][:12], "--as", "bob")
    assert rc == 0 and "applied" in out, err
    # three admins, threshold 2: adding an approver waits for a second admin
    rc, out, err = run("ada", *W, "principal", "add", "eve", "--role", "approver", "--key", pub("eve"))
    assert rc == 0 and out.startswith("pending change "), (out, err)
    change = out.split()[2]
    rc, out, _ = run("ada", "-w", ws, "admin", "pending", "--json")
    listed = json.loads(out)
    assert [(c["change"], c["action"], c["subject"], c["signed_by"]) for c in listed] == [
        (change, "principal.add", "principal:eve", ["ada"])
    ]
    rc, out, _ = run("ada", "-w", ws, "admin", "show", change[:12])
    assert rc == 0 and '"approver"' in out and change in out
    rc, out, _ = run("ada", "-w", ws, "principal", "list", "--json")
    assert "eve" not in {p["name"] for p in json.loads(out)}
    # the proposer signing twice counts once; bob cannot sign with a key that is not in his keyring
    assert run("ada", *W, "admin", "sign", change[:12])[0] == 6
    assert run("bob", "-w", ws, "admin", "sign", change[:12], "--as", "carol")[0] == 4
    rc, out, err = run("carol", "-w", ws, "admin", "sign", change[:12], "--as", "carol")
    assert rc == 0 and "applied (2 of 2" in out, err
    rc, out, _ = run("ada", "-w", ws, "principal", "list", "--json")
    assert {"name": "eve", "roles": ["approver"]} in json.loads(out)
    # a non-admin's signature is refused (exit 4) and changes nothing
    rc, out, _ = run("ada", *W, "principal", "grant", "eve", "admin")
    assert rc == 0 and out.startswith("pending change ")
    grant = out.split()[2]
    rc, _, err = run("eve", "-w", ws, "admin", "sign", grant[:12], "--as", "eve")
    assert rc == 4 and "only admins" in err
    rc, out, _ = run("ada", "-w", ws, "admin", "pending", "--json")
    assert [c["signed_by"] for c in json.loads(out)] == [["ada"]]
    assert run("ada", "-w", ws, "admin", "withdraw", grant[:12], "--reason", "not needed", "--as", "ada")[0] == 0
    rc, out, _ = run("ada", "-w", ws, "admin", "threshold", "--json")
    assert json.loads(out) == {"threshold": 2, "admins": ["ada", "bob", "carol"], "required": 2}
    assert run("ada", "-w", ws, "--as", "ada", "log", "verify")[0] == 0


def test_two_admins_applying_at_once_apply_it_once(trio: Trio, monkeypatch: pytest.MonkeyPatch) -> None:
    p = _pending(lambda: principals.grant_roles(trio.ws, trio.ada, "bob", [Grant(Role.AUDITOR)]))
    stale = trusted_state(trio.ws).fork()  # what carol's process read before bob's signature landed
    assert admin.sign(trio.ws, trio.bob, p.change)["applied"]
    size = trusted_state(trio.ws).size
    monkeypatch.setattr(admin, "_state", lambda ws: stale)
    with pytest.raises(ConflictError, match="applied, not pending"):
        admin.sign(trio.ws, trio.carol, p.change)
    monkeypatch.undo()
    assert trusted_state(trio.ws).size == size
    assert not trio.problems()


def test_a_policy_set_by_one_stolen_admin_key_is_not_in_force(trio: Trio) -> None:
    import hashlib

    from dataward.errors import PolicyError
    from dataward.workflow.approval_policy import load_policy

    # the thief writes a lax policy file and a policy.set entry naming its digest, signed by bob alone
    text = _policy_text().replace("approvals = 3", "approvals = 1", 1)
    (trio.ws.path / "policy.toml").write_text(text, encoding="utf-8")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    _forge(trio, trio.bob, "policy.set", "policy", {"sha256": digest, "from": "lax.toml"})
    with pytest.raises(PolicyError, match="never set through dataward"):
        load_policy(trio.ws)
    assert any("policy.set of policy applied with 1 admin signature, 2 required" in x for x in trio.problems())


def test_a_change_whose_details_would_differ_is_refused(trio: Trio) -> None:
    g = _pending(lambda: principals.grant_roles(trio.ws, trio.ada, "bob", [Grant(Role.AUDITOR)]))
    admin.sign(trio.ws, trio.carol, g.change)
    first = _pending(lambda: principals.revoke_roles(trio.ws, trio.ada, "bob", [Grant(Role.AUDITOR)]))
    second = _pending(lambda: principals.revoke_roles(trio.ws, trio.bob, "bob", [Grant(Role.AUDITOR)]))
    assert first.change != second.change
    admin.sign(trio.ws, trio.carol, first.change)
    size = trusted_state(trio.ws).size
    # the second revocation was signed as "removes 1 grant"; re-run now it would remove none
    with pytest.raises(ConflictError, match=r"no longer applies as signed.*\(removed differ\)"):
        admin.sign(trio.ws, trio.carol, second.change)
    assert trusted_state(trio.ws).size == size
    assert not trio.problems()
