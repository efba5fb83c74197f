"""Frozen domain values shared by every layer (principals, keys). Pure: no I/O."""

from __future__ import annotations

from dataward.model.keys import Key, PublicKey
from dataward.model.principal import Principal

__all__ = ["Key", "Principal", "PublicKey"]
