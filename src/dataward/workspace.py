"""A workspace: catalog + object store + the log key + audit log, and who is acting.

The workspace holds no principal's private key: each person acts with a key from their own keyring
(:mod:`dataward.store.keyring`); the catalog holds only public keys. ``dataward.toml`` stores paths relative
to the workspace directory, so a copied workspace is independent of the original.

Every state change goes through :meth:`Workspace.change`: one catalog transaction that checks the acting
principal's roles (deny by default), makes the change, and appends the signed log entry. A denied attempt
is rolled back and then recorded in a transaction of its own.
"""

from __future__ import annotations

import contextvars
import hmac
import json
import os
import secrets
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dataward.access import require
from dataward.core.canonical import canonical_json
from dataward.core.dsse import key_id, public_key_bytes, public_key_from_hex
from dataward.core.signer import PrivateKeySigner
from dataward.errors import (
    AuthorizationError,
    ChangePending,
    ConflictError,
    Error,
    InputError,
    NotFoundError,
    SignatureError,
    WorkspaceError,
)
from dataward.identity import LOG_PRINCIPAL, Actor
from dataward.log import auditlog
from dataward.model.admin_change import ADMIN_STATEMENT_TYPE, change_id_of
from dataward.model.keys import KeyRecord, PublicKey
from dataward.model.roles import Grant
from dataward.model.subject import Subject
from dataward.store import admin_changes as admin_rows
from dataward.store import keys_repo, meta_repo, migrations, principals_repo
from dataward.store.catalog import (
    Transaction,
    lock_for_append,
    make_engine,
    redact_url,
    resolve_sqlite_path,
    write_transaction,
)
from dataward.store.keyring import FileKeyring, KeyringEntry
from dataward.store.keys import KeyDirectory
from dataward.store.objects import ObjectStore
from dataward.timeutil import now, now_iso, parse_iso

if TYPE_CHECKING:
    from sqlalchemy import Engine

CONFIG_NAME = "dataward.toml"


@dataclass
class Change:
    """What a state-changing action records: the connection to change the catalog, and the log entry."""

    conn: Transaction
    actor: Actor
    action: str
    subject: str
    details: dict[str, Any] = field(default_factory=dict)
    extra_entries: list[auditlog.PendingEntry] = field(default_factory=list)
    entries: list[auditlog.LogEntry] = field(default_factory=list)


