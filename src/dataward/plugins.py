"""One plugin substrate: a registry of named implementations with an explicit table of built-ins.

Every pluggable layer (poison detectors, screening checks, simulated attacks, batch checks) keeps its
implementations in a :class:`Registry`. The built-ins are an explicit table of ``name -> "module:Class"``
written in the registry's module, so importing a detector module changes nothing (no import side
effects) and listing names imports nothing; a class is imported on first lookup. Third-party plugins
are added by an explicit :meth:`Registry.register` call.

A layer's registry module holds only what differs: its table, its base class and its error. Its
``register``, ``get``, ``names`` and ``load_all`` are the registry's own bound methods
(:meth:`Registry.register`, :meth:`Registry.get`, :meth:`Registry.sorted_names`, :meth:`Registry.classes`),
so the lookup code is written once, here. An unknown name raises the layer's own
:class:`~dataward.errors.Error` subclass, naming the known names.

The class decorators kept in the built-in modules (``@register``) are checks, not registrations: for a
class the table already names they return it unchanged, and for another class under a built-in's name
they raise.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar

from dataward.errors import Error

__all__ = ["Named", "Registry"]


class Named(Protocol):
    """What a registry holds: a class with a ``name``."""

    name: str


_T = TypeVar("_T")
_C = TypeVar("_C", bound=type[Any])


def _qualified(cls: type[Any]) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


class Registry(Generic[_T]):
    """Named subclasses of ``base``: the built-in table first (in its order), then registered plugins.

    ``error`` builds the exception raised for an unknown name from (message, advice).
    """

    def __init__(
        self,
        kind: str,
        base: type[Any],
        builtins: Mapping[str, str],
        *,
        error: Callable[..., Error],
    ) -> None:
        self.kind = kind
        self.base = base
        self._builtins = dict(builtins)
        self._error = error
        self._loaded: dict[str, type[_T]] = {}
        self._plugins: dict[str, type[_T]] = {}

    # ----------------------------------------------------------------------------------------- lookups

    def names(self) -> list[str]:
        """Every name, built-ins in table order then plugins in registration order. Imports nothing."""
        return [*self._builtins, *self._plugins]

    def sorted_names(self) -> list[str]:
        """Every name, sorted (what a command lists). Imports nothing."""
        return sorted(self.names())

    def builtin_names(self) -> list[str]:
        """The names of the built-in table, in its order."""
        return list(self._builtins)

    def __contains__(self, name: object) -> bool:
        return name in self._builtins or name in self._plugins

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._builtins) + len(self._plugins)

    def get(self, name: str) -> type[_T]:
        """The class registered as ``name``; an unknown name raises the layer's error with the known names."""
        if name in self._plugins:
            return self._plugins[name]
        if name in self._builtins:
            return self._load(name)
        known = ", ".join(sorted(self.names())) or "none"
        raise self._error(f"unknown {self.kind} {name!r}", advice=f"Known {self.kind}s: {known}.")

    def classes(self) -> list[type[_T]]:
        """Every class, in :meth:`names` order (imports the built-in modules not yet imported)."""
        return [self.get(name) for name in self.names()]

    def items(self) -> list[tuple[str, type[_T]]]:
        """``(name, class)`` pairs in :meth:`names` order."""
        return [(name, self.get(name)) for name in self.names()]

    def is_builtin(self, name: str) -> bool:
        """Whether ``name`` is in the built-in table (not a plugin)."""
        return name in self._builtins

    # ------------------------------------------------------------------------------------ registration

    def register(self, cls: _C) -> _C:
        """Add a plugin class under ``cls.name`` (usable as a class decorator).

        A class the built-in table already names is returned unchanged (the decorators in built-in
        modules are checks, not registrations). Another class under a taken name raises ``ValueError``.
        """
        obj: Any = cls
        if not (isinstance(obj, type) and issubclass(obj, self.base)):
            raise TypeError(f"{obj!r} is not a {self.base.__name__}")
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or not name:
            raise ValueError(f"{_qualified(obj)} has no name")
        if name in self._builtins:
            if self._builtins[name] == _qualified(obj):
                return cls
            raise ValueError(f"{self.kind} name {name!r} is a built-in ({self._builtins[name]})")
        if name in self._plugins and self._plugins[name] is not obj:
            raise ValueError(f"{self.kind} name {name!r} registered twice")
        self._plugins[name] = obj
        return cls

    def unregister(self, name: str) -> None:
        """Remove a plugin (built-ins cannot be removed)."""
        if name in self._builtins:
            raise ValueError(f"{self.kind} {name!r} is a built-in and cannot be removed")
        self._plugins.pop(name, None)

    # ---------------------------------------------------------------------------------------- internals

    def _load(self, name: str) -> type[_T]:
        cls = self._loaded.get(name)
        if cls is not None:
            return cls
        target = self._builtins[name]
        module_name, _, attr = target.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        if not (isinstance(obj, type) and issubclass(obj, self.base)):
            raise TypeError(f"built-in {self.kind} {target} is not a {self.base.__name__}")
        if getattr(obj, "name", None) != name:
            raise ValueError(f"built-in {self.kind} {target} is named {getattr(obj, 'name', None)!r}, not {name!r}")
        self._loaded[name] = obj
        return obj
