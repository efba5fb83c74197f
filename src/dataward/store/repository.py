"""The rule every repository function follows: a storage failure leaves ``store/`` as a dataward error.

The engine's ``handle_error`` hook (:mod:`dataward.store.errors`) already turns a driver failure into a
:class:`~dataward.errors.CatalogError`. SQLAlchemy also raises errors of its own that never reach the
driver (a closed connection, a result without the expected column); :func:`repository` translates those
too, so a caller outside ``store/`` never needs to know SQLAlchemy's exceptions.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from dataward.store.errors import catalog_error

__all__ = ["repository", "value_of"]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_V = TypeVar("_V")


def repository(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Wrap a repository function so that any :class:`SQLAlchemyError` becomes a one-line ``CatalogError``."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except SQLAlchemyError as exc:
            raise catalog_error(exc, f"{fn.__module__}.{fn.__name__}") from exc

    return wrapper


def value_of(cls: type[_V], row: Any) -> _V:
    """A frozen model value built from a row whose columns carry the value's field names (other columns
    are left out), so a value's fields and its table's columns are matched by name, not by position."""
    mapping = row._mapping
    return cls(**{f.name: mapping[f.name] for f in dataclasses.fields(cls)})  # type: ignore[arg-type]