class Workspace:
    """An open workspace: its directory, configuration, catalog engine, object store and the log key's
    directory (see the module docstring)."""

    def __init__(self, path: Path, config: dict[str, Any]) -> None:
        self.path = path
        self.config = config
        self.id: str = config["workspace_id"]
        self.origin: str = config["log_origin"]
        self.catalog_url: str = resolve_catalog_url(path, config["catalog"])
        self.engine: Engine = make_engine(self.catalog_url)
        self.objects = ObjectStore(_resolve_location(path, config["objects"]))
        #: the log key's directory (the only private key a workspace holds; may live outside it)
        self.keys = KeyDirectory(Path(_resolve_location(path, str(config.get("keys", "keys")))))
        self._log_actor: Actor | None = None

    # creation and opening -----------------------------------------------------------------------
    @classmethod
    def init(
        cls,
        path: Path | str,
        *,
        admin: str,
        admin_key: PublicKey | None = None,
        keyring: FileKeyring | None = None,
        catalog: str | None = None,
        objects: str | None = None,
        log_key_dir: str | None = None,
        passphrase: bytes | None = None,
        admin_threshold: int = 1,
    ) -> Workspace:
        """Create a workspace at ``path`` with a first principal ``admin`` holding the admin role.

        The admin's public key is ``admin_key``; without one, a new key is generated into ``keyring`` (the
        caller's keyring by default), encrypted with ``passphrase`` when given. ``log_key_dir`` puts the
        log's own key outside the workspace (default: ``keys/`` inside it). ``admin_threshold`` is how many
        distinct admins must sign each admin change (:mod:`dataward.admin`), recorded in the first log entry;
        while the workspace has fewer admins than that, every admin must sign.
        """
        if not isinstance(admin_threshold, int) or admin_threshold < 1:
            raise InputError(f"admin threshold {admin_threshold!r} must be an integer of at least 1")
        path = Path(path).absolute()
        cfg_file = path / CONFIG_NAME
        if cfg_file.exists():
            raise WorkspaceError(
                f"{path} is already a dataward workspace", advice="Open it instead, or pick another DIR."
            )
        _check_name(admin, "principal")
        path.mkdir(parents=True, exist_ok=True)
        wid = secrets.token_hex(8)
        config: dict[str, Any] = {
            "workspace_id": wid,
            "log_origin": f"dataward.local/{wid}",
            "catalog": catalog or "sqlite:///catalog.db",
            "objects": objects or "objects",
            "keys": log_key_dir or "keys",
        }
        ws = cls(path, config)
        made: KeyringEntry | None = None
        if admin_key is None:
            made, admin_key = (keyring or FileKeyring()).generate(admin, passphrase)
        try:
            ws._init_catalog(admin, admin_key, admin_threshold)
        except BaseException:
            if made is not None:
                made.path.unlink(missing_ok=True)  # nothing left behind: the key of a workspace never made
            raise
        _write_config(cfg_file, config)
        return ws

    def _init_catalog(self, admin: str, admin_key: PublicKey, admin_threshold: int = 1) -> None:
        ws, wid = self, self.id
        migrations.upgrade(ws.engine)
        with write_transaction(ws.engine) as conn:
            if meta_repo.workspace_id(conn):
                raise WorkspaceError(f"catalog {redact_url(ws.catalog_url)} already belongs to a workspace")
            meta_repo.insert_identity(conn, wid, ws.origin)
            log_key = Ed25519PrivateKey.generate()
            ws._register_key(conn, LOG_PRINCIPAL, log_key.public_key(), expires_at=None)
            ws.keys.save(log_key)
            log_actor = Actor.of(LOG_PRINCIPAL, log_key)
            ws._log_actor = log_actor
            principals_repo.insert_principal(conn, admin, created_at=now_iso(), created_by=None)
            principals_repo.insert_grant(conn, admin, "admin", None, granted_at=now_iso(), granted_by=None)
            admin_kid = ws._register_key(conn, admin, admin_key.crypto(), expires_at=None)
            # the first entry about the admin is signed by the log key: the admin's private key stays
            # with the admin (it may not even be on this machine when --admin-key is given)
            auditlog.append(
                conn,
                [
                    auditlog.PendingEntry(
                        log_actor,
                        "workspace.init",
                        f"workspace:{wid}",
                        {"catalog": redact_url(ws.catalog_url)}
                        | ({"admin_threshold": admin_threshold} if admin_threshold != 1 else {}),
                    ),
                    auditlog.PendingEntry(
                        log_actor,
                        "principal.add",
                        Subject.principal(admin),
                        {"roles": ["admin"], "keyid": admin_kid, "public_key": admin_key.hex()},
                    ),
                ],
                log_key=log_actor,
                origin=ws.origin,
            )

    @classmethod
    def open(cls, path: Path | str) -> Workspace:
        """Open the workspace at ``path`` (its ``dataward.toml``), bringing the catalog's schema up to date;
        refuses a catalog that belongs to another workspace."""
        path = Path(path).absolute()
        cfg_file = path / CONFIG_NAME
        try:
            raw = cfg_file.read_bytes()
        except FileNotFoundError:
            raise WorkspaceError(f"{path} is not a dataward workspace (no {CONFIG_NAME})") from None
        try:
            config = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise WorkspaceError(f"{cfg_file} is not valid TOML: {exc}") from None
        for k in ("workspace_id", "log_origin", "catalog", "objects"):
            if not isinstance(config.get(k), str):
                raise WorkspaceError(f"{cfg_file} lacks the setting {k!r}")
        ws = cls(path, config)
        migrations.upgrade(ws.engine)
        with ws.engine.connect() as conn:
            wid = meta_repo.workspace_id(conn)
        if wid != ws.id:
            raise WorkspaceError(
                f"catalog {redact_url(ws.catalog_url)} belongs to workspace {wid}, not {ws.id}",
                advice="The configuration points at another workspace's catalog; restore the right one.",
            )
        return ws

    # keys and actors ----------------------------------------------------------------------------
    def _register_key(self, conn: Transaction, principal: str, pub: Ed25519PublicKey, *, expires_at: str | None) -> str:
        kid = key_id(pub)
        keys_repo.insert_key(
            conn, kid, principal, public_key_bytes(pub).hex(), created_at=now_iso(), expires_at=expires_at
        )
        return kid

    def active_key_row(self, conn: Transaction, principal: str) -> KeyRecord | None:
        """The newest active key of ``principal`` as the catalog stores it (None: it has none)."""
        return keys_repo.active_key(conn, principal)

    def actor(
        self, principal: str | None, *, keyring: FileKeyring | None = None, passphrase: bytes | None = None
    ) -> Actor:
        """``principal`` acting with its active key from ``keyring`` (default: the caller's own keyring).

        Refuses unknown, disabled or expired principals, and a principal whose private key the keyring does
        not hold (:class:`~dataward.store.keyring.NotInKeyringError`, exit 4).
        """
        if not principal:
            raise AuthorizationError(
                "no acting principal", advice="Pass --as NAME or set DATAWARD_PRINCIPAL to the principal you act as."
            )
        with self.engine.connect() as conn:
            disabled = principals_repo.is_disabled(conn, principal)
            if disabled is None:
                raise AuthorizationError(
                    f"unknown principal {principal!r}", advice="An admin adds principals with `dataward principal add`."
                )
            if disabled:
                raise AuthorizationError(f"principal {principal!r} is disabled")
            row = self.active_key_row(conn, principal)
        if row is None:
            raise SignatureError(
                f"principal {principal!r} has no active key",
                advice=f"{principal} runs `dataward key generate {principal}`; an admin registers it with "
                f"`dataward key add {principal} --key FILE`.",
            )
        if row.expires_at is not None and parse_iso(row.expires_at) <= now():
            raise SignatureError(
                f"key {row.keyid[:16]} of {principal} expired at {row.expires_at}",
                advice=f"Rotate it: `dataward key rotate {principal}`.",
            )
        signer = (keyring or FileKeyring()).signer(principal, row.keyid, passphrase=passphrase)
        if not hmac.compare_digest(public_key_bytes(signer.public_key()).hex(), str(row.public_key)):
            raise SignatureError(f"your key {row.keyid[:16]} does not match the key registered for {principal}")
        return Actor(principal, signer, row.keyid)

    def log_actor(self) -> Actor:
        """The workspace log acting with its own key (loaded once from the key directory)."""
        if self._log_actor is None:
            with self.engine.connect() as conn:
                row = self.active_key_row(conn, LOG_PRINCIPAL)
            if row is None:
                raise WorkspaceError("the workspace log key is missing from the catalog")
            self._log_actor = Actor(LOG_PRINCIPAL, PrivateKeySigner(self.keys.load(row.keyid)), row.keyid)
        return self._log_actor

    def public_keys(self, conn: Transaction) -> dict[str, KeyRecord]:
        """keyid -> the key as the catalog stores it, for every key ever registered."""
        return keys_repo.key_records(conn)

    def log_public_key(self) -> Ed25519PublicKey:
        """The public key of the workspace log (the key every witness pins)."""
        with self.engine.connect() as conn:
            row = self.active_key_row(conn, LOG_PRINCIPAL)
        if row is None:
            raise WorkspaceError("the workspace log key is missing from the catalog")
        return public_key_from_hex(row.public_key)

    # authorization ------------------------------------------------------------------------------
    def grants(self, conn: Transaction, principal: str) -> list[Grant]:
        """The principal's roles as the signed log grants them (the role_grants table is a projection:
        a grant inserted by SQL gives nothing). ``conn`` is unused: the log is read as committed."""
        from dataward.evidence.load import trusted_state

        return trusted_state(self).grants_of(principal)

    def trusted_state(self) -> Any:
        """The state the signed log proves (:func:`dataward.evidence.load.trusted_state`, cached, replaying
        only new entries): for callers below the evidence layer that must not read catalog columns."""
        from dataward.evidence.load import trusted_state

        return trusted_state(self)

    @contextmanager
    def change(self, actor: Actor, action: str, subject: str, *, source: str | None = None) -> Iterator[Change]:
        """One transaction: authorize ``actor`` for ``action``, yield for the change, append the log entry."""
        from dataward.store.crash import crash_point

        log_key = self.log_actor()
        try:
            with write_transaction(self.engine) as conn:
                require(actor.name, self.grants(conn, actor.name), action, source)
                ch = Change(conn, actor, action, subject)
                yield ch
                ch.entries = auditlog.append(
                    conn,
                    [auditlog.PendingEntry(actor, action, subject, ch.details), *ch.extra_entries],
                    log_key=log_key,
                    origin=self.origin,
                )
                crash_point(f"{action}.before-commit")  # crash-injection tests (dataward.store.crash)
        except AuthorizationError as exc:
            self.record_denial(actor.name, action, subject, str(exc))
            raise
        crash_point(f"{action}.after-commit")

    def record(self, actor: Actor, action: str, subject: str, details: dict[str, Any]) -> list[auditlog.LogEntry]:
        """Append an entry that changes nothing else (e.g. a refusal), authorized as ``action``."""
        with self.change(actor, action, subject) as ch:
            ch.details.update(details)
        return ch.entries

    def require_granted(
        self, principal: str, grants: Iterable[Grant], action: str, subject: str, source: str | None = None
    ) -> None:
        """Refuse unless ``grants`` allow ``action`` (on ``source``); a refusal is logged as ``access.denied``.

        The one role check with denial logging: the console, the release layer and the workflow's early
        checks all come here."""
        try:
            require(principal, grants, action, source)
        except AuthorizationError as exc:
            self.record_denial(principal, action, subject, str(exc))
            raise

    def authorize(self, principal: str, action: str, subject: str, source: str | None = None) -> None:
        """Check, before expensive work starts, that ``principal``'s signed grants allow ``action``."""
        with self.engine.connect() as conn:
            grants = self.grants(conn, principal)
        self.require_granted(principal, grants, action, subject, source)

    def record_denial(self, principal: str, action: str, subject: str, reason: str) -> None:
        """Record a denied attempt (``access.denied``, signed by the log key) in a transaction of its own."""
        log = self.log_actor()
        with write_transaction(self.engine) as conn:
            auditlog.append(
                conn,
                [
                    auditlog.PendingEntry(
                        log, "access.denied", subject, {"principal": principal, "action": action, "reason": reason}
                    )
                ],
                log_key=log,
                origin=self.origin,
            )


