"""Authorization matrix: every role x every state-changing entry point, allow/deny asserted (deny by default).

Each role gets a principal holding only that role (plus ``nobody`` with none). Every library entry point
that changes state is called as each of them: a role the PERMISSIONS table allows must get past
authorization (and the core entry points must succeed); any other must get AuthorizationError, with an
``access.denied`` entry naming principal and action and nothing else appended to the log. Then keys over
time: expired, rotated (retired) and revoked keys.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dataward import principals
from dataward.access import ALL_ROLES, PERMISSIONS, allowed, require_separation
from dataward.acquire.acquire import acquire
from dataward.cli import main
from dataward.errors import AuthorizationError, Error, InputError, SignatureError
from dataward.identity import Actor
from dataward.log.query import show_entries
from dataward.log.verify import verify_log
from dataward.model.roles import Grant, Role
from dataward.sources import add_source
from dataward.store.keyring import FileKeyring
from dataward.timeutil import now_iso
from dataward.workspace import Workspace

PEOPLE = {f"r-{r.value}": r for r in Role}
NOBODY = "nobody"


@dataclass
class World:
    ws: Workspace
    tmp: Path
    ring: FileKeyring  # module-scoped: every principal's key, in one keyring outside the workspace
    batches: dict[str, str] = field(default_factory=dict)
    revoke_targets: dict[str, str] = field(default_factory=dict)
    actors: dict[str, Actor] = field(default_factory=dict)

    def actor(self, name: str) -> Actor:
        if name not in self.actors:
            self.actors[name] = self.ws.actor(name, keyring=self.ring)
        return self.actors[name]

    def csv(self, tag: str) -> Path:
        p = self.tmp / f"{tag}.csv"
        p.write_text("text,label\n" + "".join(f"row {tag} {i},{i % 2}\n" for i in range(40)), encoding="utf-8")
        return p


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    tmp = tmp_path_factory.mktemp("matrix")
    ring = FileKeyring(tmp / "keyring")
    ws = Workspace.init(tmp / "ws", admin="admin", keyring=ring)
    w = World(ws, tmp, ring)
    admin = w.actor("admin")
    for name, role in PEOPLE.items():
        principals.enroll(ws, admin, name, [Grant(role)], keyring=ring)
    principals.enroll(ws, admin, NOBODY, [], keyring=ring)
    principals.add_principal(ws, admin, "victim", [Grant(Role.AUDITOR)])
    for who in [*PEOPLE, NOBODY]:
        principals.enroll(ws, admin, f"rot-{who}", keyring=ring)
        w.revoke_targets[who] = principals.enroll(ws, admin, f"rev-{who}", keyring=ring).keyid
    add_source(ws, admin, "feed", kind="third-party", origin="https://example.org/feed", license="MIT")
    ingester = w.actor("r-ingester")
    for tag in ("main", "screen", "reject"):
        w.batches[tag] = acquire(ws, ingester, "feed", [w.csv(tag)]).id
    try:  # preconditions so that the audit entry points reach their authorization check
        from dataward.workflow.audit import draw_sample
        from dataward.workflow.screening import screen_batch
    except ImportError:  # pragma: no cover
        return w
    screen_batch(ws, w.actor("r-screener"), w.batches["main"])
    draw_sample(ws, w.actor("r-reviewer"), w.batches["main"])
    return w


def _core(fn: Callable[[World, Actor, str], Any]) -> Callable[[World, Actor, str], Any]:
    fn.core = True  # type: ignore[attr-defined]
    return fn


def _cli(w: World, who: str, *args: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATAWARD_KEYRING", str(w.ring.path))  # the caller holds the world's keyring
        rc = main(["-w", str(w.ws.path), "--as", who, *args])
    if rc == AuthorizationError.exit_code:
        raise AuthorizationError(f"CLI exit {rc}")
    if rc != 0:
        raise Error(f"CLI exit {rc}")


ENTRY_POINTS: dict[str, tuple[str, Callable[[World, Actor, str], Any]]] = {
    "principal add": ("principal.add", _core(lambda w, a, r: principals.add_principal(w.ws, a, f"new-{r}", []))),
    "role grant": (
        "role.grant",
        _core(lambda w, a, r: principals.grant_roles(w.ws, a, "victim", [Grant(Role.SCREENER)])),
    ),
    "role revoke": (
        "role.revoke",
        _core(lambda w, a, r: principals.revoke_roles(w.ws, a, "victim", [Grant(Role.AUDITOR)])),
    ),
    "key add": (
        "key.add",
        _core(lambda w, a, r: principals.add_key(w.ws, a, f"gen-{r}", w.ring.generate(f"gen-{r}")[1])),
    ),
    "key rotate (another's)": (
        "key.rotate",
        _core(lambda w, a, r: principals.rotate_key(w.ws, a, f"rot-{r}", keyring=w.ring)),
    ),
    "key revoke": (
        "key.revoke",
        _core(lambda w, a, r: principals.revoke_key(w.ws, a, w.revoke_targets[r], reason="matrix test")),
    ),
    "source add": (
        "source.add",
        _core(lambda w, a, r: add_source(w.ws, a, f"src-{r}", kind="internal", origin="the matrix")),
    ),
    "acquire": ("batch.acquire", _core(lambda w, a, r: acquire(w.ws, a, "feed", [w.csv(f"acq-{r}")]))),
    "verify (CLI, records an entry)": (
        "batch.verify",
        _core(lambda w, a, r: _cli(w, a.name, "verify", w.batches["main"])),
    ),
    "log verify (CLI, records an entry)": ("log.verify", _core(lambda w, a, r: _cli(w, a.name, "log", "verify"))),
}


def _workflow_entry_points() -> None:
    """The newer entry points (workflow, release, lineage): authorization asserted, outcome otherwise free."""
    try:
        from dataward.lineage.runs import record_run
        from dataward.release.reader import open_dataset
        from dataward.release.rollback import rollback
        from dataward.release.versions import release
        from dataward.workflow.approval import approve, reject
        from dataward.workflow.approval_policy import default_policy_text, set_policy
        from dataward.workflow.audit import complete_audit, draw_sample
        from dataward.workflow.screening import screen_batch
    except ImportError:  # pragma: no cover - the workflow layer is optional for this test
        return
    ENTRY_POINTS.update(
        {
            "policy set": ("policy.set", lambda w, a, r: set_policy(w.ws, a, default_policy_text(), where="matrix")),
            "screen": ("batch.screen", lambda w, a, r: screen_batch(w.ws, a, w.batches["screen"])),
            "audit sample": ("audit.sample", lambda w, a, r: draw_sample(w.ws, a, w.batches["main"])),
            "audit complete": ("audit.complete", lambda w, a, r: complete_audit(w.ws, a, w.batches["main"])),
            "approve": ("batch.approve", lambda w, a, r: approve(w.ws, a, w.batches["main"])),
            "reject": ("batch.reject", lambda w, a, r: reject(w.ws, a, w.batches["reject"], "matrix test")),
            "release": ("dataset.release", lambda w, a, r: release(w.ws, a, "ds", [w.batches["main"]])),
            "rollback": ("dataset.rollback", lambda w, a, r: rollback(w.ws, a, "ds", to=1, reason="matrix")),
            "read": ("data.read", lambda w, a, r: open_dataset("ds@1", workspace=w.ws, principal=a)),
            "run record": ("run.record", lambda w, a, r: record_run(w.ws, a, "ds@1", [w.csv("model")])),
        }
    )


_workflow_entry_points()


def _log_size(ws: Workspace) -> int:
    last = show_entries(ws, limit=1)
    return last[0].seq + 1 if last else 0


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_role_against_entry_point(world: World, name: str) -> None:
    action, fn = ENTRY_POINTS[name]
    assert action in PERMISSIONS, f"{name}: action {action} is missing from PERMISSIONS"
    unexpected: list[str] = []
    for who in [*PEOPLE, NOBODY]:
        role = PEOPLE.get(who)
        should = role is not None and role in PERMISSIONS[action]
        actor = world.actor(who)
        before = _log_size(world.ws)
        try:
            fn(world, actor, who)
            outcome = "done"
        except AuthorizationError as exc:
            outcome = f"denied: {exc}"
        except Error as exc:  # past authorization, refused for another reason (state, input)
            outcome = f"refused: {type(exc).__name__}: {exc}"
        after = _log_size(world.ws)
        if not should:
            if not outcome.startswith("denied"):
                unexpected.append(f"{who}: UNEXPECTED ALLOW of {action} ({outcome})")
                continue
            last = show_entries(world.ws, limit=1)[0]
            if (
                after != before + 1
                or last.action != "access.denied"
                or last.details.get("principal") != who
                or last.details.get("action") != action
            ):
                unexpected.append(f"{who}: denial of {action} not logged alone as access.denied ({last.to_json()})")
        else:
            if outcome.startswith("denied"):
                unexpected.append(f"{who}: unexpected denial of {action} ({outcome})")
            elif getattr(fn, "core", False) and outcome != "done":
                unexpected.append(f"{who}: {action} failed ({outcome})")
    assert not unexpected, "\n".join(unexpected)


def test_permissions_table_least_privilege() -> None:
    """Independent statements of the policy the table must encode."""
    identity = {"principal.add", "role.grant", "role.revoke", "key.generate", "key.add", "key.rotate", "key.revoke"}
    for action in identity | {"source.add", "policy.set", "token.create", "token.revoke"}:
        assert PERMISSIONS[action] == frozenset({Role.ADMIN}), action
    assert PERMISSIONS["batch.acquire"] == frozenset({Role.INGESTER})
    assert PERMISSIONS["batch.approve"] == frozenset({Role.APPROVER})
    assert PERMISSIONS["dataset.release"] == frozenset({Role.APPROVER})
    for action, roles in PERMISSIONS.items():
        if roles == ALL_ROLES:
            assert action in {"batch.verify", "log.verify"}, f"{action} is open to every role"
        assert Role.ADMIN not in roles or action not in {"batch.approve", "batch.acquire", "dataset.release"}
    # deny by default: unknown actions, scoped grants outside their source, no grants
    assert not allowed([Grant(Role.ADMIN)], "batch.teleport")
    assert not allowed([], "batch.verify")
    assert allowed([Grant(Role.INGESTER, "feed")], "batch.acquire", "feed")
    assert not allowed([Grant(Role.INGESTER, "feed")], "batch.acquire", "other")
    assert not allowed([Grant(Role.INGESTER, "feed")], "batch.acquire", None)
    # verifying needs some role, wherever it is scoped
    assert allowed([Grant(Role.INGESTER, "feed")], "batch.verify", None)
    assert allowed([Grant(Role.INGESTER, "feed")], "log.verify", None)


def test_scoped_grant_only_on_its_source(world: World) -> None:
    ws, admin = world.ws, world.actor("admin")
    add_source(ws, admin, "other", kind="internal", origin="x")
    principals.enroll(ws, admin, "scoped", [Grant(Role.INGESTER, "other")], keyring=world.ring)
    scoped = ws.actor("scoped", keyring=world.ring)
    acquire(ws, scoped, "other", [world.csv("scoped-ok")])
    with pytest.raises(AuthorizationError):
        acquire(ws, scoped, "feed", [world.csv("scoped-no")])
    last = show_entries(ws, limit=1)[0]
    assert (last.action, last.details["principal"], last.details["action"]) == (
        "access.denied",
        "scoped",
        "batch.acquire",
    )
    ws.record(scoped, "log.verify", "log:x", {})  # verifying needs a role, scoped or not


def test_separation_of_duties() -> None:
    with pytest.raises(AuthorizationError, match="separation of duties"):
        require_separation("carl", "carl", "approve")
    require_separation("alice", "carl", "approve")


def test_self_rotation_needs_no_admin_and_stays_verifiable(world: World) -> None:
    ws = world.ws
    principals.enroll(ws, world.actor("admin"), "selfie", [Grant(Role.AUDITOR)], keyring=world.ring)
    me = ws.actor("selfie", keyring=world.ring)
    info = principals.rotate_key(ws, me, "selfie", keyring=world.ring)
    assert info["retired"] == me.keyid
    with pytest.raises(SignatureError, match="retired"):
        ws.record(me, "log.verify", "log:x", {})  # the retired key can no longer sign
    res = verify_log(ws)
    assert res.ok, [p.line() for p in res.problems]


# ------------------------------------------------------------------------------------ keys over time


def _sql(ws: Workspace, sql: str, args: tuple[object, ...]) -> None:
    con = sqlite3.connect(ws.path / "catalog.db")
    con.execute(sql, args)
    con.commit()
    con.close()


def test_log_key_is_not_a_principal_key(world: World) -> None:
    admin = world.actor("admin")
    with pytest.raises(Error, match="log key"):
        principals.rotate_key(world.ws, admin, "@workspace-log")
    with pytest.raises(Error, match="log key"):
        principals.revoke_key(world.ws, admin, world.ws.log_actor().keyid, reason="x")


def test_expired_key(world: World) -> None:
    ws, admin = world.ws, world.actor("admin")
    principals.enroll(ws, admin, "shortlived", [Grant(Role.AUDITOR)], keyring=world.ring, expires_days=1)
    early = ws.actor("shortlived", keyring=world.ring)
    ws.record(early, "log.verify", "log:x", {})
    logged_expiry = principals.list_keys(ws, "shortlived")[0]["expires_at"]
    _sql(ws, "UPDATE keys SET expires_at = ? WHERE keyid = ?", ("2020-01-01T00:00:00.000000Z", early.keyid))
    with pytest.raises(SignatureError, match="expired"):
        ws.actor("shortlived", keyring=world.ring)
    with pytest.raises(SignatureError, match="expired"):
        ws.record(early, "log.verify", "log:x", {})  # an actor loaded before expiry cannot sign after it
    res = verify_log(ws)
    # the entry signed while the key was valid now predates the (edited) expiry: it is rejected, by number
    assert [p.kind for p in res.problems] == ["key", "projection"] and "expired" in res.problems[0].detail
    # and the edited cell itself is named against the expiry the log recorded
    assert "table keys, row " in res.problems[1].detail and "column expires_at" in res.problems[1].detail
    _sql(ws, "UPDATE keys SET expires_at = ? WHERE keyid = ?", (logged_expiry, early.keyid))
    assert verify_log(ws).ok


def test_rotated_key(world: World) -> None:
    ws, admin = world.ws, world.actor("admin")
    principals.enroll(ws, admin, "rotor", [Grant(Role.AUDITOR)], keyring=world.ring)
    old = ws.actor("rotor", keyring=world.ring)
    ws.record(old, "log.verify", "log:x", {})
    principals.rotate_key(ws, admin, "rotor", keyring=world.ring)
    with pytest.raises(SignatureError, match="retired"):
        ws.record(old, "log.verify", "log:x", {})
    new = ws.actor("rotor", keyring=world.ring)
    assert new.keyid != old.keyid
    ws.record(new, "log.verify", "log:x", {})
    assert verify_log(ws).ok  # the old key's earlier signature stays valid


def test_revoked_key(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    ws, admin = world.ws, world.actor("admin")
    principals.enroll(ws, admin, "leaky", [Grant(Role.AUDITOR)], keyring=world.ring)
    leaky = ws.actor("leaky", keyring=world.ring)
    before = ws.record(leaky, "log.verify", "log:before", {})[0].seq
    compromised_at = now_iso()
    after = ws.record(leaky, "log.verify", "log:after", {})[0].seq
    with pytest.raises(InputError, match="future"):
        principals.revoke_key(ws, admin, leaky.keyid, reason="x", at="2999-01-01T00:00:00Z")
    with pytest.raises(Error, match="cannot revoke"):
        principals.revoke_key(ws, admin, admin.keyid, reason="own key")
    principals.revoke_key(ws, admin, leaky.keyid, reason="laptop stolen", at=compromised_at)
    with pytest.raises(SignatureError):
        ws.actor("leaky", keyring=world.ring)  # no active key
    with pytest.raises(SignatureError, match="revoked"):
        ws.record(leaky, "log.verify", "log:later", {})
    res = verify_log(ws)
    assert [(p.seq, p.kind) for p in res.problems] == [(after, "key")]
    assert "revoked" in res.problems[0].detail
    assert any(
        m.startswith(f"entry {before}: signed by key {leaky.keyid[:16]} before its revocation") for m in res.marked
    )
    capsys.readouterr()
    assert main(["-w", str(ws.path), "log", "verify"]) == 3  # log verify needs no principal
    out = " ".join(capsys.readouterr().out.split())
    assert f"entry {after}: signature made when key {leaky.keyid[:16]} had been revoked" in out
    # put the world back for the other tests: un-revoke by hand is exactly what an attacker would do
    _sql(ws, "UPDATE keys SET revoked_at = NULL, status = 'active' WHERE keyid = ?", (leaky.keyid,))


def test_doctor_lists_keys_due(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    ws, admin = world.ws, world.actor("admin")
    kid = principals.enroll(ws, admin, "oldtimer", keyring=world.ring).keyid
    _sql(ws, "UPDATE keys SET created_at = ? WHERE keyid = ?", ("2024-01-01T00:00:00.000000Z", kid))
    log_kid = ws.log_actor().keyid
    _sql(ws, "UPDATE keys SET created_at = ? WHERE keyid = ?", ("2024-01-01T00:00:00.000000Z", log_kid))
    capsys.readouterr()
    assert main(["-w", str(ws.path), "doctor", "--rotate-days", "30", "--json"]) == 0
    due = json.loads(capsys.readouterr().out)["keys_due_for_rotation"]
    assert kid in {k["keyid"] for k in due}
    assert log_kid not in {k["keyid"] for k in due}  # the log key is not a principal's key to rotate
    fresh = {k["keyid"] for k in due if k["principal"].startswith("r-")}
    assert not fresh  # keys made minutes ago are not due
