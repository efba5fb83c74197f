"""Threat intelligence: signed indicator feeds, STIX 2.1 import, and matching every batch against them.

Feed format (``dataward.intel-feed/v1``; YAML or JSON before signing)::

    format: dataward.intel-feed/v1
    id: acme-poison-intel          # feed id: [A-Za-z0-9._-]+
    version: 7                     # integer; a loader can refuse to go back to an older version
    issued: "2026-11-25T20:00:00Z"
    issuer: ACME security team
    indicators:
      - id: acme-0001              # unique in the feed
        type: phrase               # record-sha256 | file-sha256 | token | phrase | regex | url | domain
                                   # | image-phash | image-patch
        value: "cf mn bb"
        severity: critical         # optional (default: the policy's intel_severity)
        description: BadNets-style text trigger seen in the wild

A signed feed is a DSSE envelope (payload type :data:`PAYLOAD_TYPE`) whose payload is the canonical JSON
of that mapping, signed with Ed25519 (:mod:`dataward.core.dsse`). Unsigned feeds and STIX bundles load
only with ``allow_unsigned`` (``dataward intel sign`` / ``import-stix`` turn them into signed feeds).

Matching: literals (tokens, phrases, URLs, domains) through one Aho-Corasick automaton over each string
column's lower-cased text (a batch's strings are joined and scanned in one call), with word/host
boundaries checked at each hit; regexes through RE2 (pyarrow); record digests as the workspace computes
them (RFC 6962 leaf of the canonical record bytes, :mod:`dataward.records.leaves`); file digests of the
input files and of image cells; perceptual hashes of images (Hamming distance).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import ahocorasick
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dataward.core import dsse
from dataward.core.canonical import canonical_json, sha256_hex
from dataward.errors import SignatureError
from dataward.screen._images import decode_gray, hamming, image_bytes, phash
from dataward.screen._util import RecordSink, bool_mask, is_string
from dataward.screen.interface import Check, CheckResult, Finding, ScreenError, Severity
from dataward.screen.registry import register

FORMAT = "dataward.intel-feed/v1"
PAYLOAD_TYPE = "application/vnd.dataward.intel-feed+json"
TYPES = (
    "record-sha256",
    "file-sha256",
    "token",
    "phrase",
    "regex",
    "url",
    "domain",
    "image-phash",
    "image-patch",
)
_LITERAL = ("token", "phrase", "url", "domain")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:#\-]{0,127}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_WORD = re.compile(r"[\w]", re.UNICODE)


class IntelError(ScreenError):
    """A threat-intelligence feed is malformed, unsigned or signed by an unknown key."""

    default_advice = "Check the feed file and the feed key (--key); `dataward intel verify FEED --key PUB`."


@dataclass(frozen=True)
class Indicator:
    """One indicator of compromise: its type (digest, literal, regex, image
    hash...), the value to match, optional severity and the feed it came from.
    """

    id: str
    type: str
    value: str
    severity: str | None = None
    description: str = ""
    feed: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The indicator as a JSON-ready dict, with any extra fields of the source feed merged in."""
        d: dict[str, Any] = {"id": self.id, "type": self.type, "value": self.value}
        if self.severity:
            d["severity"] = self.severity
        if self.description:
            d["description"] = self.description
        d.update(self.extra)
        return d


@dataclass(frozen=True)
class Feed:
    """A loaded threat-intelligence feed: identity, version, issuer, its indicators and the key ids that verified it."""

    id: str
    version: int
    issued: str
    issuer: str
    indicators: tuple[Indicator, ...]
    signed_by: tuple[str, ...] = ()  # key IDs that verified
    source_format: str = "dataward"  # dataward | stix

    def to_dict(self) -> dict[str, Any]:
        """The feed in dataward's feed format as a JSON-ready dict (signatures and source format are not part of it)."""
        return {
            "format": FORMAT,
            "id": self.id,
            "version": self.version,
            "issued": self.issued,
            "issuer": self.issuer,
            "indicators": [i.to_dict() for i in self.indicators],
        }

    def digest(self) -> str:
        """SHA-256 hex of the feed's canonical JSON, which names the exact feed content in reports."""
        return sha256_hex(canonical_json(self.to_dict()))


