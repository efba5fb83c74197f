"""Commands: acquire, verify, batch."""

from __future__ import annotations

import contextlib
import os

import click

from dataward.acquire.acquire import acquire
from dataward.acquire.verify import verify_batch
from dataward.batches import get_batch, list_batches
from dataward.cli._app import cli
from dataward.cli._util import (
    acting,
    byte_progress,
    console,
    emit,
    emit_json,
    json_option,
    open_workspace,
    print_table,
    version_reader,
)
from dataward.core.signer import Signer
from dataward.identity import Actor
from dataward.model.subject import Subject
from dataward.records.leaves import FORMATS
from dataward.workspace import Workspace


def _total_bytes(paths: tuple[str, ...]) -> int:
    total = 0
    for p in paths:
        if os.path.isdir(p):
            for dp, _dn, fns in os.walk(p):
                for fn in fns:
                    with contextlib.suppress(OSError):
                        total += os.path.getsize(os.path.join(dp, fn))
        elif os.path.isfile(p):
            total += os.path.getsize(p)
    return total


@cli.command("acquire")
@click.argument("source_name", metavar="SOURCE")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--expect", type=click.Path(dir_okay=False), help="Supplier's SHA256SUMS file (sha256sum format).")
@click.option("--expect-signed", type=click.Path(dir_okay=False), help="Supplier-signed DSSE manifest.")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default=None, help="Record format (default: by extension)."
)
@click.option("--scheduler", metavar="tcp://HOST:PORT", help="Hash records on this Dask cluster.")
@click.option("--workers", type=click.IntRange(1, 1024), help="Hash records on a local Dask cluster of N workers.")
@click.option("--allow-unsigned", is_flag=True, help="Accept a delivery without the supplier's signed manifest.")
@click.option("--reason", default=None, help="Why an unsigned delivery is accepted (needed with --allow-unsigned).")
@json_option
@click.pass_context
def acquire_cmd(
    ctx: click.Context,
    source_name: str,
    paths: tuple[str, ...],
    expect: str | None,
    expect_signed: str | None,
    fmt: str | None,
    scheduler: str | None,
    workers: int | None,
    allow_unsigned: bool,
    reason: str | None,
    as_json: bool,
) -> None:
    """Acquire PATHS from SOURCE into a new quarantined batch.

    A source with a supplier key needs the supplier's signed manifest (--expect-signed FILE, or a
    delivery.dsse.json inside a delivered directory).
    """
    from dataward.scale.dask import make_executor

    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    with contextlib.ExitStack() as stack, byte_progress(_total_bytes(paths), "acquiring") as progress:
        executor = make_executor(scheduler, workers)
        if executor is not None:
            stack.enter_context(executor)
        batch = acquire(
            ws,
            actor,
            source_name,
            paths,
            expect=expect,
            expect_signed=expect_signed,
            format=fmt,
            progress=progress,
            executor=executor,
            allow_unsigned=allow_unsigned,
            reason=reason,
        )

    def human() -> None:
        console.print(
            f"Batch [bold]{batch.id}[/] from {batch.source}: {batch.file_count} file(s), "
            f"{batch.record_count:,} record(s), "
            f"{batch.byte_count:,} bytes, state [yellow]{batch.state}[/]"
        )
        console.print(f"  Merkle root {batch.merkle_root}")
        console.print(f"  signed manifest {batch.manifest_digest}")

    emit(as_json, batch.to_json(), human)


@cli.command("verify")
@click.argument("batch_id", metavar="BATCH")
@click.option("--regenerate", is_flag=True, help="Synthetic batch: re-run its generator and compare Merkle roots.")
@click.option("--path", "search_path", default=None, help="With --regenerate: where the generator module lives.")
@json_option
@click.pass_context
def verify_cmd(ctx: click.Context, batch_id: str, regenerate: bool, search_path: str | None, as_json: bool) -> None:
    """Re-read and re-hash every object of BATCH; check records, Merkle roots and the manifest signature."""
    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    if regenerate:
        _regenerate(ctx, ws, actor, batch_id, search_path, as_json)
        return
    report = verify_batch(ws, batch_id)
    ws.record(actor, "batch.verify", Subject.batch(batch_id), {"ok": report.ok, "problems": len(report.problems)})
    if as_json:
        emit_json(report.to_json())
    elif report.ok:
        console.print(
            f"[green]OK[/] batch {batch_id}: {report.files_checked} file(s), {report.records_checked:,} record(s), "
            f"manifest signed by {report.signer}"
        )
    else:
        console.print(f"[red]FAILED[/] batch {batch_id}: {len(report.problems)} problem(s)")
        for p in report.problems:
            console.print(f"  {p.line()}", markup=False)
    ctx.exit(0 if report.ok else 3)


