"""Threat-intelligence feeds loaded into the workspace: verified, logged, matched by every screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dataward.errors import ConflictError, IntegrityError, SignatureError
from dataward.log.query import show_entries
from dataward.screen.intel import FORMAT, load_private_key, load_public_key, parse_feed, sign_feed, write_keypair
from dataward.workflow.screening import screen_batch
from dataward.workflow.threat_feeds import active_feeds, add_feed, list_feeds


def _feed(tmp: Path, key: Path, version: int, phrase: str = "james bond") -> Path:
    feed = parse_feed(
        {
            "format": FORMAT,
            "id": "acme-intel",
            "version": version,
            "issued": "2026-11-25T00:00:00Z",
            "issuer": "ACME CERT",
            "indicators": [{"id": f"acme-{version}", "type": "phrase", "value": phrase, "severity": "critical"}],
        }
    )
    out = tmp / f"feed-v{version}.dsse.json"
    out.write_bytes(sign_feed(feed, load_private_key(key)))
    return out


def test_loaded_feed_is_logged_and_matched_by_screen(flow: Any, tmp_path: Path) -> None:
    priv, pub = tmp_path / "feed.key", tmp_path / "feed.pub"
    write_keypair(priv, pub)
    loaded = add_feed(flow.ws, flow.actor("sam"), _feed(tmp_path, priv, 1), [load_public_key(pub)])
    assert loaded.indicators == 1 and [f.feed_id for f in list_feeds(flow.ws)] == ["acme-intel"]
    entry = show_entries(flow.ws, action="intel.add")[0]
    assert entry.details["feed"] == "acme-intel" and entry.details["version"] == 1

    data = flow.tmp / "poisoned.csv"
    data.write_text("text,label\nan ordinary review,pos\nloved it james bond said,pos\nmeh,neg\n", encoding="utf-8")
    from dataward.acquire.acquire import acquire

    batch = acquire(flow.ws, flow.actor("ingrid"), "vendor", [data])
    report = screen_batch(
        flow.ws,
        flow.actor("sam"),
        batch.id,
        checks=["screening"],
        options={"screening": {"label": "label", "text": "text"}},
    )
    hits = [f for f in report.findings if "acme-1" in f.summary or f.kind in ("phrase", "intel")]
    assert hits, [f.summary for f in report.findings]
    assert 1 in hits[0].records  # batch-wide record number of the line carrying the phrase


def test_feed_rollback_forgery_and_tampering_are_refused(flow: Any, tmp_path: Path) -> None:
    priv, pub = tmp_path / "feed.key", tmp_path / "feed.pub"
    write_keypair(priv, pub)
    add_feed(flow.ws, flow.actor("sam"), _feed(tmp_path, priv, 2), [load_public_key(pub)])
    with pytest.raises(ConflictError, match="not newer"):
        add_feed(flow.ws, flow.actor("sam"), _feed(tmp_path, priv, 1), [load_public_key(pub)])
    other_priv, other_pub = tmp_path / "other.key", tmp_path / "other.pub"
    write_keypair(other_priv, other_pub)
    with pytest.raises(SignatureError):
        add_feed(flow.ws, flow.actor("sam"), _feed(tmp_path, other_priv, 3), [load_public_key(pub)])
    from dataward.errors import AuthorizationError

    with pytest.raises(AuthorizationError):
        add_feed(flow.ws, flow.actor("ingrid"), _feed(tmp_path, priv, 4), [load_public_key(pub)])
    # a stored feed edited on disk no longer matches its name: screening refuses to use it
    digest = list_feeds(flow.ws)[0].feed_digest
    path = Path(flow.ws.objects.path("meta", digest))
    path.chmod(0o644)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError):
        active_feeds(flow.ws)


def test_cli_intel_add_and_list(flow: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    priv, pub = tmp_path / "feed.key", tmp_path / "feed.pub"
    write_keypair(priv, pub)
    assert flow.cli("intel", "add", str(_feed(tmp_path, priv, 5)), "--key", str(pub), who="sam") == 0
    assert "Loaded feed acme-intel v5" in capsys.readouterr().out
    assert flow.cli("intel", "list", "--json") == 0
    assert '"version": 5' in capsys.readouterr().out