def resolve_catalog_url(path: Path, url: str) -> str:
    """A relative SQLite path in ``dataward.toml`` is relative to the workspace directory."""
    return resolve_sqlite_path(url, path)


def _resolve_location(path: Path, location: str) -> str:
    """A relative directory in ``dataward.toml`` is relative to the workspace; URLs are kept as they are."""
    if "://" in location or Path(location).is_absolute():
        return location
    return str(path / location)


def _check_name(name: str, what: str) -> str:
    if not name or len(name) > 128 or not all(c.isalnum() or c in "-_.@" for c in name) or name.startswith("@"):
        raise Error(
            f"{what} name {name!r} is not allowed",
            advice="Use letters, digits, '-', '_', '.', '@' (not first), at most 128 characters.",
        )
    return name


check_name = _check_name


def _write_config(path: Path, config: dict[str, Any]) -> None:
    lines = [f'{k} = "{_toml_escape(str(v))}"' for k, v in config.items()]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _toml_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def find_principal_exists(conn: Transaction, name: str) -> bool:
    """Whether principal ``name`` is registered."""
    return principals_repo.principal_exists(conn, name)


def require_principal(conn: Transaction, name: str) -> None:
    """Refuse an unknown principal ``name`` (:class:`~dataward.errors.NotFoundError`)."""
    if not principals_repo.principal_exists(conn, name):
        raise NotFoundError(f"no principal named {name!r}")


