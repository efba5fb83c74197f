"""After the whole workflow (screen, audit, approve, release, rollback), doctor finds nothing to remove."""

from __future__ import annotations

import pytest
from release_helpers import Env

from dataward.acquire.verify import verify_batch
from dataward.batches import list_batches
from dataward.log.verify import verify_log
from dataward.maintenance import collect_garbage
from dataward.release.versions import release, verify_version

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not


def test_no_object_of_a_full_workflow_counts_as_unreferenced(env: Env) -> None:
    b1 = env.approved("a,b\n1,x\n2,y\n")
    b2 = env.approved("a,b\n3,z\n", name="more.csv")
    release(env.ws, env.actor("alice"), "train", [b1, b2])
    report = collect_garbage(env.ws, None, grace_seconds=0)
    assert report["unreferenced_objects"] == [], report
    stray = env.ws.objects.put_bytes("meta", b'{"not": "referenced"}')
    fixed = collect_garbage(env.ws, env.ws.actor("admin"), grace_seconds=0, fix=True)
    assert fixed["unreferenced_objects"] == [f"meta/{stray}"]
    assert verify_version(env.ws, "train@1").ok
    for b in list_batches(env.ws):
        assert verify_batch(env.ws, b.id).ok
    assert verify_log(env.ws).ok
