"""How `make demo` looks on a terminal: its narration drawn with rich (the demo itself prints through a
:class:`dataward.demo.Reporter` and never imports rich). In the checkout only, like the demo (setup.py)."""

from __future__ import annotations

import os

from rich.console import Console
from rich.markup import escape
from rich.rule import Rule

__all__ = ["RichReporter"]


class RichReporter:
    """The demo's :class:`~dataward.demo.Reporter` on a rich console (width from ``COLUMNS``, 120 by default)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, width=int(os.environ.get("COLUMNS", "120")))

    def heading(self, text: str) -> None:
        """A chapter of the story, set apart by a blank line."""
        self.console.print(f"\n[bold cyan]{escape(text)}[/]")

    def command(self, text: str) -> None:
        """A command as the person would type it."""
        self.console.print(f"[dim]{escape(text)}[/]")

    def aside(self, text: str) -> None:
        """A remark beside the story (what the scripted people did, the figures of a chapter)."""
        self.console.print(f"[dim]{escape(text)}[/]")

    def line(self, text: str) -> None:
        """A plain line of output."""
        self.console.print(escape(text))

    def failure(self, text: str) -> None:
        """The demo went wrong: a step did not end as the story expects."""
        self.console.print(f"[red]{escape(text)}[/]")

    def rule(self, title: str = "") -> None:
        """A horizontal rule, with an optional title."""
        self.console.print(Rule(escape(title)) if title else Rule())

    def finished(self, text: str) -> None:
        """The closing line."""
        self.console.print(f"[bold green]{escape(text)}[/]")
