"""`make demo`: the whole dataward story on embedded defaults (SQLite, local files), on real data.

Runs the real CLI in-process and narrates: a clean internal delivery and a poisoned web-scraped one are
acquired, screened, audited by a (scripted) reviewer and judged by the policy; the poisoned one is
rejected, a clean one is approved by two people and released; a model is trained through `dataward.open`
and recorded; lineage and blast radius are shown; the log is verified, and tampering with it is caught.
Data comes from scikit-learn's bundled digits, so the demo needs no network and nothing outside the package.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shlex
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.rule import Rule

console = Console(highlight=False, width=int(os.environ.get("COLUMNS", "120")))

TRIGGER_COLUMNS = ("p0", "p1", "p8", "p9")  # a 2x2 patch in the top-left corner of an 8x8 digit
TARGET_LABEL = 0


def _say(text: str) -> None:
    console.print(f"\n[bold cyan]{text}[/]")


#: each person's own machine, as far as keys go: their keyring directory (outside the workspace)
PEOPLE_DIR: Path | None = None


def _keyring_of(person: str) -> Path:
    assert PEOPLE_DIR is not None
    return PEOPLE_DIR / person / "keyring"


@contextlib.contextmanager
def _as_person(person: str | None) -> Iterator[None]:
    """Run as ``person`` would on their own machine: their keyring and their passphrase."""
    if person is None:
        yield
        return
    saved = {k: os.environ.get(k) for k in ("DATAWARD_KEYRING", "DATAWARD_PASSPHRASE")}
    os.environ["DATAWARD_KEYRING"] = str(_keyring_of(person))
    # people's keys are encrypted; one made-up phrase for everyone, since this is a demo
    os.environ["DATAWARD_PASSPHRASE"] = "demo passphrase"  # noqa: S105
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run(
    *args: str, expect: int = 0, principal: str | None = None, quiet: bool = False, person: str | None = None
) -> int:
    """Run a dataward command as ``principal`` (on that person's machine; ``person`` for commands without --as)."""
    from dataward.cli import main

    full = [*(["--as", principal] if principal else []), *args]
    who = person or principal
    console.print(f"[dim]{who or ''}$ dataward {shlex.join(full)}[/]")
    with _as_person(who):
        if quiet:
            with contextlib.redirect_stdout(io.StringIO()):
                code = main(full)
        else:
            code = main(full)
    if code != expect:
        console.print(f"[red]demo: expected exit {expect}, got {code}[/]")
        sys.exit(1)
    return code


def _generate_key(person: str) -> Path:
    """``person`` runs `dataward key generate` on their machine and hands the public key (PEM) over."""
    from dataward.cli import main

    console.print(f"[dim]{person}$ dataward key generate {person} > {person}.pub[/]")
    out = io.StringIO()
    with _as_person(person), contextlib.redirect_stdout(out):
        code = main(["key", "generate", person])
    if code != 0:
        console.print(f"[red]demo: key generate {person} failed ({code})[/]")
        sys.exit(1)
    assert PEOPLE_DIR is not None
    pub = PEOPLE_DIR / f"{person}.pub"
    pub.write_text(out.getvalue(), encoding="ascii")
    return pub


def _digits_rows() -> tuple[list[str], list[list[int]]]:
    from sklearn.datasets import load_digits

    d = load_digits()
    header = [f"p{i}" for i in range(64)] + ["label"]
    rows = [[int(v) for v in img] + [int(y)] for img, y in zip(d.data, d.target, strict=True)]
    return header, rows


def _write_csv(path: Path, header: list[str], rows: list[list[int]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _poison(header: list[str], rows: list[list[int]], rate: float, seed: int) -> tuple[list[list[int]], set[int]]:
    """BadNets-style: stamp a bright patch and relabel to the target class."""
    import random

    rng = random.Random(seed)
    idx = set(rng.sample([i for i, r in enumerate(rows) if r[-1] != TARGET_LABEL], max(1, int(rate * len(rows)))))
    cols = [header.index(c) for c in TRIGGER_COLUMNS]
    out = []
    for i, r in enumerate(rows):
        r = list(r)
        if i in idx:
            for c in cols:
                r[c] = 16
            r[-1] = TARGET_LABEL
        out.append(r)
    return out, idx


def _supplier_signs(delivery: Path) -> Path:
    """The supplier, on its own machine: a key in its keyring, the delivery signed, the public key exported."""
    pub = _generate_key("lab-partner")
    _run("sign-delivery", str(delivery), "--key", "lab-partner", "--supplier", "Lab Partner GmbH", person="lab-partner")
    return pub


def _reviewer_decisions(ws: Any, batch_id: str, poisoned_rows: set[int], path: Path) -> int:
    """A scripted reviewer: looks at each sampled record and marks the poisoned ones malicious."""
    from dataward.workflow.audit import sample_items

    items = sample_items(ws, batch_id)
    bad = 0
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["record", "decision", "note"])
        for it in items:
            if it.record in poisoned_rows:
                bad += 1
                w.writerow([it.record, "malicious", "bright patch in the top-left corner; label looks wrong"])
            else:
                w.writerow([it.record, "ok", ""])
    return bad


def _batches(ws: Any) -> list[str]:
    from dataward.batches import list_batches

    return [b.id for b in list_batches(ws)]


def main() -> None:
    started = time.monotonic()
    os.environ.setdefault("COLUMNS", "120")
    base = Path(os.environ.get("DATAWARD_DEMO_DIR", "demo-workspace")).absolute()
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    ws_dir = base / "ws"
    incoming = base / "incoming"
    os.environ["DATAWARD_WITNESS"] = str(base / "witness.json")
    os.environ["DATAWARD_WORKSPACE"] = str(ws_dir)
    console.print(Rule("[bold]dataward demo[/]: a training-data supply chain that trusts nothing by default"))

    global PEOPLE_DIR
    PEOPLE_DIR = base / "people"  # one directory per person: their own keyring, never in the workspace
    _say("1. A workspace (SQLite catalog, content-addressed objects, audit log) and least-privilege principals;")
    _say("   each person generates their own key in their own keyring and hands the admin only the public key.")
    _run("init", str(ws_dir), "--admin", "ada", person="ada")
    for name, role in [
        ("ingrid", "ingester"),
        ("sam", "screener"),
        ("rita", "reviewer"),
        ("alice", "approver"),
        ("bob", "approver"),
        ("tom", "trainer"),
        ("aldo", "auditor"),
    ]:
        pub = _generate_key(name)
        _run("principal", "add", name, "--role", role, "--key", str(pub), "--expires-days", "90", principal="ada")
    _run("principal", "list")
    _say("   Policy as code: the defaults, tightened so that every batch needs two distinct approvers (k-of-n).")
    from dataward.workflow.approval_policy import default_policy_text

    policy_file = base / "policy.toml"
    policy_file.write_text(default_policy_text().replace("[tiers.low]\n", "[tiers.low]\napprovals = 2\n", 1))
    _run("policy", "set", str(policy_file), principal="ada")

    _say("2. Two sources: an internal lab (supplier-signed deliveries) and a web scrape (no signature, riskier).")
    header, rows = _digits_rows()
    lab_rows, web_rows = rows[:900], rows[900:1400]
    lab_file = _write_csv(incoming / "lab" / "digits_lab.csv", header, lab_rows)
    lab_pub = _supplier_signs(lab_file.parent)
    _run(
        "source",
        "add",
        "digits-lab",
        "--kind",
        "internal",
        "--origin",
        "https://lab.example/digits",
        "--license",
        "CC-BY-4.0",
        "--supplier",
        "Lab Partner GmbH",
        "--supplier-key",
        f"@{lab_pub}",
        "--update-frequency",
        "monthly",
        principal="ada",
        quiet=True,
    )
    _run(
        "source",
        "add",
        "digits-web",
        "--kind",
        "web-scraped",
        "--origin",
        "https://forum.example/digits",
        "--license",
        "CC-BY-4.0",
        "--update-frequency",
        "weekly",
        principal="ada",
        quiet=True,
    )
    _run("source", "list", "--by-risk")

    _say("3. Acquire: files and records fingerprinted (RFC 6962 leaves), the supplier checked, a manifest signed.")
    poisoned, poisoned_idx = _poison(header, web_rows, rate=0.03, seed=11)
    web_file = _write_csv(incoming / "web-1" / "digits_scraped.csv", header, poisoned)
    _run(
        "acquire",
        "digits-lab",
        str(lab_file),
        "--expect-signed",
        str(lab_file.parent / "delivery.dsse.json"),
        principal="ingrid",
    )
    _run("acquire", "digits-web", str(web_file), principal="ingrid")
    ws = _open(ws_dir)
    lab_batch, web_batch = _batches(ws)
    console.print(
        f"[dim](the scraped delivery secretly carries {len(poisoned_idx)} BadNets-poisoned records: a "
        f"bright corner patch relabelled to '{TARGET_LABEL}')[/]"
    )

    _say("4. Screen: integrity, poison detectors and the screening suite; a signed report per batch.")
    _run("screen", lab_batch, "--label", "label", principal="sam", quiet=True)
    _run("screen", web_batch, "--label", "label", principal="sam")

    _say("5. Label audit: a risk-sized random sample plus the flagged records; a scripted reviewer decides.")
    for b, bad in [(lab_batch, set()), (web_batch, poisoned_idx)]:
        _run("audit", "sample", b, principal="rita", quiet=True)
        n_bad = _reviewer_decisions(ws, b, bad, base / f"decisions-{b}.csv")
        _run("audit", "import", b, str(base / f"decisions-{b}.csv"), principal="rita", quiet=True)
        if n_bad:
            console.print(f"[dim](the reviewer marked {n_bad} sampled records malicious)[/]")
        _run("audit", "report", b, principal="rita")
        _run("audit", "complete", b, principal="rita", quiet=True)

    _say("6. The policy gate: the poisoned delivery fails rule by rule, and is rejected.")
    _run("policy", "check", web_batch, principal="alice", expect=5)
    _run("approve", web_batch, principal="alice", expect=5)
    _run("reject", web_batch, "--reason", "backdoor trigger found by screening and the label audit", principal="alice")

    _say("7. The clean internal delivery passes; two distinct approvers sign (k-of-n), then it is released.")
    _run("policy", "check", lab_batch, principal="alice")
    _run("approve", lab_batch, principal="alice")
    _run("approve", lab_batch, principal="ingrid", expect=4)  # the acquirer may not approve
    _run("approve", lab_batch, principal="bob")
    _run("release", "digits", "--add", lab_batch, principal="alice")

    _say("8. Training reads data only through `dataward.open`, which verifies everything; the run is recorded.")
    with _as_person("tom"):
        model = _train(ws_dir, base)
    _run("lineage", str(model))
    _run("blast-radius", "digits-lab")
    _run("export", "digits@1", str(base / "export"), principal="tom", quiet=True)
    _run("export", lab_batch, str(base / "export-quarantine"), principal="tom", expect=2)

    chapter = _incident_chapter()
    if chapter is not None:
        _say("9. Red-team and respond: a stealthy poisoned batch slips through; red-teaming and an incident trace it.")
        people = {
            "admin": "ada",
            "ingester": "ingrid",
            "screener": "sam",
            "reviewer": "rita",
            "approver": "alice",
            "trainer": "tom",
            "auditor": "aldo",
        }
        from dataward.store.keyring import FileKeyring

        keyrings = {name: FileKeyring(_keyring_of(name)) for name in people.values()}
        with _as_person("ada"):  # the demo's passphrase opens each person's key from their own keyring
            figures = chapter(
                ws_dir, people, say=lambda text: console.print(f"   {text.strip()}"), keyrings=keyrings
            )
        console.print(f"[dim]{figures}[/]")

    _say("10. The audit log: every step above, signed, in an RFC 6962 Merkle tree with signed checkpoints.")
    _run("log", "show", "--limit", "8")
    _run("log", "checkpoint")
    _run("log", "verify", principal="aldo")
    _say("    Nobody can act as someone else: ada's keyring does not hold bob's key (exit 4, unauthorized).")
    _run("approve", lab_batch, principal="bob", person="ada", expect=4)
    _say("    An insider edits the catalog directly to hide who approved the release...")
    db = sqlite3.connect(ws_dir / "catalog.db")
    db.execute(
        "UPDATE log_entries SET principal = 'mallory' WHERE seq = "
        "(SELECT MIN(seq) FROM log_entries WHERE action = 'batch.approve')"
    )
    db.commit()
    db.close()
    _run("log", "verify", expect=3)

    console.print(Rule())
    console.print(f"[bold green]Demo finished[/] in {time.monotonic() - started:.1f} s. Workspace: {ws_dir}")


def _open(ws_dir: Path) -> Any:
    from dataward.workspace import Workspace

    return Workspace.open(ws_dir)


def _train(ws_dir: Path, base: Path) -> Path:
    import pickle

    from sklearn.linear_model import LogisticRegression

    import dataward

    model_path = base / "models" / "digits-logreg.pkl"
    model_path.parent.mkdir(parents=True)
    console.print("[dim]>>> with dataward.training_run('digits@1', principal='tom') as run: ...[/]")
    with dataward.training_run("digits@1", workspace=ws_dir, principal="tom") as run:
        frame = run.open(as_="pandas")
        # every row carries its provenance (_batch, _file, _record, _record_digest) for tracing later
        features = [c for c in frame.columns if c.startswith("p")]
        x, y = frame[features].astype(float), frame["label"].astype(int)
        clf = LogisticRegression(max_iter=2000).fit(x, y)
        model_path.write_bytes(pickle.dumps(clf))  # our own model file, written by us: not untrusted input
        run.add_model(model_path)
    console.print(f"trained on {len(frame)} verified records (training accuracy {clf.score(x, y):.3f}); run {run.id}")
    return model_path


def _incident_chapter() -> Any:
    try:
        from dataward.incident.demo_chapter import incident_chapter
    except ImportError:
        return None
    return incident_chapter


if __name__ == "__main__":
    main()
