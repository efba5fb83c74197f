"""The subjects log entries name (``batch:<id>``, ``source:<name>``, ...), built in one place. Pure (no I/O)."""

from __future__ import annotations


class Subject:
    """Builders of the ``kind:name`` subject strings of log entries and denials."""

    @staticmethod
    def batch(batch_id: str) -> str:
        """``batch:<id>``."""
        return f"batch:{batch_id}"

    @staticmethod
    def source(name: str) -> str:
        """``source:<name>``."""
        return f"source:{name}"

    @staticmethod
    def version(spec: str) -> str:
        """``version:<dataset>@<n>``."""
        return f"version:{spec}"

    @staticmethod
    def principal(name: str) -> str:
        """``principal:<name>``."""
        return f"principal:{name}"

    @staticmethod
    def key(keyid: str) -> str:
        """``key:<keyid or prefix>``."""
        return f"key:{keyid}"

    @staticmethod
    def change(change_id: str) -> str:
        """``change:<id>`` (a pending admin change)."""
        return f"change:{change_id}"
