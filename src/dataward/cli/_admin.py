"""Commands: admin (pending, show, sign, withdraw, threshold): admin changes under a k-of-n threshold."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from dataward import admin as admin_api
from dataward.cli._app import cli
from dataward.cli._util import acting, console, emit, json_option, open_workspace, print_table, shown
from dataward.identity import Actor
from dataward.workspace import Workspace

as_option = click.option(
    "--as", "as_principal", default=None, help="The admin who signs (default: the global --as / DATAWARD_PRINCIPAL)."
)


def _actor(ctx: click.Context, ws: Workspace, as_principal: str | None) -> Actor:
    if as_principal:
        ctx.find_root().obj["principal"] = as_principal
    return acting(ctx, ws)


def _summary(c: dict[str, Any]) -> str:
    d = c.get("details") or {}
    bits = [f"{k}={v}" for k, v in sorted(d.items()) if k not in ("public_key",) and v not in (None, [], "")]
    return ", ".join(bits)


@cli.group()
def admin() -> None:
    """Admin changes under the k-of-n admin threshold: pending, show, sign, withdraw, threshold."""


@admin.command("pending")
@click.option("--all", "include_closed", is_flag=True, help="Also applied and withdrawn changes.")
@json_option
@click.pass_context
def admin_pending(ctx: click.Context, include_closed: bool, as_json: bool) -> None:
    """List pending admin changes (read from the signed log) and how many admin signatures each has."""
    ws = open_workspace(ctx)
    items = admin_api.pending(ws, include_closed=include_closed)

    def human() -> None:
        if not items:
            console.print("no pending admin change")
            return
        t = Table("change", "status", "change", "signed by", "signatures", "details")
        for c in items:
            t.add_row(
                shown(c["change"]),
                c["status"],
                f"{c['action']} {c['subject']}",
                ", ".join(c["signed_by"]) or "-",
                f"{c['valid_signatures']}/{c['required']}",
                _summary(c),
            )
        print_table(t)

    emit(as_json, items, human)


@admin.command("show")
@click.argument("change")
@json_option
@click.pass_context
def admin_show(ctx: click.Context, change: str, as_json: bool) -> None:
    """Show the exact signed statement of CHANGE (what a signature agrees to)."""
    import json

    ws = open_workspace(ctx)
    c = admin_api.show(ws, change)

    def human() -> None:
        console.print(f"[bold]change[/] {c['change']} ({c['status']})")
        console.print(f"[bold]does[/] {c['action']} {c['subject']}")
        console.print(f"[bold]proposed[/] by {c['proposed_by']} at {c['proposed_at']}")
        console.print(
            f"[bold]signed by[/] {', '.join(c['signed_by']) or '-'} "
            f"({c['valid_signatures']} valid of {c['required']} required)"
        )
        click.echo(json.dumps(c["statement"], indent=2, sort_keys=True))

    emit(as_json, c, human)


@admin.command("sign")
@click.argument("change")
@as_option
@json_option
@click.pass_context
def admin_sign(ctx: click.Context, change: str, as_principal: str | None, as_json: bool) -> None:
    """Sign pending CHANGE (8+ hex characters of its id) as an admin; the K-th signature applies it."""
    ws = open_workspace(ctx)
    info = admin_api.sign(ws, _actor(ctx, ws, as_principal), change)

    def human() -> None:
        if info["applied"]:
            console.print(
                f"Change {shown(info['change'])} applied ({info['valid_signatures']} of {info['required']} signatures)."
            )
        else:
            console.print(
                f"Signed change {shown(info['change'])}: {info['valid_signatures']} of {info['required']} signatures."
            )

    emit(as_json, info, human)


@admin.command("withdraw")
@click.argument("change")
@click.option("--reason", required=True, help="Why the change is dropped (recorded in the log).")
@as_option
@json_option
@click.pass_context
def admin_withdraw(ctx: click.Context, change: str, reason: str, as_principal: str | None, as_json: bool) -> None:
    """Withdraw (reject) pending CHANGE without applying it. Any admin."""
    ws = open_workspace(ctx)
    info = admin_api.withdraw(ws, _actor(ctx, ws, as_principal), change, reason=reason)
    emit(as_json, info, lambda: console.print(f"Change {shown(info['change'])} withdrawn."))


@admin.command("threshold")
@click.argument("k", required=False, type=click.IntRange(1, 100))
@as_option
@json_option
@click.pass_context
def admin_threshold(ctx: click.Context, k: int | None, as_principal: str | None, as_json: bool) -> None:
    """Show the admin threshold, or propose K (itself an admin change: it needs the current threshold)."""
    ws = open_workspace(ctx)
    if k is None:
        info = admin_api.threshold(ws)
        emit(
            as_json,
            info,
            lambda: console.print(
                f"admin threshold {info['threshold']} (admin changes need {info['required']} signature(s) now); "
                f"admins: {', '.join(info['admins'])}"
            ),
        )
        return
    done = admin_api.set_threshold(ws, _actor(ctx, ws, as_principal), k)
    emit(as_json, done, lambda: console.print(f"Admin threshold is now {done['threshold']}."))