# --- admin changes under the k-of-n admin threshold (dataward.admin has the commands) -------------------------


@dataclass
class AdminChange(Change):
    """A :class:`Change` that may only be a proposal: when ``applies_now`` is False the catalog changes made
    in the block are rolled back, and side effects outside the catalog must wait for the change to apply."""

    applies_now: bool = True


@dataclass(frozen=True)
class ApplyingChange:
    """The pending change the K-th signature is applying (see :func:`applying`)."""

    change: Any  # dataward.evidence.replay.ChangeEvidence
    signer: Actor
    signers: tuple[str, ...]


_APPLYING: contextvars.ContextVar[ApplyingChange | None] = contextvars.ContextVar(
    "dataward_admin_applying", default=None
)


class _DryRun(Exception):
    """Rolls a proposal's catalog transaction back once its details are known."""


@contextmanager
def applying(change: ApplyingChange) -> Iterator[None]:
    """While re-running the call of a pending ``change``, :func:`admin_change` applies it as signed."""
    token = _APPLYING.set(change)
    try:
        yield
    finally:
        _APPLYING.reset(token)


@contextmanager
def admin_change(
    ws: Workspace, actor: Actor, action: str, subject: str, *, call: dict[str, Any]
) -> Iterator[AdminChange]:
    """One admin change: applied at once under an admin threshold of 1 (exactly :meth:`Workspace.change`),
    else proposed (raises :class:`~dataward.errors.ChangePending` after the block) or, inside
    :func:`applying`, applied as signed. See :mod:`dataward.admin`.

    ``call`` is the JSON form of the library call that makes the change (``{"op": ACTION, "args": {...}}``,
    re-run when the change applies); it must not depend on the time or on the caller's machine.
    """
    from dataward.evidence.load import trusted_state

    current = _APPLYING.get()
    if current is not None:
        with _apply_signed(ws, actor, action, subject, current) as ch:
            yield ch
        return
    st = trusted_state(ws)
    if st.effective_admin_threshold() <= 1:
        with ws.change(actor, action, subject) as base:
            yield AdminChange(base.conn, actor, action, subject, base.details, base.extra_entries)
        return
    details: dict[str, Any] = {}
    try:
        with write_transaction(ws.engine) as conn:
            require(actor.name, st.grants_of(actor.name), action)
            ch = AdminChange(conn, actor, action, subject, applies_now=False)
            yield ch
            details = dict(ch.details)
            raise _DryRun
    except _DryRun:
        pass
    except AuthorizationError as exc:
        ws.record_denial(actor.name, action, subject, str(exc))
        raise
    statement = {
        "type": ADMIN_STATEMENT_TYPE,
        "origin": ws.origin,
        "action": action,
        "subject": subject,
        "details": json.loads(canonical_json(details)),
        "call": call,
        "proposed_by": actor.name,
        "proposed_at": now_iso(),
    }
    raise _propose(ws, actor, statement)


