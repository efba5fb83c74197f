"""The thin I/O layer of evidence-first trust: read log rows and public keys, replay them, cache the result.

The cache lives on the :class:`~dataward.workspace.Workspace` object: entries already replayed are never
re-read (a row rewritten afterwards cannot change what was verified), new ones are replayed on top.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dataward.evidence.replay import TrustedState, replay
from dataward.store.catalog import Transaction
from dataward.store.evidence_repo import catalog_rows, last_leaf, public_keys, raw_entries

if TYPE_CHECKING:
    from dataward.workspace import Workspace

_CACHE_ATTR = "_trusted_state"


class TierRule(Protocol):
    """One tier of a parsed policy, as far as the evidence layer reads it."""

    @property
    def approvals(self) -> int:
        """Distinct approvals a batch of this tier needs."""
        ...


class ParsedPolicy(Protocol):
    """A parsed policy, as far as the evidence layer reads it: its tiers."""

    @property
    def tiers(self) -> Mapping[str, TierRule]:
        """Tier name -> its rules."""
        ...


class PolicyBook(Protocol):
    """What the evidence layer needs from the policy layer above it, passed in by the caller (python-tuf's
    style of collaborator): :mod:`dataward.workflow.approval_policy` itself satisfies it."""

    def policy_path(self, ws: Workspace) -> Path:
        """The workspace's policy file."""
        ...

    def parse_policy(self, text: str, where: str = ...) -> ParsedPolicy:
        """Parse and validate a policy text; an invalid one raises :class:`~dataward.errors.Error`."""
        ...


def default_policy_text() -> str:
    """The packaged default policy, read as package data (its parser lives in the workflow layer, above this)."""
    files = resources.files("dataward").joinpath("workflow").joinpath("default_policy.toml")
    return files.read_text(encoding="utf-8")


def default_policy_digest() -> str:
    """The SHA-256 of the packaged default policy: the policy in force until a ``policy.set`` entry."""
    return hashlib.sha256(default_policy_text().encode("utf-8")).hexdigest()


def replay_log(
    conn: Transaction,
    *,
    state: TrustedState | None = None,
    check_signatures: bool = True,
    distrust: frozenset[int] = frozenset(),
    keep_bodies: bool = False,
) -> TrustedState:
    """Replay the log read through ``conn`` (on top of ``state``, from its size on); ``keep_bodies`` as
    :func:`dataward.evidence.replay.replay`."""
    st = state if state is not None else TrustedState(default_policy=default_policy_digest())
    return replay(
        raw_entries(conn, st.size),
        public_keys(conn),
        state=st,
        check_signatures=check_signatures,
        distrust=distrust,
        keep_bodies=keep_bodies,
    )


def _refresh(conn: Transaction, cached: TrustedState | None) -> TrustedState:
    # the cached prefix is kept only while the log still ends it the same way; a log that was rewound
    # (restored from a backup) is replayed from scratch: detecting the rewind is the witness's job
    if cached is not None and last_leaf(conn, cached.size) != cached.last_leaf:
        cached = None
    st = replay_log(conn, state=cached)
    st.last_leaf = last_leaf(conn, st.size)
    return st


def trusted_state(ws: Workspace, conn: Transaction | None = None) -> TrustedState:
    """The workspace's trusted state, replaying only entries appended since the last call.

    Without ``conn`` it reads committed entries only and caches the result on ``ws``; with ``conn`` (a
    read transaction of the caller's) the result is not cached, since that transaction may yet roll back.
    """
    cached: TrustedState | None = getattr(ws, _CACHE_ATTR, None)
    if conn is not None:
        fresh = _refresh(conn, None if cached is None else cached.fork())
        return fresh
    with ws.engine.connect() as c:
        st = _refresh(c, cached)
    setattr(ws, _CACHE_ATTR, st)
    return st


def policy_requirements(ws: Workspace, digests: set[str], policies: PolicyBook) -> Mapping[str, Mapping[str, int]]:
    """policy digest -> tier -> approvals required, for the policies whose text can be found and matches:
    the stored copy (``policy.set`` keeps one in the meta area), the workspace file, or the packaged default.
    ``policies`` parses them (:mod:`dataward.workflow.approval_policy`)."""
    from dataward.errors import Error

    texts: list[str] = [default_policy_text()]
    with contextlib.suppress(OSError, UnicodeDecodeError):
        texts.append(policies.policy_path(ws).read_text(encoding="utf-8"))
    for d in digests:
        try:
            texts.append(ws.objects.read_bytes("meta", d, verify=True).decode("utf-8"))
        except (Error, OSError, UnicodeDecodeError, ValueError):
            continue
    out: dict[str, dict[str, int]] = {}
    for text in texts:
        d = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if d in digests and d not in out:
            try:
                p = policies.parse_policy(text, f"policy {d[:12]}")
            except Error:
                continue
            out[d] = {name: tier.approvals for name, tier in p.tiers.items()}
    return out


def _signed_manifests(ws: Workspace, st: TrustedState) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """batch manifest digest -> signed predicate, for every batch the log acquired (re-hashed on read)."""
    from dataward.core import dsse
    from dataward.errors import Error

    out: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for b in st.batches.values():
        try:
            data = ws.objects.read_bytes("meta", b.manifest, verify=True)
            pred = dsse.parse_statement(dsse.Envelope.from_bytes(data)).predicate
        except (Error, OSError, ValueError) as exc:
            problems.append(f"batch {b.id}: its signed manifest {b.manifest[:16]} cannot be read ({exc})")
            continue
        if isinstance(pred, dict):
            out[b.manifest] = pred
    return out, problems


def projection_divergences(ws: Workspace, conn: Transaction, st: TrustedState) -> list[Any]:
    """Every catalog row or cell of a projected table that the replayed log ``st`` does not support."""
    from dataward.evidence.projection import KEYS, Divergence, compare, expected

    manifests, problems = _signed_manifests(ws, st)
    want = expected(st, origin=ws.origin, manifests=manifests)
    out: list[Divergence] = [Divergence("batches", p.split(":")[0][6:], None, p) for p in problems]
    for table in KEYS:
        out += compare(table, want[table], catalog_rows(conn, table), strict_rows=table != "meta")
    return out
