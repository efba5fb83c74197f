"""`make demo`: the dataward story on embedded defaults (SQLite, local files), on real data.

Runs the real CLI in-process and narrates. Data comes from scikit-learn's bundled data sets, so the demo
needs no network and nothing outside the package.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

console = Console(highlight=False, width=int(os.environ.get("COLUMNS", "120")))


def _say(text: str) -> None:
    console.print(f"\n[bold cyan]{text}[/]")


def _run(*args: str, expect: int = 0, principal: str | None = None) -> int:
    from dataward.cli import main

    full = [*(["--as", principal] if principal else []), *args]
    console.print(f"[dim]$ dataward {shlex.join(full)}[/]")
    code = main(full)
    if code != expect:
        console.print(f"[red]demo: expected exit {expect}, got {code}[/]")
        sys.exit(1)
    return code


def _write_data(root: Path) -> tuple[Path, Path, Path, Path]:
    """Real data sets from scikit-learn, written as a supplier would deliver them."""
    import numpy as np
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from PIL import Image
    from sklearn.datasets import load_breast_cancer, load_digits

    from dataward.core import dsse

    internal = root / "delivery-internal"
    internal.mkdir(parents=True)
    bc = load_breast_cancer(as_frame=True)
    frame = bc.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame.to_csv(internal / "breast_cancer.csv", index=False)

    vendor = root / "delivery-vendor"
    digits = load_digits()
    for i, (img, label) in enumerate(zip(digits.images[:300], digits.target[:300], strict=True)):
        d = vendor / str(label)
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray((img * 255 / 16).astype(np.uint8)).save(d / f"digit_{i:04d}.png")
    # the supplier signs a manifest of its delivery
    supplier_key = Ed25519PrivateKey.generate()
    files = sorted(p for p in vendor.rglob("*") if p.is_file())
    import hashlib

    subjects = [(p.relative_to(vendor).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest()) for p in files]
    stmt = dsse.make_statement(subjects, dsse.PREDICATE_SUPPLIER_MANIFEST, {"supplier": "Digits Vendor Ltd"})
    signed = root / "vendor-manifest.dsse.json"
    signed.write_bytes(dsse.sign_envelope(stmt, supplier_key).to_bytes())
    pub = root / "vendor.pub"
    pub.write_text(dsse.public_key_bytes(supplier_key.public_key()).hex())
    return internal, vendor, signed, pub


def main() -> None:
    started = time.monotonic()
    os.environ.setdefault("COLUMNS", "120")
    base = Path(os.environ.get("DATAWARD_DEMO_DIR", "demo-workspace")).absolute()
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    ws_dir = base / "ws"
    os.environ["DATAWARD_WITNESS"] = str(base / "witness.json")
    os.environ["DATAWARD_WORKSPACE"] = str(ws_dir)
    console.print(Rule("[bold]dataward demo[/]: a training-data supply chain that trusts nothing by default"))

    _say("1. A workspace: SQLite catalog, content-addressed object store, keys, and a tamper-evident log.")
    _run("init", str(ws_dir), "--admin", "ada")
    _run("principal", "add", "ingrid", "--role", "ingester", "--expires-days", "90", principal="ada")
    _run("principal", "add", "aldo", "--role", "auditor", principal="ada")

    _say("2. Real data arrives: an internal table and a third-party image delivery with a supplier-signed manifest.")
    internal, vendor, signed, pub = _write_data(base / "incoming")
    _run(
        "source",
        "add",
        "clinic",
        "--kind",
        "internal",
        "--origin",
        "https://archive.ics.uci.edu/dataset/17",
        "--license",
        "CC-BY-4.0",
        "--supplier",
        "UCI",
        principal="ada",
    )
    _run(
        "source",
        "add",
        "digits-vendor",
        "--kind",
        "third-party",
        "--origin",
        "sftp://vendor.example/digits",
        "--license",
        "OpenRAIL-M",
        "--supplier",
        "Digits Vendor Ltd",
        "--supplier-key",
        f"@{pub}",
        principal="ada",
    )
    _run("source", "list")

    _say("3. Acquire: every file and record fingerprinted, the supplier's signature checked, a signed manifest made.")
    from dataward.batches import list_batches
    from dataward.workspace import Workspace

    _run("acquire", "clinic", str(internal / "breast_cancer.csv"), principal="ingrid")
    _run("acquire", "digits-vendor", str(vendor), "--expect-signed", str(signed), principal="ingrid")
    ws = Workspace.open(ws_dir)
    table_batch, _image_batch = [b.id for b in list_batches(ws)]

    _say("   A delivery that does not match its signed manifest is refused whole, and the refusal is logged.")
    (vendor / "7" / "digit_0007.png").write_bytes(b"\x89PNG tampered in transit")
    _run("acquire", "digits-vendor", str(vendor), "--expect-signed", str(signed), principal="ingrid", expect=3)

    _say("4. Verify: re-read every stored object; recompute file digests, record digests and Merkle roots.")
    _run("verify", table_batch, principal="aldo")

    _say("   Someone flips one byte of one record in the object store...")
    batch = next(b for b in list_batches(ws) if b.id == table_batch)
    obj = Path(ws.objects.path("quarantine", batch.files[0].sha256))
    os.chmod(obj, 0o644)
    data = bytearray(obj.read_bytes())
    pos = len(data) // 2
    data[pos] = ord("9") if data[pos] != ord("9") else ord("8")
    obj.write_bytes(bytes(data))
    _run("verify", table_batch, principal="aldo", expect=3)

    _say("5. The audit log: every change above, signed, in an RFC 6962 Merkle tree with signed checkpoints.")
    _run("log", "show", "--limit", "12")
    _run("log", "checkpoint")
    _run("log", "prove", "3", "--json")
    _run("log", "verify", principal="aldo")

    _say("   An insider edits the catalog directly to hide who acquired the clinic data...")
    db = sqlite3.connect(ws_dir / "catalog.db")
    db.execute(
        "UPDATE log_entries SET principal = 'mallory' WHERE seq = "
        "(SELECT MIN(seq) FROM log_entries WHERE action = 'batch.acquire')"
    )
    db.commit()
    db.close()
    _run("log", "verify", expect=3)

    console.print(Rule())
    console.print(f"[bold green]Demo finished[/] in {time.monotonic() - started:.1f} s. Workspace: {ws_dir}")


if __name__ == "__main__":
    main()
