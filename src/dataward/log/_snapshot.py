"""The replayed evidence state as plain JSON, so an incremental ``log verify`` replays only new entries.

The encoding follows the dataclass field types of :class:`~dataward.evidence.replay.TrustedState`: a
dataclass becomes the list of its field values (in field order), tuples and sets become lists, a dict
whose keys are not strings becomes a list of ``[key, value]`` pairs, bytes become base64. Decoding checks
every value against its declared type, so a snapshot edited into another shape is refused
(:class:`SnapshotError`), never half-loaded; the caller then verifies in full. No pickle: the file is data,
read back field by field. Its integrity is the witness's job (the witness keeps its SHA-256 under a MAC),
see docs/adr/0045-incremental-witness-and-log-speed.md.

A state holds a value per verified entry (the entry itself, a ``batch.verify`` record, ...), so the
codecs are built once per type (closures, no type inspection per value): the snapshot of 10^5 entries
loads in a fraction of what replaying them costs.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import itertools
import json
import math
import operator
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, Union

from dataward.errors import Error
from dataward.log import _gc

if TYPE_CHECKING:
    from dataward.evidence.replay import TrustedState

__all__ = ["SnapshotError", "decode_state", "encode_state", "encode_state_parts"]

FORMAT = "dataward-evidence-state/v2"


class SnapshotError(Error):
    """A state snapshot that does not decode into the declared types (edited or from another version)."""

    default_advice = "Run a full `dataward log verify`: it replays the whole log and writes a new snapshot."


#: fields that are caches of derived values, rebuilt on use (the parsed public keys, remembered authorizations,
#: the signed bodies of the entries)
_SKIPPED = frozenset({"_pubs", "_allowed", "_bodies"})

Codec = Callable[[Any], Any]


@cache
def _fields(cls: type) -> tuple[tuple[str, Any], ...]:
    from dataward.evidence import replay

    hints = typing.get_type_hints(cls, vars(replay))
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls) if f.name not in _SKIPPED)


def _same(v: Any) -> Any:
    return v


def _optional(tp: Any) -> Any | None:
    """``X`` of ``X | None``; None for any other type."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(inner) == 1 and type(None) in typing.get_args(tp):
            return inner[0]
    return None


def _or_none(codec: Codec) -> Codec:
    """``codec`` for ``X | None``: None stays None."""
    return lambda v: None if v is None else codec(v)


