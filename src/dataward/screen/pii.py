"""Personal data and secrets in string columns: detection with validation, counts per kind, masked examples.

Kinds: ``email``, ``phone``, ``payment_card`` (Luhn), ``iban`` (ISO 13616 mod-97), ``us_ssn`` (area,
group and serial rules), ``ip_address`` (IPv4/IPv6 via :mod:`ipaddress`), ``secret`` (known API-key and
private-key formats) and ``high_entropy`` (long base64-like tokens with high Shannon entropy).

A combined RE2 prefilter (pyarrow) picks the candidate cells in bulk; only those are looked at in Python.
Examples are masked (:func:`mask`) before they enter any report; :func:`redact` masks every match in a
string and is what other checks use for their own examples. ``ScreenPolicy.pii`` decides whether PII
blocks approval (``block``: high, secrets critical) or only warns (``warn``: low, secrets medium).
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataward.screen._util import RecordSink, fmt_share, is_string, regex_mask
from dataward.screen.interface import Check, CheckResult, Finding, Severity
from dataward.screen.registry import register

_SECRET_PATTERNS = (
    r"AKIA[0-9A-Z]{16}",
    r"ASIA[0-9A-Z]{16}",
    r"gh[pousr]_[A-Za-z0-9]{36,}",
    r"github_pat_[A-Za-z0-9_]{40,}",
    r"xox[abprs]-[A-Za-z0-9-]{10,}",
    r"[sr]k_live_[0-9A-Za-z]{20,}",
    r"AIza[0-9A-Za-z_\-]{35}",
    r"sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{32,}",
    r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}",
    r"glpat-[A-Za-z0-9_\-]{20}",
    r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----",
    r"eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",
)

#: kind -> regex (valid in both Python ``re`` and RE2)
PATTERNS: dict[str, str] = {
    "email": r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,8}\.[A-Za-z]{2,24}",
    "secret": "(?:" + "|".join(_SECRET_PATTERNS) + ")",
    "iban": r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
    "payment_card": r"\b[0-9](?:[ \-]?[0-9]){12,18}\b",
    "us_ssn": r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b",
    "phone": r"(?:\+[0-9]{1,3}[ .\-]?)?(?:\([0-9]{2,4}\)[ .\-]?|\b[0-9]{2,4}[ .\-])[0-9]{3,4}[ .\-][0-9]{3,5}\b"
    r"|\+[0-9]{8,14}\b",
    "ip_address": r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b|\b(?:[0-9A-Fa-f]{1,4}:|:){2,7}[0-9A-Fa-f]{1,4}\b",
    "high_entropy": r"[A-Za-z0-9+/_\-]{32,512}={0,2}",
}
KINDS = tuple(PATTERNS)
# Python's engine backtracks: each pattern starts only where its first character class starts a run, so a
# long run of such characters is scanned once, not once per position (no quadratic blow-up on huge cells)
_STARTS = {
    "email": r"(?<![A-Za-z0-9._%+\-])",
    "high_entropy": r"(?<![A-Za-z0-9+/_\-])",
    "payment_card": r"(?<![0-9])",
    "phone": r"(?<![0-9+])",
}
_COMPILED = {k: re.compile(_STARTS.get(k, "") + v) for k, v in PATTERNS.items()}
_PREFILTER = "|".join(f"(?:{p})" for p in PATTERNS.values())

_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IL": 23,
    "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28,
    "PT": 25, "RO": 24, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26,
}  # fmt: skip


def luhn_ok(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum used by payment card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    """True when ``text`` has a valid IBAN length for its country and passes the mod-97 check."""
    s = text.replace(" ", "").upper()
    expected = _IBAN_LENGTHS.get(s[:2])
    if expected is not None and len(s) != expected:
        return False
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in moved))
    except ValueError:
        return False
    return number % 97 == 1


def _card_ok(text: str) -> bool:
    digits = re.sub(r"[ \-]", "", text)
    if not 13 <= len(digits) <= 19 or digits[0] not in "3456" or len(set(digits)) < 2:
        return False
    return luhn_ok(digits)


def _ssn_ok(text: str) -> bool:
    area, group, serial = text.split("-")
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _phone_ok(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    if not 10 <= len(digits) <= 15 or len(set(digits)) < 3:
        return False
    # dates, versions and dotted numbers are not phones
    return not re.fullmatch(r"\d{4}[.\-]\d{2}[.\-]\d{2}.*", text)


def _ip_ok(text: str) -> bool:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        return True
    return not text.startswith("0.")


def entropy(text: str) -> float:
    """Shannon entropy of the characters of ``text``, in bits per character."""
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _entropy_ok(text: str) -> bool:
    t = text.rstrip("=")
    classes = sum(bool(re.search(p, t)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
    return len(t) >= 32 and classes == 3 and entropy(t) >= 4.2


_VALIDATORS: dict[str, Callable[[str], bool]] = {
    "payment_card": _card_ok,
    "iban": iban_ok,
    "us_ssn": _ssn_ok,
    "phone": _phone_ok,
    "ip_address": _ip_ok,
    "high_entropy": _entropy_ok,
}


def find_pii(text: str, kinds: tuple[str, ...] = KINDS) -> Iterator[tuple[str, str, int, int]]:
    """Validated matches in ``text`` as (kind, match, start, end); overlapping weaker kinds are dropped."""
    taken: list[tuple[int, int]] = []
    for kind in kinds:  # the order of PATTERNS is the priority: a secret is not also high-entropy
        for m in _COMPILED[kind].finditer(text):
            s, e = m.span()
            if any(s < b and a < e for a, b in taken):
                continue
            value = m.group(0)
            check = _VALIDATORS.get(kind)
            if check is not None and not check(value):
                continue
            taken.append((s, e))
            yield kind, value, s, e


def mask(kind: str, value: str) -> str:
    """A masked form of a PII value that keeps enough to recognise the kind, never enough to use it."""
    if kind == "email":
        local, _, domain = value.partition("@")
        host, _, tld = domain.rpartition(".")
        return f"{local[:1]}***@{host[:1]}***.{tld}"
    if kind in ("payment_card", "iban"):
        compact = re.sub(r"[ \-]", "", value)
        head = compact[:2] if kind == "iban" else ""
        return f"{head}{'*' * (len(compact) - 4 - len(head))}{compact[-4:]}"
    if kind == "us_ssn":
        return "***-**-" + value[-4:]
    if kind == "phone":
        digits = [i for i, c in enumerate(value) if c.isdigit()]
        keep = set(digits[-2:])
        return "".join(c if (not c.isdigit() or i in keep) else "*" for i, c in enumerate(value))
    if kind == "ip_address":
        if "." in value:
            return value.split(".")[0] + ".*.*.*"
        return value.split(":")[0] + ":****"
    return f"{value[:4]}…[{len(value)} chars]"


def redact(text: str) -> str:
    """``text`` with every detected PII value replaced by its masked form."""
    if not text:
        return text
    out, last = [], 0
    for kind, value, s, e in sorted(find_pii(text), key=lambda t: t[2]):
        out.append(text[last:s])
        out.append(mask(kind, value))
        last = e
    out.append(text[last:])
    return "".join(out)


def _mask_match(kind: str, m: re.Match[str]) -> str:
    return mask(kind, m.group(0))


def redact_kinds(text: str, kinds: Iterable[str]) -> str:
    """``text`` masked for display: every validated PII value, and also every raw match of the given kinds'
    patterns, validated or not. The console passes the kinds found anywhere in a batch, so a value a rule
    matched elsewhere in the batch is masked here too, even when its validator would not accept it."""
    text = redact(text)
    for kind in kinds:
        pattern = _COMPILED.get(kind)
        if pattern is not None and kind != "high_entropy":  # already-masked values end in "…[N chars]"
            text = pattern.sub(functools.partial(_mask_match, kind), text)
    return text


@register
class PiiCheck(Check):
    """Finds personal data and secrets in string cells: e-mail, phone, payment card
    (Luhn), IBAN (mod-97), US SSN, IP address, secrets, high-entropy strings.
    """

    name = "pii"
    thread_safe = True  # its state is its own (ADR 0104)
    needs_batch_profile = False
    description = "e-mail, phone, payment card (Luhn), IBAN (mod-97), US SSN, IP address, secrets, high-entropy"

    def begin(self, ctx: Any) -> None:
        """Select the PII kinds the policy does not ignore and build one prefilter regex over them."""
        super().begin(ctx)
        self._kinds = tuple(k for k in KINDS if k not in ctx.policy.pii_ignore)
        self._prefilter = "|".join(f"(?:{PATTERNS[k]})" for k in self._kinds)
        self._sinks = {k: RecordSink() for k in self._kinds}
        self._matches: Counter[str] = Counter()
        self._columns: dict[str, Counter[str]] = {k: Counter() for k in self._kinds}
        self._examples: dict[str, list[str]] = {k: [] for k in self._kinds}

    def update(self, batch: pa.RecordBatch, offset: int) -> None:
        """Validate the prefilter's candidate cells of this batch, counting
        matches per kind and column and keeping masked examples.
        """
        if not self._kinds:
            return
        for name in batch.schema.names:
            arr = batch.column(name)
            if not is_string(arr.type):
                continue
            cand = regex_mask(arr, self._prefilter)
            if not cand.any():
                continue
            idx = np.flatnonzero(cand)
            values = pc.take(arr, pa.array(idx)).to_pylist()
            for i, text in zip(idx.tolist(), values, strict=True):
                if text is None:
                    continue
                seen: set[str] = set()
                for kind, value, _s, _e in find_pii(text, self._kinds):
                    self._matches[kind] += 1
                    self._columns[kind][name] += 1
                    if kind not in seen:
                        seen.add(kind)
                        self._sinks[kind].add(offset + i)
                    ex = self._examples[kind]
                    if len(ex) < 3:
                        masked = mask(kind, value)
                        if masked not in ex:
                            ex.append(masked)

    def finish(self) -> CheckResult:
        """One finding per PII kind found; secrets are CRITICAL when the
        policy blocks on PII, other kinds take the policy's severity.
        """
        ctx = self.context
        n = max(ctx.n_records, 1)
        block = ctx.policy.pii == "block"
        findings = []
        for kind in self._kinds:
            sink = self._sinks[kind]
            if not sink.count:
                continue
            secret_sev = Severity.CRITICAL if block else Severity.MEDIUM
            sev = secret_sev if kind == "secret" else ctx.policy.pii_severity
            cols = dict(self._columns[kind].most_common(10))
            findings.append(
                Finding(
                    self.name,
                    kind,
                    sev,
                    f"{self._matches[kind]} {kind.replace('_', ' ')} value(s) in {sink.count} record(s) "
                    f"({fmt_share(sink.count / n)}), columns {', '.join(cols)}",
                    sink.tuple,
                    {
                        "kind": kind,
                        "matches": self._matches[kind],
                        "n_records": sink.count,
                        "columns": cols,
                        "examples": list(self._examples[kind]),
                        "blocks_approval": block,
                    },
                )
            )
        counts = {k: self._matches[k] for k in self._kinds}
        return CheckResult(self.name, tuple(findings), {"counts": counts, "policy": ctx.policy.pii})