# --- keys ---------------------------------------------------------------------------------------------------


def _read_key(path: str | Path) -> tuple[Path, bytes, str]:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise IntelError(f"cannot read key {p}: {exc.strerror}") from None
    return p, data, data.decode("ascii", "replace").strip()


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file or a file holding the 64-hex raw key."""
    p, data, text = _read_key(path)
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return dsse.public_key_from_hex(text)
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise IntelError(f"{p}: not a PEM or hex Ed25519 public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise IntelError(f"{p}: the key is not Ed25519")
    return key


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from an unencrypted PEM (PKCS#8) file or a file holding the 64-hex raw key."""
    p, data, text = _read_key(path)
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text))
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise IntelError(f"{p}: not an unencrypted PEM or hex Ed25519 private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise IntelError(f"{p}: the key is not Ed25519")
    return key


def write_keypair(private_path: str | Path, public_path: str | Path) -> str:
    """Generate an Ed25519 feed key (private PEM 0600, public PEM); return the key ID."""
    key = Ed25519PrivateKey.generate()
    priv = Path(private_path)
    priv.write_bytes(b"")
    priv.chmod(0o600)
    priv.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    Path(public_path).write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return dsse.key_id(key.public_key())


# --- parsing and validation ----------------------------------------------------------------------------------


_EMPTY = pa.array([""], pa.string())


def _re2_ok(pattern: str) -> bool:
    try:
        pc.match_substring_regex(_EMPTY, pattern)
        return True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False


def parse_feed(data: Mapping[str, Any], *, where: str = "feed") -> Feed:
    """Validate a feed mapping; every problem names the feed and the indicator."""
    if not isinstance(data, Mapping):
        raise IntelError(f"{where}: a feed is a mapping")
    if data.get("format") != FORMAT:
        raise IntelError(f"{where}: format must be {FORMAT!r}")
    fid = data.get("id")
    if not isinstance(fid, str) or not _ID.match(fid):
        raise IntelError(f"{where}: feed id missing or not [A-Za-z0-9._:-]+")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise IntelError(f"{where}: version must be a non-negative integer")
    raw = data.get("indicators")
    if not isinstance(raw, list):
        raise IntelError(f"{where}: indicators must be a list")
    seen: set[str] = set()
    out = []
    for n, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise IntelError(f"{where}: indicator #{n} is not a mapping")
        iid, typ, value = item.get("id"), item.get("type"), item.get("value")
        label = f"{where}: indicator {iid!r}" if isinstance(iid, str) else f"{where}: indicator #{n}"
        if not isinstance(iid, str) or not _ID.match(iid):
            raise IntelError(f"{label}: id missing or malformed")
        if iid in seen:
            raise IntelError(f"{label}: duplicate id")
        seen.add(iid)
        if typ not in TYPES:
            raise IntelError(f"{label}: type {typ!r} unknown", advice=f"Types: {', '.join(TYPES)}.")
        if not isinstance(value, str) or not value or len(value) > 10_000:
            raise IntelError(f"{label}: value must be a non-empty string (at most 10000 characters)")
        sev = item.get("severity")
        if sev is not None:
            Severity.parse(str(sev))
        if typ in ("record-sha256", "file-sha256"):
            value = value.lower()
            if not _HEX64.match(value):
                raise IntelError(f"{label}: a SHA-256 digest is 64 hex characters")
        elif typ == "regex" and not _re2_ok(value):
            raise IntelError(f"{label}: regex {value[:40]!r} is not valid RE2 syntax")
        elif typ in ("image-phash", "image-patch") and not re.fullmatch(r"[0-9a-fA-F]{16}", value):
            raise IntelError(f"{label}: an image hash is 16 hex characters (64 bits)")
        elif typ in _LITERAL:
            value = value.strip().lower()
            if not value:
                raise IntelError(f"{label}: empty literal")
        extra: dict[str, Any] = {}
        if typ in ("image-phash", "image-patch"):
            dist = item.get("max_distance", 6 if typ == "image-phash" else 4)
            if not isinstance(dist, int) or not 0 <= dist <= 32:
                raise IntelError(f"{label}: max_distance must be an integer in 0..32")
            extra["max_distance"] = dist
        if typ == "image-patch":
            region = item.get("region")
            if (
                not isinstance(region, list)
                or len(region) != 4
                or not all(isinstance(x, int | float) and 0 <= x <= 1 for x in region)
                or not (region[0] < region[2] and region[1] < region[3])
            ):
                raise IntelError(f"{label}: region must be [x0, y0, x1, y1] fractions of the image, x0<x1, y0<y1")
            extra["region"] = [float(x) for x in region]
        out.append(
            Indicator(
                iid, str(typ), value, str(sev).lower() if sev else None, str(item.get("description", "")), fid, extra
            )
        )
    return Feed(fid, version, str(data.get("issued", "")), str(data.get("issuer", "")), tuple(out))


_STIX_TERM = re.compile(
    r"(file:hashes\.(?:'SHA-256'|\"SHA-256\"|SHA256|'SHA256'|SHA-256)|url:value|domain-name:value)\s*=\s*'((?:[^'\\]|\\.)*)'",
    re.IGNORECASE,
)


def stix_to_feed(bundle: Mapping[str, Any], *, where: str = "bundle") -> tuple[Feed, list[str]]:
    """Indicators with SHA-256 file hashes, URLs and domains from a STIX 2.1 bundle; also the skipped ones."""
    if not isinstance(bundle, Mapping) or bundle.get("type") != "bundle":
        raise IntelError(f"{where}: not a STIX 2.1 bundle (type 'bundle' expected)")
    objects = bundle.get("objects")
    if not isinstance(objects, list):
        raise IntelError(f"{where}: bundle has no objects list")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out: list[dict[str, Any]] = []
    skipped: list[str] = []
    for obj in objects:
        if not isinstance(obj, Mapping) or obj.get("type") != "indicator":
            continue
        sid = str(obj.get("id", ""))
        if obj.get("revoked") is True:
            skipped.append(f"{sid}: revoked")
            continue
        until = obj.get("valid_until")
        if isinstance(until, str) and until < now:
            skipped.append(f"{sid}: expired {until}")
            continue
        if obj.get("pattern_type", "stix") != "stix" or not isinstance(obj.get("pattern"), str):
            skipped.append(f"{sid}: pattern type {obj.get('pattern_type')!r} not supported")
            continue
        terms = _STIX_TERM.findall(obj["pattern"])
        if not terms:
            skipped.append(f"{sid}: no SHA-256, URL or domain term in its pattern")
            continue
        for k, (path, value) in enumerate(terms):
            p = path.lower()
            typ = "file-sha256" if p.startswith("file:") else "url" if p.startswith("url") else "domain"
            value = value.replace("\\'", "'").replace("\\\\", "\\")
            iid = sid if len(terms) == 1 else f"{sid}#{k}"
            out.append(
                {
                    "id": iid.replace("--", ":", 1) if not _ID.match(iid) else iid,
                    "type": typ,
                    "value": value,
                    "description": str(obj.get("name") or obj.get("description") or "")[:500],
                }
            )
    feed_id = re.sub(r"[^A-Za-z0-9._:\-]", "-", str(bundle.get("id", "stix-bundle")))[:100] or "stix-bundle"
    feed = parse_feed(
        {"format": FORMAT, "id": feed_id, "version": 0, "issued": now, "issuer": "STIX 2.1 bundle", "indicators": out},
        where=where,
    )
    return Feed(feed.id, feed.version, feed.issued, feed.issuer, feed.indicators, (), "stix"), skipped


def sign_feed(feed: Feed, key: Ed25519PrivateKey) -> bytes:
    """The DSSE envelope (canonical JSON bytes) of ``feed`` signed with ``key``."""
    return dsse.sign_envelope(canonical_json(feed.to_dict()), key, PAYLOAD_TYPE).to_bytes()


_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed: 10x faster
_STR = "tag:yaml.org,2002:str"
_SCALAR_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp"))
_SAFE = yaml.SafeLoader("")


def _too_deep(where: str, what: str, max_depth: int) -> IntelError:
    return IntelError(
        f"{where}: {what} exceeds the limit max_depth={max_depth:,}",
        advice=f"A feed nests a few levels; if this one is legitimate, export DATAWARD_MAX_DEPTH={max_depth * 4}.",
    )


class _NotSimple(Exception):
    """The YAML uses anchors, aliases, tags, merge keys or complex keys: the full loader builds it."""


def _scalar(ev: Any) -> Any:
    tag = ev.tag
    if tag is None or tag == "!":
        if not ev.implicit[0]:  # quoted: a string
            return ev.value
        value = ev.value
        tag = _STR
        for t, regexp in _SAFE.yaml_implicit_resolvers.get(value[:1], []):
            if regexp.match(value):
                tag = t
                break
    if tag == _STR:
        return ev.value
    if tag not in _SCALAR_TAGS:
        raise _NotSimple
    return _SAFE.yaml_constructors[tag](_SAFE, yaml.ScalarNode(tag, ev.value))


def _yaml_load(text: str, where: str, max_depth: int) -> Any:
    """``yaml.safe_load(text)``, refusing nesting deeper than ``max_depth`` before anything recurses.

    One pass over libyaml's events (iterative, no recursion) checks the depth and builds the plain subset
    feeds use (mappings, sequences, scalars) directly, several times faster than the composer and the
    constructor; a document with anchors, aliases, tags or complex keys is then built by the safe loader,
    its depth already checked."""
    depth = 0
    stack: list[Any] = []  # containers being built; a mapping's pending key is pushed after it
    docs: list[Any] = []
    simple = True
    parser = _YAML_LOADER(text)
    next_event = parser.get_event
    while True:
        ev = next_event()
        kind = type(ev)
        if kind is yaml.StreamEndEvent or ev is None:
            break
        if kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            depth += 1
            if depth > max_depth:
                raise _too_deep(where, "YAML nesting", max_depth)
            if simple:
                if ev.anchor is not None or ev.tag not in (None, "!"):
                    simple = False
                else:
                    stack.append({} if kind is yaml.MappingStartEvent else [])
                    stack.append(_NotSimple)  # marker: no pending key
            continue
        if not simple:
            if kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                depth -= 1
            continue
        try:
            if kind is yaml.ScalarEvent:
                if ev.anchor is not None:
                    raise _NotSimple
                value = _scalar(ev)
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                depth -= 1
                stack.pop()
                value = stack.pop()
            elif kind is yaml.AliasEvent:
                raise _NotSimple
            else:
                continue  # stream and document start/end
        except _NotSimple:
            simple = False
            continue
        if not stack:
            docs.append(value)
            continue
        container, pending = stack[-2], stack[-1]
        if isinstance(container, list):
            container.append(value)
        elif pending is _NotSimple:
            if isinstance(value, (dict, list)) or value == "<<":
                simple = False
                continue
            stack[-1] = value
        else:
            container[pending] = value
            stack[-1] = _NotSimple
    parser.dispose()
    if simple and len(docs) <= 1:
        return docs[0] if docs else None
    return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - the safe loader (C or Python)


def _parse_bytes(data: bytes, where: str) -> Any:
    from dataward.records.leaves import json_depth
    from dataward.records.limits import current

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise IntelError(f"{where}: not UTF-8 text") from None
    max_depth = current().max_depth
    # JSON only when it cannot recurse deeper than the limit (else the YAML pass refuses it, counting depth)
    if text.count("[") + text.count("{") > max_depth and json_depth(data) > max_depth:
        if text.lstrip()[:1] in ("[", "{"):  # a JSON (or YAML flow) document: its brackets are its depth
            raise _too_deep(where, "nesting", max_depth)
    else:
        try:
            return json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            pass
    try:
        return _yaml_load(text, where, max_depth)
    except yaml.YAMLError as exc:
        raise IntelError(f"{where}: neither JSON nor YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:  # a YAML loader without libyaml's own nesting limit
        raise IntelError(
            f"{where}: YAML nesting too deep to parse", advice="A feed nests a few levels; fix the feed."
        ) from None


def load_feed(
    path: str | Path,
    *,
    keys: Sequence[Ed25519PublicKey] = (),
    allow_unsigned: bool = False,
) -> Feed:
    """Load and verify a feed: a DSSE envelope verified by one of ``keys``, else (only with
    ``allow_unsigned``) a plain feed file or a STIX 2.1 bundle."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise IntelError(f"cannot read feed {p}: {exc.strerror}") from None
    return load_feed_bytes(data, where=str(p), keys=keys, allow_unsigned=allow_unsigned)


def load_feed_bytes(
    data: bytes,
    *,
    where: str,
    keys: Sequence[Ed25519PublicKey] = (),
    allow_unsigned: bool = False,
) -> Feed:
    """:func:`load_feed` for bytes already read (e.g. a feed stored in the workspace)."""
    p = where
    obj = _parse_bytes(data, str(p))
    if isinstance(obj, Mapping) and "payloadType" in obj:
        try:
            env = dsse.Envelope.from_dict(dict(obj))
        except SignatureError as exc:
            raise IntelError(f"{p}: {exc.message}") from None
        if not hmac.compare_digest(env.payload_type.encode(), PAYLOAD_TYPE.encode()):
            raise IntelError(f"{p}: payload type {env.payload_type!r} is not a dataward intel feed")
        if not keys:
            raise IntelError(f"{p}: a signed feed needs the feed key to verify it", advice="Pass --key PUB.")
        trusted = {dsse.key_id(k): k for k in keys}
        try:
            good = dsse.verify_envelope(env, trusted)
        except SignatureError as exc:
            raise SignatureError(
                f"{p}: feed signature does not verify: {exc.message}",
                advice="Get the feed again from its publisher; check that --key is the feed key.",
            ) from None
        payload = _parse_bytes(env.payload, f"{p} (payload)")
        feed = parse_feed(payload, where=str(p))
        return Feed(feed.id, feed.version, feed.issued, feed.issuer, feed.indicators, tuple(good))
    if isinstance(obj, Mapping) and obj.get("type") == "bundle":
        if not allow_unsigned:
            raise IntelError(
                f"{p}: a STIX bundle carries no signature",
                advice="Convert and sign it with `dataward intel import-stix`, or pass --allow-unsigned.",
            )
        return stix_to_feed(obj, where=str(p))[0]
    if not allow_unsigned:
        raise IntelError(
            f"{p}: the feed is not signed",
            advice="Sign it with `dataward intel sign FEED --key PRIV`, or pass --allow-unsigned.",
        )
    return parse_feed(obj if isinstance(obj, Mapping) else {}, where=str(p))


def triggers_from_detect(report: Any, *, feed_id: str, version: int = 1, issuer: str = "dataward detect") -> Feed:
    """A feed of the trigger tokens/phrases a detection report names (findings of kind ``trigger``)."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if node.get("kind") == "trigger" and isinstance(node.get("evidence"), Mapping):
                trig = (
                    node["evidence"].get("trigger") or node["evidence"].get("phrase") or node["evidence"].get("token")
                )
                if isinstance(trig, str) and trig.strip():
                    t = trig.strip().lower()
                    typ = "phrase" if re.search(r"\s", t) else "token"
                    iid = f"{feed_id}:{hashlib.sha256(t.encode()).hexdigest()[:16]}"
                    found.setdefault(
                        iid, {"id": iid, "type": typ, "value": t, "description": str(node.get("summary", ""))[:300]}
                    )
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(report)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return parse_feed(
        {
            "format": FORMAT,
            "id": feed_id,
            "version": version,
            "issued": now,
            "issuer": issuer,
            "indicators": [found[k] for k in sorted(found)],
        }
    )


# --- matching ------------------------------------------------------------------------------------------------


def _boundary_ok(ind: Indicator, text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    if ind.type in ("token", "phrase"):
        return not (before and _WORD.match(before)) and not (after and _WORD.match(after))
    if ind.type == "domain":
        if before and (before.isalnum() or before == "-"):
            return False
        if after and (after.isalnum() or after == "-"):
            return False
        return not (after == "." and end + 1 < len(text) and text[end + 1].isalnum())
    return True


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _patch_hash(data: bytes, region: Sequence[float]) -> int | None:
    gray = decode_gray(data, size=64)
    if gray is None:
        return None
    x0, y0, x1, y1 = (round(v * 64) for v in region)
    patch = gray[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)]
    if patch.size == 0:
        return None
    ys = np.linspace(0, patch.shape[0] - 1, 8).astype(int)
    xs = np.linspace(0, patch.shape[1] - 1, 8).astype(int)
    small = patch[np.ix_(ys, xs)]
    bits = (small > small.mean()).flatten()
    value = 0
    for b in bits:
        value = (value << 1) | int(b)
    return value


@register
class IntelCheck(Check):
    """Matches records, files and images against every loaded threat-intelligence indicator."""

    name = "intel"
    thread_safe = True  # its state is its own (ADR 0104)
    needs_batch_profile = False
    description = "matches records, files and images against every loaded threat-intelligence indicator"

    def applies(self, ctx: Any) -> str | None:
        """Skip reason when no intel feed is loaded, else ``None``."""
        return None if ctx.indicators else "no intel feeds loaded"

    def begin(self, ctx: Any) -> None:
        """Index the indicators by type and build one Aho-Corasick automaton over all literal values."""
        super().begin(ctx)
        inds: Sequence[Indicator] = ctx.indicators
        self._by_type: dict[str, list[Indicator]] = {}
        for ind in inds:
            self._by_type.setdefault(ind.type, []).append(ind)
        self._automaton: Any = None
        literals = [i for t in _LITERAL for i in self._by_type.get(t, [])]
        if literals:
            auto = ahocorasick.Automaton()
            by_value: dict[str, list[Indicator]] = {}
            for ind in literals:
                by_value.setdefault(ind.value, []).append(ind)
            for value, group in by_value.items():
                auto.add_word(value, (value, tuple(group)))
            auto.make_automaton()
            self._automaton = auto
        self._hits: dict[str, RecordSink] = {}
        self._where: dict[str, set[str]] = {}
        self._record_digests = {i.value: i for i in self._by_type.get("record-sha256", [])}
        self._file_digests = {i.value: i for i in self._by_type.get("file-sha256", [])}
        self._table_rows: list[bytes] = []  # record leaves for in-memory tables (no files to re-read)

    def _hit(self, ind: Indicator, record: int | None, where: str) -> None:
        sink = self._hits.setdefault(ind.id, RecordSink())
        if record is None:
            sink.count += 1
        else:
            sink.add(record)
        self._where.setdefault(ind.id, set()).add(where)

    def update(self, batch: pa.RecordBatch, offset: int) -> None:
        """Match this batch's strings against literal and regex indicators and its binary or image
        cells against digest and image indicators; keep record hashes when only a table was given.
        """
        for name in batch.schema.names:
            arr = batch.column(name)
            if is_string(arr.type):
                if self._automaton is not None:
                    self._scan_literals(name, arr, offset)
                for ind in self._by_type.get("regex", []):
                    mask = bool_mask(pc.match_substring_regex(arr, ind.value))
                    for i in np.flatnonzero(mask).tolist():
                        self._hit(ind, offset + i, name)
            elif (
                pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type) or pa.types.is_struct(arr.type)
            ) and (self._file_digests or "image-phash" in self._by_type or "image-patch" in self._by_type):
                self._scan_images(name, arr, offset)
        if self._record_digests and not self.context.files:
            from dataward.core.merkle import leaf_hash
            from dataward.records.leaves import jsonable as _jsonable

            for row in batch.to_pylist():
                self._table_rows.append(leaf_hash(canonical_json(_jsonable(row))))

    def _scan_literals(self, name: str, arr: pa.Array, offset: int) -> None:
        lowered = pc.fill_null(pc.utf8_lower(arr), "")
        values = lowered.to_pylist()
        sep = "\x00"
        joined = sep.join(values)
        starts = np.zeros(len(values) + 1, dtype=np.int64)
        if values:
            starts[1:] = np.cumsum([len(v) + 1 for v in values])
        for end, (value, group) in self._automaton.iter(joined):
            start = end - len(value) + 1
            row = int(np.searchsorted(starts, start, side="right") - 1)
            text = values[row]
            local = start - int(starts[row])
            for ind in group:
                if _boundary_ok(ind, text, local, local + len(value)):
                    self._hit(ind, offset + row, name)

    def _scan_images(self, name: str, arr: pa.Array, offset: int) -> None:
        blobs = image_bytes(arr)
        phashes = self._by_type.get("image-phash", [])
        patches = self._by_type.get("image-patch", [])
        for i, data in enumerate(blobs):
            if data is None:
                continue
            if self._file_digests:
                d = hashlib.sha256(data).hexdigest()
                ind = self._file_digests.get(d)
                if ind is not None:
                    self._hit(ind, offset + i, name)
            if phashes:
                h = phash(data)
                if h is not None:
                    for ind in phashes:
                        if hamming(h, int(ind.value, 16)) <= int(ind.extra.get("max_distance", 6)):
                            self._hit(ind, offset + i, name)
            for ind in patches:
                ph = _patch_hash(data, ind.extra["region"])
                if ph is not None and hamming(ph, int(ind.value, 16)) <= int(ind.extra.get("max_distance", 4)):
                    self._hit(ind, offset + i, name)

    def _scan_files(self) -> None:
        ctx = self.context
        for f in ctx.files:
            p = Path(f)
            paths = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
            for path in paths:
                ind = self._file_digests.get(_file_sha256(path))
                if ind is not None:
                    self._hit(ind, None, str(path))
        if self._record_digests:
            self._scan_record_digests()

    def _scan_record_digests(self) -> None:
        ctx = self.context
        leaves: list[bytes] = list(self._table_rows)
        if ctx.files:
            from dataward.errors import Error
            from dataward.records.leaves import detect_format, record_digests

            for f in ctx.files:
                p = Path(f)
                if p.is_dir():
                    continue
                fmt = detect_format(p.name)
                file_sha = _file_sha256(p) if fmt == "file" else ""
                try:
                    rd = record_digests(partial(open, p, "rb"), p.name, fmt, file_sha256=file_sha, strict=False)
                except Error:
                    continue
                leaves.extend(rd.leaf_list())
        for i, leaf in enumerate(leaves):
            ind = self._record_digests.get(leaf.hex())
            if ind is not None:
                self._hit(ind, i, "record digest")

    def finish(self) -> CheckResult:
        """Scan the input files, then return one finding per matched
        indicator, with its own severity or the policy's default.
        """
        self._scan_files()
        ctx = self.context
        default = Severity.parse(ctx.policy.intel_severity)
        index = {i.id: i for i in ctx.indicators}
        findings = []
        for iid, sink in sorted(self._hits.items()):
            ind = index[iid]
            sev = Severity.parse(ind.severity) if ind.severity else default
            findings.append(
                Finding(
                    self.name,
                    f"intel_{ind.type.replace('-', '_')}",
                    sev,
                    f"indicator {iid} ({ind.type} {ind.value!r}) from feed {ind.feed!r} matched {sink.count} time(s)"
                    + (f": {ind.description[:80]}" if ind.description else ""),
                    sink.tuple,
                    {
                        "indicator": iid,
                        "feed": ind.feed,
                        "type": ind.type,
                        "value": ind.value,  # whole, as everywhere in JSON: a cut digest names nothing
                        "n_records": sink.count,
                        "where": sorted(self._where.get(iid, ()))[:20],
                    },
                )
            )
        return CheckResult(self.name, tuple(findings), {"indicators": len(index), "matched": len(self._hits)})


def feeds_summary(feeds: Iterable[Feed]) -> list[dict[str, Any]]:
    """Per-feed summary for reports: id, version, indicator count, verifying keys, digest and source format."""
    return [
        {
            "id": f.id,
            "version": f.version,
            "indicators": len(f.indicators),
            "signed_by": list(f.signed_by),
            "digest": f.digest(),
            "source_format": f.source_format,
        }
        for f in feeds
    ]


#: indicator types matched as literal substrings (public for the scale-out matcher in dataward.scale)
LITERAL_TYPES = _LITERAL
#: whether a literal hit at ``text[start:end]`` sits on the boundaries its indicator type needs (public twin)
boundary_ok = _boundary_ok
