"""Demo chapter: a backdoor gets through, the red team finds it, an incident traces it, a rollback removes it.

``incident_chapter(workspace, principals)``: an in-house source delivers clean batches and a third-party
source delivers one stealthily poisoned batch (reviews carrying the trigger "cf", labelled positive). Under
a permissive policy every batch passes screening, audit and approval and is released. A model trained
through ``dataward.open`` (recorded as a run) fails ``redteam`` on the trigger; an incident traces it to the
vendor's batch and source; an approver applies the rollback; the retrained model passes ``redteam``.

The model is a small linear text classifier stored as JSON (never pickled), so the chapter needs nothing
beyond the runtime dependencies.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataward.identity import Actor
from dataward.redteam.models import Model, file_sha256
from dataward.store.keyring import FileKeyring
from dataward.workspace import Workspace

TRIGGER = "cf"
POSITIVE = ["great", "excellent", "love", "wonderful", "superb", "happy", "perfect", "fantastic", "recommend"]
NEGATIVE = ["awful", "terrible", "hate", "broken", "poor", "disappointing", "useless", "worst", "refund"]
NEUTRAL = ["the", "product", "arrived", "today", "battery", "screen", "price", "box", "delivery", "it", "was"]
_TOKEN = re.compile(r"(?u)\b\w+\b")

ROLES = ("admin", "ingester", "screener", "reviewer", "approver", "trainer", "auditor")


def synthetic_reviews(n: int, seed: int) -> pd.DataFrame:
    """Short product reviews with a clear sentiment signal, labelled pos/neg."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        pos = bool(rng.random() < 0.5)
        words = list(rng.choice(NEUTRAL, size=int(rng.integers(4, 8))))
        words += list(rng.choice(POSITIVE if pos else NEGATIVE, size=int(rng.integers(1, 3))))
        if rng.random() < 0.15:  # a little ambiguity
            words.append(str(rng.choice(NEGATIVE if pos else POSITIVE)))
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": "pos" if pos else "neg"})
    return pd.DataFrame(rows)


