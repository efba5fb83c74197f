"""A principal: a named person or service, its role grants, its registered keys."""

from __future__ import annotations

from dataclasses import dataclass

from dataward.model.keys import Key


@dataclass(frozen=True)
class Principal:
    """A principal as the catalog projects it: name, roles (``role`` or ``role@source``) and keys."""

    name: str
    roles: tuple[str, ...] = ()
    keys: tuple[Key, ...] = ()
    disabled: bool = False

    @property
    def active_key(self) -> Key | None:
        """The newest active key, if any."""
        active = [k for k in self.keys if k.status == "active"]
        return max(active, key=lambda k: k.created_at) if active else None
