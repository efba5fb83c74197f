"""The ``dataward`` command line: a thin layer over the library.

Each command group lives in its own private module and registers itself on the root group. Errors of the
:class:`dataward.errors.Error` family are caught once, here, and printed as one line plus advice; a catalog
that fails beneath a command arrives as a :class:`~dataward.errors.CatalogError` (the storage boundary
translates the driver's exception), so this layer needs no database library.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from dataward.cli._app import LazyGroup, cli
from dataward.cli._commands import COMMAND_MODULES
from dataward.errors import ChangePending, Error

__all__ = ["cli", "main", "run"]


def _register_commands() -> None:
    LazyGroup.lazy = COMMAND_MODULES


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status (also used by tests)."""
    _register_commands()
    try:
        rv = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False, prog_name="dataward")
    except ChangePending as pending:
        # an admin change proposed under an admin threshold above 1: an outcome, not an error
        _print_pending(pending, as_json="--json" in (list(argv) if argv is not None else sys.argv[1:]))
        return 0
    except Error as exc:
        click.secho(f"error: {exc.message}", fg="red", err=True)
        if exc.advice:
            click.echo(f"hint: {exc.advice}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except SystemExit as exc:  # commands may end with sys.exit(status)
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    # without standalone mode click returns the status of ctx.exit(N) instead of raising
    return rv if isinstance(rv, int) else 0


def _print_pending(p: ChangePending, *, as_json: bool) -> None:
    if as_json:
        import json

        sys.stdout.write(json.dumps(p.to_json(), indent=2, sort_keys=True) + "\n")
        return
    click.echo(f"pending change {p.change}")
    click.echo(
        f"{p.action} of {p.subject} waits for admin signatures ({p.signatures} of {p.required}); each other "
        f"admin reviews it with `dataward admin show {p.change[:16]}` and signs with "
        f"`dataward admin sign {p.change[:16]} --as NAME`",
        err=True,
    )


def run() -> None:
    """The console-script entry point: run the CLI on ``sys.argv`` and exit with its status."""
    sys.exit(main())
