"""The replay remembers authorization decisions only while the grants they rest on stand: a grant or a
revocation between two entries of the same principal, action and source changes the second one's outcome."""

from __future__ import annotations

import random
from typing import Any

import pytest

from dataward.access import allowed
from dataward.core.canonical import canonical_json
from dataward.evidence import replay as rp
from dataward.model.log_entry import RawEntry

LOG_KEY = "k-log"


class _Log:
    """Hand-made log rows (the replay with ``check_signatures=False`` judges their content, not the bytes)."""

    def __init__(self) -> None:
        self.rows: list[RawEntry] = []
        self.add("workspace.init", "workspace:w", {}, principal=rp.LOG_PRINCIPAL, keyid=LOG_KEY)
        self.add("principal.add", "principal:admin", {"keyid": "k-admin", "roles": ["admin"]}, principal="admin")

    def add(self, action: str, subject: str, details: dict[str, Any], *, principal: str, keyid: str = "") -> int:
        seq = len(self.rows)
        keyid = keyid or f"k-{principal}"
        t = f"2026-01-01T00:00:{seq // 60:02d}.{seq % 60:06d}Z"
        body = {
            "action": action,
            "details": details,
            "keyid": keyid,
            "principal": principal,
            "seq": seq,
            "subject": subject,
            "time": t,
        }
        self.rows.append(RawEntry(seq, t, principal, action, subject, keyid, canonical_json(body), b"s" * 64))
        return seq

    def replay(self) -> rp.TrustedState:
        return rp.replay(self.rows, {}, check_signatures=False)


def _denied(st: rp.TrustedState) -> list[int | None]:
    return [p.seq for p in st.problems if "did not hold a role" in p.detail]


def test_a_revocation_and_a_grant_between_entries_change_the_outcome() -> None:
    log = _Log()
    log.add("principal.add", "principal:bob", {"keyid": "k-bob", "roles": ["screener@s1"]}, principal="admin")
    screen = ("batch.screen", "batch:b1", {"source": "s1"})
    ok1 = log.add(*screen, principal="bob")
    log.add("role.revoke", "principal:bob", {"roles": ["screener@s1"]}, principal="admin")
    no1 = log.add(*screen, principal="bob")
    no2 = log.add(*screen, principal="bob")  # the remembered refusal
    log.add("role.grant", "principal:bob", {"roles": ["screener@s1"]}, principal="admin")
    ok2 = log.add(*screen, principal="bob")
    other = log.add("batch.screen", "batch:b2", {"source": "s2"}, principal="bob")  # another source: its own answer
    log.add("role.grant", "principal:bob", {"roles": ["screener"]}, principal="admin")  # now for every source
    ok3 = log.add("batch.screen", "batch:b2", {"source": "s2"}, principal="bob")
    st = log.replay()
    assert _denied(st) == [no1, no2, other]
    assert {ok1, ok2, ok3}.isdisjoint(p.seq for p in st.problems)
    # the memo holds only the answers of the grants as they are at the end
    assert st._allowed == {("bob", "batch.screen", "s2"): True}


def test_the_memo_is_not_kept_in_a_fork_or_compared() -> None:
    log = _Log()
    log.add("principal.add", "principal:bob", {"keyid": "k-bob", "roles": ["trainer"]}, principal="admin")
    log.add("run.record", "run:r1", {}, principal="bob")
    st = log.replay()
    assert st._allowed
    fork = st.fork()
    assert fork._allowed == {} and fork == st


@pytest.mark.parametrize("seed", range(6))
def test_same_outcome_as_deciding_every_entry_afresh(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # random grants, revocations and actions by a few principals on two sources: the problems are exactly
    # those of a replay that asks access.allowed for every entry
    r = random.Random(seed)
    log = _Log()
    people = ["bob", "eve", "sam"]
    roles = ["screener", "screener@s1", "trainer", "approver@s2", "auditor"]
    for who in people:
        log.add(
            "principal.add", f"principal:{who}", {"keyid": f"k-{who}", "roles": [r.choice(roles)]}, principal="admin"
        )
    actions = ["batch.screen", "run.record", "batch.verify", "redteam.run", "batch.reject"]
    for _ in range(400):
        who = r.choice(people)
        x = r.random()
        if x < 0.15:
            log.add("role.grant", f"principal:{who}", {"roles": r.sample(roles, 2)}, principal="admin")
        elif x < 0.3:
            log.add("role.revoke", f"principal:{who}", {"roles": r.sample(roles, 2)}, principal="admin")
        else:
            src = r.choice(["s1", "s2", None])
            details = {} if src is None else {"source": src}
            log.add(r.choice(actions), f"batch:{r.randrange(5)}", details, principal=who)
    memo = log.replay()

    def afresh(state: rp.TrustedState, principal: str, action: str, source: str | None) -> bool:
        return allowed(state.grants_of(principal), action, source)

    monkeypatch.setattr(rp, "_allowed", afresh)
    fresh = log.replay()
    assert memo.problems == fresh.problems
    assert len(_denied(memo)) > 10 and len(_denied(memo)) < 300  # both outcomes occur
    assert memo.grants == fresh.grants and memo.entries == fresh.entries