def _propose(ws: Workspace, actor: Actor, statement: dict[str, Any]) -> ChangePending:
    from dataward.evidence.load import trusted_state

    cid = change_id_of(statement)
    st = trusted_state(ws)
    signed = actor.name in st.admins()
    with write_transaction(ws.engine) as conn:
        require(actor.name, st.grants_of(actor.name), "admin.propose")
        admin_rows.insert_change(
            conn,
            cid,
            action=statement["action"],
            subject=statement["subject"],
            statement=canonical_json(statement).decode("utf-8"),
            proposed_by=actor.name,
            proposed_at=statement["proposed_at"],
        )
        if signed:
            admin_rows.insert_signature(conn, cid, actor.name, actor.keyid)
        auditlog.append(
            conn,
            [
                auditlog.PendingEntry(
                    actor, "admin.propose", Subject.change(cid), {"change": cid, "statement": statement}
                )
            ],
            log_key=ws.log_actor(),
            origin=ws.origin,
        )
    return ChangePending(
        cid, statement["action"], statement["subject"], 1 if signed else 0, st.effective_admin_threshold()
    )


def still_pending(ws: Workspace, conn: Transaction, cid: str) -> None:
    """Under the log's append lock: change ``cid`` is still pending (two admins signing at once: one applies)."""
    from dataward.evidence.load import trusted_state

    lock_for_append(conn)
    ch = trusted_state(ws, conn).changes.get(cid)
    if ch is None or ch.status != "pending":
        raise ConflictError(
            f"change {cid[:16]} is {'unknown' if ch is None else ch.status}, not pending",
            advice="`dataward admin pending` lists the changes still waiting for signatures.",
        )


@contextmanager
def _apply_signed(
    ws: Workspace, actor: Actor, action: str, subject: str, current: ApplyingChange
) -> Iterator[AdminChange]:
    from dataward.evidence.load import trusted_state

    ev = current.change
    if actor is not current.signer or action != ev.action or subject != ev.subject:
        raise ConflictError(
            f"change {ev.id[:16]} applies {ev.action} of {ev.subject}, not {action} of {subject}",
            advice="Withdraw the change (`dataward admin withdraw`) and propose it again.",
        )
    try:
        with write_transaction(ws.engine) as conn:
            still_pending(ws, conn, ev.id)
            require(actor.name, trusted_state(ws).grants_of(actor.name), action)
            ch = AdminChange(conn, actor, action, subject, applies_now=True)
            yield ch
            made = json.loads(canonical_json(ch.details))  # as the log will hold it (lists, not tuples)
            signed = ev.statement.get("details") or {}
            if made != signed:
                diff = sorted(k for k in set(made) | set(signed) if made.get(k) != signed.get(k))
                raise ConflictError(
                    f"change {ev.id[:16]} no longer applies as signed: the workspace changed since it was "
                    f"proposed ({', '.join(diff)} differ)",
                    advice="Withdraw it (`dataward admin withdraw`) and propose the change again.",
                )
            ch.entries = auditlog.append(
                conn,
                [
                    auditlog.PendingEntry(actor, "admin.sign", Subject.change(ev.id), {"change": ev.id}),
                    auditlog.PendingEntry(
                        actor, action, subject, {**made, "change": ev.id, "signers": list(current.signers)}
                    ),
                    *ch.extra_entries,
                ],
                log_key=ws.log_actor(),
                origin=ws.origin,
            )
            admin_rows.insert_signature(conn, ev.id, actor.name, actor.keyid)
            admin_rows.set_status(conn, ev.id, "applied")
    except AuthorizationError as exc:
        ws.record_denial(actor.name, action, subject, str(exc))
        raise
