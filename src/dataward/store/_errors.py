"""The storage boundary's error translation: a driver failure becomes a :class:`~dataward.errors.CatalogError`.

:func:`install` hooks the engine's ``handle_error`` event, so every statement run through the engine (the
CLI, the Python API, the console) raises one dataward error with one line and advice instead of a raw
SQLAlchemy/DBAPI exception. Failures to connect are translated earlier, by :mod:`dataward.store.catalog`
(a :class:`~dataward.errors.WorkspaceError`); the original exception stays chained as ``__cause__``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import exc as exc_

from dataward.errors import CatalogError

__all__ = ["catalog_error", "install"]


def catalog_error(exc: BaseException, where: str) -> CatalogError:
    """A :class:`CatalogError` for a driver exception raised by the catalog at ``where`` (a redacted URL)."""
    original = getattr(exc, "orig", None) or exc
    lines = str(original).strip().splitlines()
    first = lines[0] if lines else type(original).__name__
    return CatalogError(f"catalog failure ({where}): {first[:300]}")


def install(engine: Engine, where: str) -> None:
    """Translate every DBAPI error the engine raises into a :class:`CatalogError` (after other hooks)."""

    def handle(ctx: Any) -> None:
        if isinstance(ctx.sqlalchemy_exception, exc_.DBAPIError):
            raise catalog_error(ctx.sqlalchemy_exception, where) from ctx.sqlalchemy_exception

    event.listen(engine, "handle_error", handle)