def _regenerate(
    ctx: click.Context, ws: Workspace, actor: Actor, batch_id: str, search_path: str | None, as_json: bool
) -> None:
    from dataward.synthetic import regenerate

    res = regenerate(ws, actor, batch_id, search_path=search_path, read_version=version_reader(ws, actor))
    ws.record(actor, "batch.verify", Subject.batch(batch_id), {"regenerated": res.ok, "problems": list(res.problems)})
    if as_json:
        emit_json(res.to_json())
    elif res.ok:
        console.print(f"[green]OK[/] batch {batch_id} regenerates bit for bit: Merkle root {res.expected_root}")
    else:
        console.print(f"[red]FAILED[/] batch {batch_id} does not regenerate:")
        for p in res.problems:
            console.print(f"  {p}", markup=False)
    ctx.exit(0 if res.ok else 3)


@cli.group()
def batch() -> None:
    """Batches: list, show."""


@batch.command("list")
@click.option("--source", default=None)
@click.option("--state", default=None)
@json_option
@click.pass_context
def batch_list(ctx: click.Context, source: str | None, state: str | None, as_json: bool) -> None:
    """List batches."""
    ws = open_workspace(ctx)
    items = list_batches(ws, source=source, state=state)

    def human() -> None:
        from rich.table import Table

        t = Table("batch", "source", "state", "files", "records", "acquired", "by")
        for b in items:
            t.add_row(
                b.id, b.source, str(b.state), str(b.file_count), f"{b.record_count:,}", b.created_at[:19], b.created_by
            )
        print_table(t)

    emit(as_json, [b.to_json() for b in items], human)


@batch.command("show")
@click.argument("batch_id", metavar="BATCH")
@json_option
@click.pass_context
def batch_show(ctx: click.Context, batch_id: str, as_json: bool) -> None:
    """Show a batch and its files."""
    ws = open_workspace(ctx)
    b = get_batch(ws, batch_id)

    def human() -> None:
        from rich.table import Table

        console.print(f"[bold]{b.id}[/] from {b.source}, state {b.state}, acquired {b.created_at} by {b.created_by}")
        t = Table("file", "format", "records", "bytes", "sha256")
        for f in b.files:
            t.add_row(f.name, f.format, f"{f.record_count:,}", f"{f.size:,}", f.sha256[:16] + "...")
        print_table(t)

    emit(as_json, b.to_json(), human)


@cli.command("sign-delivery")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--key",
    "key",
    required=True,
    help="Your private key: a PEM file, or the name of a key in your keyring (DATAWARD_KEYRING).",
)
@click.option("--supplier", default=None, help="Your organisation's name (recorded in the manifest).")
@click.option("--force", is_flag=True, help="Replace an existing delivery.dsse.json.")
@json_option
def sign_delivery_cmd(directory: str, key: str, supplier: str | None, force: bool, as_json: bool) -> None:
    """Supplier side: sign every file in DIRECTORY into DIRECTORY/delivery.dsse.json (no workspace needed)."""
    from dataward.acquire.supplier import sign_delivery

    signer = load_signing_key(key)
    out, info = sign_delivery(directory, signer, supplier=supplier, force=force)
    emit(
        as_json,
        info,
        lambda: console.print(f"Signed {info['files']} file(s) into {out} (key {info['keyid'][:16]})."),
    )


def load_signing_key(key: str) -> Signer:
    """A Signer from a PEM private key file (passphrase from DATAWARD_PASSPHRASE or a prompt), or a keyring name."""
    import sys
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from dataward.core.signer import PrivateKeySigner
    from dataward.errors import InputError, SignatureError
    from dataward.store.keyring import PASSPHRASE_ENV, FileKeyring, PassphraseNeeded

    path = Path(key)
    if not path.is_file():
        try:
            return FileKeyring().signer(key)
        except PassphraseNeeded:
            if not sys.stdin.isatty():
                raise
            p = click.prompt(f"Passphrase for {key}'s key", hide_input=True, err=True)
            return FileKeyring().signer(key, passphrase=str(p).encode())
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the key ({exc.strerror})") from None
    password = None
    if b"ENCRYPTED" in pem:
        env = os.environ.get(PASSPHRASE_ENV)
        if env is None and sys.stdin.isatty():
            env = str(click.prompt(f"Passphrase for {path}", hide_input=True, err=True))
        if env is None:
            raise SignatureError(f"{path} is encrypted and no passphrase was given", advice=f"Set {PASSPHRASE_ENV}.")
        password = env.encode()
    try:
        loaded = load_pem_private_key(pem, password=password)
    except (ValueError, TypeError):
        raise InputError(f"{path}: not a PEM private key, or the passphrase is wrong") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise InputError(f"{path}: dataward signs with Ed25519 keys, this is a {type(loaded).__name__}")
    return PrivateKeySigner(loaded)
