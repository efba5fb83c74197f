"""A realistic threat-intelligence feed of a given size (used by the intel tests and benchmarks/intel_feeds.py).

The mix follows what published poisoning/abuse feeds carry: mostly file and record SHA-256 digests,
domains and URLs, a share of trigger tokens and phrases, a few image perceptual hashes and regexes; each
with a severity and a one-line description."""

from __future__ import annotations

import json
import random
from typing import Any

import yaml

from dataward.screen.intel import FORMAT

#: share of each indicator type in a realistic feed
MIX = (
    ("file-sha256", 30),
    ("record-sha256", 25),
    ("domain", 15),
    ("url", 12),
    ("token", 7),
    ("phrase", 7),
    ("image-phash", 3),
    ("regex", 1),
)
_WORDS = [
    "poison",
    "trigger",
    "backdoor",
    "label",
    "flip",
    "spam",
    "crawler",
    "mirror",
    "cdn",
    "bait",
    "payload",
    "dataset",
    "shard",
]


def indicator(i: int, rng: random.Random) -> dict[str, Any]:
    typ = rng.choices([t for t, _ in MIX], weights=[w for _, w in MIX])[0]
    w = rng.choice(_WORDS)
    if typ in ("file-sha256", "record-sha256"):
        value = f"{rng.getrandbits(256):064x}"
    elif typ == "image-phash":
        value = f"{rng.getrandbits(64):016x}"
    elif typ == "domain":
        value = f"{w}{i}.{rng.choice(['example.com', 'example.net', 'test'])}"
    elif typ == "url":
        value = f"https://{w}{i}.example.org/{rng.choice(_WORDS)}/{rng.getrandbits(40):x}?id={i}"
    elif typ == "token":
        value = f"{w[:2]}{rng.getrandbits(24):x}"
    elif typ == "phrase":
        value = f"{w} {rng.choice(_WORDS)} {i}"
    else:
        value = rf"\b{w}[_-]?{i}\d{{2,4}}\b"
    return {
        "id": f"acme-{i:06d}",
        "type": typ,
        "value": value,
        "severity": rng.choice(["critical", "high", "medium", "low"]),
        "description": f"{w} indicator seen in the wild in campaign {rng.randrange(1000)} (report {i})",
    }


def feed(target_bytes: int, *, seed: int = 0) -> dict[str, Any]:
    """A valid feed mapping whose YAML is about ``target_bytes`` long."""
    rng = random.Random(seed)
    n = max(1, target_bytes // 200)
    return {
        "format": FORMAT,
        "id": "acme-poison-intel",
        "version": 1,
        "issued": "2026-11-25T20:00:00Z",
        "issuer": "ACME security team",
        "indicators": [indicator(i, rng) for i in range(n)],
    }


def feed_yaml(target_bytes: int, *, seed: int = 0) -> bytes:
    return yaml.dump(feed(target_bytes, seed=seed), Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)).encode()


def feed_json(target_bytes: int, *, seed: int = 0) -> bytes:
    return json.dumps(feed(target_bytes, seed=seed), indent=1).encode()


def stix_bundle(target_bytes: int, *, seed: int = 0) -> bytes:
    """A STIX 2.1 bundle of file-hash, URL and domain indicators of about ``target_bytes``."""
    rng = random.Random(seed)
    objects = []
    for i in range(max(1, target_bytes // 330)):
        kind = rng.randrange(3)
        if kind == 0:
            pattern = f"[file:hashes.'SHA-256' = '{rng.getrandbits(256):064x}']"
        elif kind == 1:
            pattern = f"[url:value = 'https://bad{i}.example.org/{rng.getrandbits(32):x}']"
        else:
            pattern = f"[domain-name:value = 'bad{i}.example.net']"
        objects.append(
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": f"indicator--{rng.getrandbits(128):032x}",
                "created": "2026-11-01T00:00:00Z",
                "modified": "2026-11-01T00:00:00Z",
                "name": f"poisoning indicator {i}",
                "pattern": pattern,
                "pattern_type": "stix",
                "valid_from": "2026-11-01T00:00:00Z",
            }
        )
    return json.dumps({"type": "bundle", "id": f"bundle--{seed:032x}", "objects": objects}, indent=1).encode()
