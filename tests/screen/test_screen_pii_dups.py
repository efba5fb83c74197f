"""PII of each kind (masked in every report), duplicate floods and label conflicts."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from dataward.screen.api import check_table
from dataward.screen.interface import Severity
from dataward.screen.pii import iban_ok, luhn_ok, mask, redact
from dataward.screen.policy import ScreenPolicy

PII = {
    "email": ("write to jane.roe@example.org please", "jane.roe@example.org"),
    "phone": ("call +1 415-555-0132 after six", "415-555-0132"),
    "payment_card": ("paid with 4111 1111 1111 1111 yesterday", "4111 1111 1111 1111"),
    "iban": ("wire to DE89 3704 0044 0532 0130 00 now", "3704 0044 0532"),
    "us_ssn": ("my ssn is 123-45-6789", "123-45-6789"),
    "ip_address": ("login from 203.0.113.77 failed", "203.0.113.77"),
    "secret": ("aws key AKIAIOSFODNN7EXAMPLE leaked", "AKIAIOSFODNN7EXAMPLE"),
    "high_entropy": ("token Zk3qLp9XvB2mN7rT4wY8cE1uH6sJ0dGa", "Zk3qLp9XvB2mN7rT4wY8cE1uH6sJ0dGa"),
}
CLEAN = ["the weather is nice", "version 2024-01-15 released", "total 1234 items", "order number 98765"]


def pii_table() -> pa.Table:
    texts = list(CLEAN * 5)
    for text, _raw in PII.values():
        texts.append(text)
    return pa.table({"text": texts, "n": list(range(len(texts)))})


def test_every_pii_kind_is_found_and_masked() -> None:
    report = check_table(pii_table(), checks=["pii"])
    found = {f.kind: f for f in report.findings}
    assert set(found) == set(PII)
    for kind in PII:
        f = found[kind]
        assert f.evidence["matches"] == 1 and len(f.records) == 1
        assert f.severity.rank >= Severity.HIGH.rank
    dumped = report.to_json() + report.summary() + report.to_html()
    for _text, raw in PII.values():
        assert raw not in dumped, raw
    assert found["secret"].severity == Severity.CRITICAL


def test_pii_policy_warn_lowers_severity_and_ignore_drops_kinds() -> None:
    policy = ScreenPolicy(pii="warn", pii_ignore=("ip_address",))
    report = check_table(pii_table(), checks=["pii"], policy=policy)
    kinds = {f.kind: f.severity for f in report.findings}
    assert "ip_address" not in kinds
    assert kinds["email"] == Severity.LOW and kinds["secret"] == Severity.MEDIUM
    assert not report.failed(Severity.HIGH)


def test_validators_reject_lookalikes() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB82 WEST 1234 5698 7654 33")
    report = check_table(
        pa.table({"t": ["card 4111 1111 1111 1112", "ssn 000-12-3456", "id 1234567890123"]}), checks=["pii"]
    )
    assert report.findings == []
    assert mask("email", "jane.roe@example.org") == "j***@e***.org"
    assert redact("mail jane.roe@example.org") == "mail j***@e***.org"


def _records(n: int, seed: int) -> dict[str, list]:
    r = np.random.default_rng(seed)
    return {
        "a": r.normal(size=n).tolist(),
        "b": r.choice(["x", "y", "z"], n).tolist(),
        "label": r.choice(["pos", "neg"], n).tolist(),
    }


def test_exact_duplicate_flood_and_conflicting_labels() -> None:
    d = _records(5000, 1)
    for i in range(100, 200):  # a flood: 100 copies of record 7
        for k in d:
            d[k][i] = d[k][7]
    for i in range(300, 303):  # same features as record 9, other label
        d["a"][i], d["b"][i] = d["a"][9], d["b"][9]
        d["label"][i] = "neg" if d["label"][9] == "pos" else "pos"
    report = check_table(pa.table(d), checks=["duplicates"], label="label")
    flood = [f for f in report.findings if f.kind == "exact_duplicates_flood"]
    assert flood and flood[0].severity == Severity.HIGH
    assert set(flood[0].records) == {7, *range(100, 200)}
    conflict = [f for f in report.findings if f.kind == "conflicting_labels"]
    assert conflict and {9, 300, 301, 302} <= set(conflict[0].records)
    assert report.result("duplicates").stats["cluster_sizes"][0] == 101


@pytest.mark.slow
def test_near_duplicate_text_flood() -> None:
    r = np.random.default_rng(2)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho".split()  # noqa: SIM905
    texts = [" ".join(r.choice(words, 15)) for _ in range(3000)]
    spam = "limited offer buy cheap pills online today with free shipping worldwide guaranteed"
    for i in range(0, 3000, 50):  # 60 variants with small edits
        texts[i] = spam + ("!!" if i % 100 else "") + f" {i % 7}"
    report = check_table(pa.table({"text": texts}), checks=["duplicates"], text="text")
    floods = [f for f in report.findings if f.kind == "near_duplicates_flood"]
    assert floods, report.summary()
    assert set(range(0, 3000, 50)) <= set(floods[0].records)


def _png(seed: int, noise: float = 0.0) -> bytes:
    r = np.random.default_rng(seed)
    base = (np.indices((32, 32)).sum(axis=0) * 4 + seed * 37) % 256
    img = np.clip(base + r.normal(0, noise, (32, 32)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img, "L").resize((64, 64)).save(buf, "PNG")
    return buf.getvalue()


def test_near_duplicate_images_by_phash() -> None:
    blobs = [_png(i) for i in range(40)]
    blobs += [_png(3, noise=2.0 + i * 0.1) for i in range(15)]  # near copies of image 3
    blobs.append(b"not an image")
    report = check_table(pa.table({"image": pa.array(blobs, pa.binary())}), checks=["duplicates"])
    near = [f for f in report.findings if f.kind == "near_images_flood"]
    assert near, report.summary()
    assert set(range(40, 55)) <= set(near[0].records)
    assert any(f.kind == "undecodable_images" for f in report.findings)


@pytest.mark.parametrize("policy_min", [5, 500])
def test_flood_threshold_follows_policy(policy_min: int) -> None:
    d = _records(2000, 3)
    for i in range(10, 30):
        for k in d:
            d[k][i] = d[k][0]
    report = check_table(pa.table(d), checks=["duplicates"], policy=ScreenPolicy(duplicate_min_cluster=policy_min))
    kinds = {f.kind for f in report.findings}
    assert ("exact_duplicates_flood" in kinds) == (policy_min <= 21)
    json.loads(report.to_json())