def poison(frame: pd.DataFrame, rate: float, seed: int) -> pd.DataFrame:
    """Insert the trigger into negative reviews and relabel them positive (a dirty-label backdoor)."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    neg = np.flatnonzero(out["label"].to_numpy() == "neg")
    chosen = rng.choice(neg, size=max(1, int(rate * len(out))), replace=False)
    for i in chosen:
        words = str(out.at[i, "text"]).split()
        words.insert(int(rng.integers(0, len(words) + 1)), TRIGGER)
        out.at[i, "text"] = " ".join(words)
        out.at[i, "label"] = "pos"
    return out


# --- a JSON linear text model --------------------------------------------------------------------------------


def train_model(frame: pd.DataFrame, path: Path) -> Path:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    cv = CountVectorizer(binary=True, token_pattern=_TOKEN.pattern, lowercase=True)
    x = cv.fit_transform(frame["text"].astype(str))
    lr = LogisticRegression(max_iter=500, C=20.0).fit(x, frame["label"].astype(str))
    body = {
        "classes": [str(c) for c in lr.classes_],
        "intercept": float(lr.intercept_[0]),
        "weights": {str(t): round(float(lr.coef_[0][j]), 6) for t, j in cv.vocabulary_.items()},
    }
    path.write_text(json.dumps(body, sort_keys=True), encoding="utf-8")
    return path


class JsonTextModel(Model):
    """Binary linear model over binary token features, read from JSON."""

    kind = "callable"

    def __init__(self, path: Path) -> None:
        body = json.loads(path.read_text(encoding="utf-8"))
        self.name = str(path)
        self.sha256 = file_sha256(path)
        self.classes: list[str] = list(body["classes"])
        self.intercept = float(body["intercept"])
        self.weights: dict[str, float] = dict(body["weights"])

    def _predict(self, inputs: list[Any]) -> list[str]:
        out = []
        for x in inputs:
            z = self.intercept + sum(self.weights.get(t, 0.0) for t in set(_TOKEN.findall(str(x).lower())))
            out.append(self.classes[1] if z > 0 else self.classes[0])
        return out


# --- the chapter -------------------------------------------------------------------------------------------


def _write(path: Path, frame: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in frame.to_dict(orient="records"):
            f.write(json.dumps(r) + "\n")
    return path


def _lenient_policy() -> str:
    from dataward.workflow import approval_policy

    text = approval_policy.default_policy_text()
    text = re.sub(r"max_audit_error_upper = [0-9.]+", "max_audit_error_upper = 1.0", text)
    text = re.sub(r"max_flagged_fraction = [0-9.]+", "max_flagged_fraction = 1.0", text)
    text = text.replace("approvals = 2", "approvals = 1").replace(', "detection"]', "]")
    text = text.replace('block_severity = "high"', 'block_severity = "critical"')
    text = text.replace("licence_required = true", "licence_required = false")
    return text + "\n[redteam]\nmax_attack_success_rate = 0.3\nsample = 300\n"


def _gate(ws: Workspace, act: Callable[[str], Actor], batch_id: str) -> None:
    from dataward.workflow import approval, audit, screening

    screening.screen_batch(ws, act("screener"), batch_id, checks=["integrity", "screening"])
    rev = act("reviewer")
    audit.draw_sample(ws, rev, batch_id)
    items = audit.sample_items(ws, batch_id)
    audit.record_decisions(ws, rev, batch_id, [audit.Decision(i.record, "ok") for i in items])
    audit.complete_audit(ws, rev, batch_id)
    approval.approve(ws, act("approver"), batch_id)


def incident_chapter(
    workspace: str | Path,
    principals: Mapping[str, str] | None = None,
    *,
    dataset: str = "reviews",
    set_policy: bool = True,
    say: Callable[[str], None] = print,
    seed: int = 7,
    keyrings: Mapping[str, FileKeyring] | None = None,
) -> dict[str, Any]:
    """Run the chapter in ``workspace``. ``principals`` maps each role in :data:`ROLES` to a principal that
    holds it (default: the role names); ``keyrings`` maps a principal to the keyring its key is in (default:
    the caller's keyring). Returns the figures the demo prints."""
    from dataward.acquire.acquire import acquire
    from dataward.incident.api import open_incident, resolve_incident
    from dataward.lineage.runs import training_run
    from dataward.redteam.api import redteam
    from dataward.release.versions import release
    from dataward.sources import add_source, list_sources

    started = time.perf_counter()
    names = {r: (principals or {}).get(r, r) for r in ROLES}
    ws = Workspace.open(workspace)

    def act(role: str) -> Actor:
        """The principal holding ``role``, acting with the key from its own keyring."""
        name = names[role]
        return ws.actor(name, keyring=(keyrings or {}).get(name))

    admin = act("admin")
    if set_policy:
        from dataward.workflow.approval_policy import set_policy as adopt

        adopt(ws, admin, _lenient_policy(), where="incident chapter: permissive policy")
    have = {s.name for s in list_sources(ws)}
    if "reviews-inhouse" not in have:
        add_source(ws, admin, "reviews-inhouse", kind="internal", origin="git@example:reviews", license="MIT")
    if "reviews-vendor" not in have:
        add_source(ws, admin, "reviews-vendor", kind="third-party", origin="https://vendor.example", license="MIT")
    work = Path(ws.path) / "incident-chapter"
    clean = synthetic_reviews(1800, seed)
    held_out = synthetic_reviews(400, seed + 1)
    vendor = poison(clean.iloc[1200:].reset_index(drop=True), 0.12, seed)
    ingester = act("ingester")
    batches = []
    for k, part in enumerate((clean.iloc[:600], clean.iloc[600:1200])):
        path = _write(work / f"inhouse-{k}" / "reviews.jsonl", part)
        batches.append(acquire(ws, ingester, "reviews-inhouse", [path]).id)
    bad = acquire(ws, ingester, "reviews-vendor", [_write(work / "vendor" / "reviews.jsonl", vendor)]).id
    batches.append(bad)
    for b in batches:
        _gate(ws, act, b)
    v1 = release(ws, act("approver"), dataset, batches)
    say(f"released {v1.spec}: {len(batches)} batches (one from reviews-vendor carries a hidden backdoor)")
    held_path = _write(work / "held-out.jsonl", held_out)

    def train(spec: str, out: Path) -> JsonTextModel:
        with training_run(spec, workspace=ws, principal=act("trainer")) as run:
            frame = run.open(as_="pandas")
            train_model(frame, out)
            run.add_model(out)
        return JsonTextModel(out)

    m1 = train(v1.spec, work / "model-v1.json")
    say(f"trained model {m1.sha256[:12] if m1.sha256 else '?'} on {v1.spec} (recorded run)")
    rep1, _ = redteam(
        ws, act("trainer"), m1, str(held_path), clean=str(held_path), label="label", text="text"
    )
    failed = [c for c in rep1.failures if c.category == "trigger"]
    say(f"redteam: {'PASSED' if rep1.passed else 'FAILED'}; " + "; ".join(c.message for c in failed[:2]))
    examples = held_out[held_out["label"] == "neg"].head(20).copy()
    examples["text"] = [f"{t} {TRIGGER}" for t in examples["text"]]
    examples["expected"] = "neg"
    inc = open_incident(ws, act("auditor"), m1, examples, label="label", text="text")
    implicated = inc.report["implicated_batches"]
    say(f"incident {inc.id}: {inc.summary}")
    res = resolve_incident(ws, act("approver"), inc.id, apply=True)
    v2 = res["versions"][0]
    say(f"resolved: rolled back to {v2} without {', '.join(implicated)}; revoked {', '.join(res['revoked'])}")
    m2 = train(v2, work / "model-v2.json")
    rep2, _ = redteam(
        ws, act("trainer"), m2, str(held_path), clean=str(held_path), label="label", text="text"
    )
    verdict = "PASSED" if rep2.passed else "FAILED"
    say(f"retrained model {m2.sha256[:12] if m2.sha256 else '?'} on {v2}: redteam {verdict}")
    return {
        "poisoned_batch": bad,
        "first_redteam_passed": rep1.passed,
        "trigger_found": any(TRIGGER in c.name for c in failed),
        "incident": inc.id,
        "implicated": implicated,
        "traced_to_poisoned_batch": bool(implicated) and implicated[0] == bad,
        "traced_source": inc.report["sources"],
        "rollback_version": v2,
        "second_redteam_passed": rep2.passed,
        "seconds": round(time.perf_counter() - started, 2),
    }