@cache
def _native(tp: Any) -> bool:
    """Whether values of ``tp`` are JSON values as they are (encoded unchanged)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp in (str, int, bool, float, type(None)):
        return True
    if origin in (Union, types.UnionType):
        return all(_native(a) for a in args)
    if origin is dict:
        return args[0] is str and _native(args[1])
    if origin is list:
        return _native(args[0])
    return False


@cache
def _encoder(tp: Any) -> Codec:
    if _native(tp):
        return _same
    inner = _optional(tp)
    if inner is not None:
        return _or_none(_encoder(inner))
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is bytes:
        return lambda v: base64.b64encode(v).decode("ascii")
    if dataclasses.is_dataclass(tp):
        parts = [(name, _encoder(t)) for name, t in _fields(tp)]  # type: ignore[arg-type]
        if all(enc is _same for _, enc in parts) and len(parts) > 1:
            get = operator.attrgetter(*(name for name, _ in parts))  # flat records: one C call each
            return lambda v: list(get(v))
        return lambda v: [enc(getattr(v, name)) for name, enc in parts]
    if origin is dict:
        ke, ve = _encoder(args[0]), _encoder(args[1])
        if args[0] is str:
            return lambda v: {k: ve(x) for k, x in v.items()}
        return lambda v: [[ke(k), ve(x)] for k, x in v.items()]
    if origin is list or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
        ie = _encoder(args[0])
        return lambda v: [ie(x) for x in v]
    if origin in (set, frozenset):
        ie = _encoder(args[0])
        return lambda v: sorted((ie(x) for x in v), key=repr)  # a stable order, so a stable digest
    if origin is tuple:
        encs = [_encoder(t) for t in args]
        return lambda v: [e(x) for e, x in zip(encs, v, strict=True)]
    raise TypeError(f"cannot encode {tp!r}")


def _fail(want: str, got: Any) -> SnapshotError:
    return SnapshotError(f"state snapshot: a value should be {want}, not {type(got).__name__}")


def _scalar(tp: type) -> Codec:
    def dec(v: Any) -> Any:
        if type(v) is not tp:
            raise _fail(tp.__name__, v)
        return v

    return dec


def _any(v: Any) -> Any:
    return v


def _b64(v: Any) -> bytes:
    if not isinstance(v, str):
        raise _fail("base64 text", v)
    try:
        return base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        raise SnapshotError("state snapshot: a value is not base64") from None


#: scalar field types whose values a snapshot holds as they are (checked with ``type(v) in ...``)
_SCALARS: dict[Any, tuple[type, ...]] = {
    str: (str,),
    int: (int,),
    bool: (bool,),
    str | None: (str, type(None)),
    int | None: (int, type(None)),
    bool | None: (bool, type(None)),
}


def _dataclass(cls: Any) -> Codec:
    fields = _fields(cls)
    names = [n for n, _ in fields]
    n = len(fields)
    # the cache fields left out of the snapshot get their defaults back
    skipped = {
        f.name: f.default_factory
        for f in dataclasses.fields(cls)
        if f.name in _SKIPPED and f.default_factory is not dataclasses.MISSING
    }
    scalar = [_SCALARS.get(t) for _, t in fields]
    if all(scalar):
        # every field a string, int, bool or None (most per-entry records): one type check per value
        allowed = [a for a in scalar if a is not None]
        # every allowed tuple of value types (2 ** optional fields): one C-level set lookup per record
        combos = frozenset(itertools.product(*allowed)) if math.prod(map(len, allowed)) <= 1024 else None

        def dec_flat(v: Any) -> Any:
            if type(v) is not list or len(v) != n:
                raise _fail(f"a {cls.__name__} ({n} fields)", v)
            if combos is not None:
                if tuple(map(type, v)) not in combos:
                    raise _fail(f"a {cls.__name__} ({n} fields)", v)
            elif not all(type(x) in a for x, a in zip(v, allowed, strict=True)):
                raise _fail(f"a {cls.__name__} ({n} fields)", v)
            obj = cls.__new__(cls)  # frozen dataclasses too: their fields are plain instance attributes
            obj.__dict__.update(zip(names, v, strict=True))
            return obj

        return dec_flat
    decs = [_decoder(t) for _, t in fields]

    def dec(v: Any) -> Any:
        if type(v) is not list or len(v) != n:
            raise _fail(f"a {cls.__name__} ({n} fields)", v)
        obj = cls.__new__(cls)
        obj.__dict__.update({name: d(x) for name, d, x in zip(names, decs, v, strict=True)})
        for name, factory in skipped.items():
            obj.__dict__[name] = factory()
        return obj

    return dec


@cache
def _decoder(tp: Any) -> Codec:
    if tp is Any:
        return _any
    inner = _optional(tp)
    if inner is not None:
        return _or_none(_decoder(inner))
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        raise TypeError(f"cannot decode {tp!r}")
    if tp in (str, int, bool, float):
        return _scalar(tp)
    if tp is bytes:
        return _b64
    if dataclasses.is_dataclass(tp):
        return _dataclass(tp)
    if origin is dict:
        kd, vd = _decoder(args[0]), _decoder(args[1])
        if args[0] is str:

            def dec_obj(v: Any) -> Any:
                if type(v) is not dict:
                    raise _fail("an object", v)
                return {k: vd(x) for k, x in v.items()}

            return dec_obj

        def dec_pairs(v: Any) -> Any:
            if type(v) is not list or not all(type(p) is list and len(p) == 2 for p in v):
                raise _fail("a list of [key, value] pairs", v)
            return {kd(k): vd(x) for k, x in v}

        return dec_pairs
    if origin in (list, set, frozenset) or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
        idec = _decoder(args[0])
        make: Callable[[list[Any]], Any] = {list: list, set: set, frozenset: frozenset}.get(origin, tuple)
        if idec is _any or (typing.get_origin(args[0]) is dict and _native(args[0]) and args[0] is not Any):
            # the bulk of a state (its verified entries): JSON objects as stored, one type check each
            want = dict if typing.get_origin(args[0]) is dict else None

            def dec_native(v: Any) -> Any:
                if type(v) is not list or (want is not None and not all(type(x) is want for x in v)):
                    raise _fail("a list of objects", v)
                return make(v)

            return dec_native

        def dec_list(v: Any) -> Any:
            if type(v) is not list:
                raise _fail("a list", v)
            return make([idec(x) for x in v])

        return dec_list
    if origin is tuple:
        decs = [_decoder(t) for t in args]

        def dec_tuple(v: Any) -> Any:
            if type(v) is not list or len(v) != len(decs):
                raise _fail(f"a list of {len(decs)}", v)
            return tuple(d(x) for d, x in zip(decs, v, strict=True))

        return dec_tuple
    raise TypeError(f"cannot decode {tp!r}")


def encode_state(state: TrustedState) -> bytes:
    """The state as JSON bytes (deterministic: the same replay gives the same bytes)."""
    return b"".join(encode_state_parts(state))


def encode_state_parts(state: TrustedState) -> list[bytes]:
    """:func:`encode_state` in pieces whose concatenation is its bytes: a caller that writes or hashes the
    state takes them one by one, with no copy of the whole (tens of MB for 10^5 entries, each copy new
    pages for the kernel to map)."""
    from dataward.evidence.replay import TrustedState

    # no sort_keys: the dicts of a state are built in log order, so equal replays give equal bytes, and
    # sorting every entry's keys again would double the cost of writing
    with _gc.paused():  # a record per verified entry: collections would walk them all, again and again
        fields = _encoder(TrustedState)(state)
        bodies = state._bodies
        if not bodies or len(bodies) != len(state.entries):
            doc = {"type": FORMAT, "state": fields}
            return [json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")]
        # the same bytes with the entries written as their signed bodies: each is canonical JSON (sorted keys,
        # these separators, UTF-8 kept) of the dict parsed from it, which keeps its order, so json.dumps of
        # that dict gives the body again (tests/log/test_snapshot.py compares both ways)
        at = _entries_at()
        parts = [b'{"type":', _dumps(FORMAT), b',"state":[']
        for i, f in enumerate(fields):
            if i:
                parts.append(b",")
            parts += (b"[", b",".join(bodies), b"]") if i == at else (_dumps(f),)
        parts.append(b"]}")
        return parts


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@cache
def _entries_at() -> int:
    """The place of ``entries`` among the encoded fields of a state."""
    from dataward.evidence.replay import TrustedState

    return [name for name, _ in _fields(TrustedState)].index("entries")


def decode_state(data: bytes) -> TrustedState:
    """The state :func:`encode_state` wrote; raises :class:`SnapshotError` on anything else."""

    with _gc.paused():  # a record per verified entry: collections would walk them all, again and again
        return _decode_state(data)


def _decode_state(data: bytes) -> TrustedState:
    from dataward.evidence.replay import TrustedState

    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SnapshotError(f"state snapshot is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != FORMAT or set(doc) != {"type", "state"}:
        raise SnapshotError("state snapshot is not a dataward evidence state of this version")
    try:
        state: TrustedState = _decoder(TrustedState)(doc["state"])
    except (TypeError, ValueError, AttributeError) as exc:  # a value of a shape the codec does not expect
        raise SnapshotError(f"state snapshot does not decode: {exc}") from None
    return state
