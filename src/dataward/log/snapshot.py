"""The replayed evidence state as plain JSON, so an incremental ``log verify`` replays only new entries.

The encoding follows the dataclass field types of :class:`~dataward.evidence.replay.TrustedState`: tuples
and sets become lists, a dict whose keys are not strings becomes a list of ``[key, value]`` pairs, bytes
become base64. Decoding checks every value against its declared type, so a snapshot edited into another
shape is refused (:class:`SnapshotError`), never half-loaded; the caller then verifies in full. No pickle:
the file is data, read back field by field. Its integrity is the witness's job (the witness keeps its
SHA-256), see docs/adr/0045-incremental-witness-and-log-speed.md.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import types
import typing
from functools import cache
from typing import TYPE_CHECKING, Any, Union

from dataward.errors import Error

if TYPE_CHECKING:
    from dataward.evidence.replay import TrustedState

__all__ = ["SnapshotError", "decode_state", "encode_state"]


class SnapshotError(Error):
    """A state snapshot that does not decode into the declared types (edited or from another version)."""

    default_advice = "Run a full `dataward log verify`: it replays the whole log and writes a new snapshot."


#: fields that are caches of derived values, rebuilt on use (the parsed public keys)
_SKIPPED = frozenset({"_pubs"})


@cache
def _hints(cls: type) -> dict[str, Any]:
    from dataward.evidence import replay

    return typing.get_type_hints(cls, vars(replay))


def _fields(cls: type) -> list[tuple[str, Any]]:
    hints = _hints(cls)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(cls) if f.name not in _SKIPPED]


def _encode(value: Any, tp: Any) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp in (str, int, bool, float) or value is None:
        return value
    if tp is bytes:
        return base64.b64encode(value).decode("ascii")
    if dataclasses.is_dataclass(tp):
        return {name: _encode(getattr(value, name), t) for name, t in _fields(tp)}  # type: ignore[arg-type]
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _encode(value, inner[0]) if len(inner) == 1 else value
    if origin is dict:
        kt, vt = args
        if kt is str:
            return {k: _encode(v, vt) for k, v in value.items()}
        return [[_encode(k, kt), _encode(v, vt)] for k, v in value.items()]
    if origin in (list, set, frozenset):
        items = sorted(value, key=repr) if origin is not list else value  # sets: a stable order, so a stable digest
        return [_encode(v, args[0]) for v in items]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return [_encode(v, args[0]) for v in value]
        return [_encode(v, t) for v, t in zip(value, args, strict=True)]
    raise TypeError(f"cannot encode {tp!r}")


def _bad(path: str, want: str, got: Any) -> SnapshotError:
    return SnapshotError(f"state snapshot: {path} should be {want}, not {type(got).__name__}")


def _decode(raw: Any, tp: Any, path: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return raw
    if origin in (Union, types.UnionType):
        if raw is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise SnapshotError(f"state snapshot: {path} has an undecodable type {tp!r}")
        return _decode(raw, inner[0], path)
    if tp in (str, bool, float):
        if type(raw) is not tp:
            raise _bad(path, tp.__name__, raw)
        return raw
    if tp is int:
        if type(raw) is not int:
            raise _bad(path, "int", raw)
        return raw
    if tp is bytes:
        if not isinstance(raw, str):
            raise _bad(path, "base64 text", raw)
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise SnapshotError(f"state snapshot: {path} is not base64") from None
    if dataclasses.is_dataclass(tp):
        if not isinstance(raw, dict):
            raise _bad(path, "an object", raw)
        cls: Any = tp
        fields = _fields(cls)
        if set(raw) != {n for n, _ in fields}:
            raise SnapshotError(f"state snapshot: {path} has other fields than {cls.__name__}")
        return cls(**{n: _decode(raw[n], t, f"{path}.{n}") for n, t in fields})
    if origin is dict:
        kt, vt = args
        if kt is str:
            if not isinstance(raw, dict):
                raise _bad(path, "an object", raw)
            return {k: _decode(v, vt, f"{path}[{k!r}]") for k, v in raw.items()}
        if not isinstance(raw, list):
            raise _bad(path, "a list of pairs", raw)
        out: dict[Any, Any] = {}
        for i, pair in enumerate(raw):
            if not isinstance(pair, list) or len(pair) != 2:
                raise _bad(f"{path}[{i}]", "a [key, value] pair", pair)
            out[_decode(pair[0], kt, f"{path}[{i}].key")] = _decode(pair[1], vt, f"{path}[{i}].value")
        return out
    if origin in (list, set, frozenset) or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
        if not isinstance(raw, list):
            raise _bad(path, "a list", raw)
        items = [_decode(v, args[0], f"{path}[{i}]") for i, v in enumerate(raw)]
        return items if origin is list else tuple(items) if origin is tuple else origin(items)
    if origin is tuple:
        if not isinstance(raw, list) or len(raw) != len(args):
            raise _bad(path, f"a list of {len(args)}", raw)
        return tuple(_decode(v, t, f"{path}[{i}]") for i, (v, t) in enumerate(zip(raw, args, strict=True)))
    raise SnapshotError(f"state snapshot: {path} has an undecodable type {tp!r}")


def encode_state(state: TrustedState) -> bytes:
    """The state as JSON bytes (deterministic: the same state gives the same bytes)."""
    from dataward.evidence.replay import TrustedState

    doc = {"type": "dataward-evidence-state/v1", "state": _encode(state, TrustedState)}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_state(data: bytes) -> TrustedState:
    """The state :func:`encode_state` wrote; raises :class:`SnapshotError` on anything else."""
    from dataward.evidence.replay import TrustedState

    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SnapshotError(f"state snapshot is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != "dataward-evidence-state/v1" or set(doc) != {"type", "state"}:
        raise SnapshotError("state snapshot is not a dataward evidence state")
    state: TrustedState = _decode(doc["state"], TrustedState, "state")
    return state
