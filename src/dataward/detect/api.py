"""``dataward.detect``: run every applicable detector and combine them into one report.

The ensemble (docs/adr/0003-detection-ensemble.md, calibrated by docs/adr/0021-calibrated-alarms.md):

- every detector scores every record and flags by its own rule; calibrated detectors also give
  per-record p-values (``DetectorResult.pvalues``) and finding p-values (``Finding.p_value``, or
  ``evidence["p_value"]``); a detector with scores only gets p-values from Efron's empirical null of its
  scores (:func:`dataward.core.evidence.empirical_null_pvalues`);
- **false discovery rate, not a union** (docs/adr/0043-fusion-fdr-and-label-noise-mixture.md): the
  findings that carry a p-value are tested together with Benjamini-Hochberg at q = 0.05, and so are the
  per-record p-values of every detector that gives them (one family: detectors x records); a flagged
  record stays flagged when a discovered finding holds it, when its own p-value is a discovery, or when
  its detector gives no p-values at all (rule-based detectors such as exact duplicates with conflicting
  labels; listed as ``uncalibrated`` in the report);
- **label noise** (docs/adr/0075-label-flips-through-fusion.md): a ``label_issues`` finding holds the
  detector's final flags, with the mixture the detector's cut read (natural, or with class biases) and each
  record's probability of its label under it; its p-value is the mixture's test, so the finding must be a
  BH discovery among the findings. Its records stay flagged where that mixture makes the label more likely
  wrong than right (posterior >= :data:`WRONG_LABEL`), after the noise share carried by records a trigger
  explains is taken out (:func:`label_noise_posteriors`);
- **attribution**: a record that a discovered trigger finding explains is attributed to that finding and
  removed from label-issue findings (its label looks wrong because of the trigger, not as noise), together
  with the noise share it carried; a trigger finding that borrows a stronger trigger's records far beyond
  chance is subsumed by it (``findings_subsumed``);
- **label quality beside a trigger** (docs/adr/0049-label-quality-beside-triggers-and-screened-window-codes.md):
  once a discovered trigger finding explains the attack, label-noise records no trigger explains are one
  low-severity ``label_quality`` finding per label pair and are not flagged (``flagged`` holds the records
  the report takes for poison); with no trigger, label noise stays flagged (label flips are an attack);
- the ensemble score is the cubic mean of the detector scores (:data:`SCORE_POWER`; the root-mean-square
  until docs/adr/0085-ensemble-score-cubic-mean.md), mapped into [0.5, 1] for flagged records and [0, 0.5)
  for the others, so 0.5 is the ensemble's threshold; ``pvalues`` of the report are
  the combined per-record p-values. Every flagged record carries the reasons of the detectors that
  flagged it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataward.core.evidence import FDR, as_pvalue, benjamini_hochberg, empirical_null_pvalues
from dataward.core.severity import SEVERITIES, Severity
from dataward.detect import registry
from dataward.detect.interface import (
    BoolArray,
    DetectionError,
    Detector,
    DetectorResult,
    Finding,
    FloatArray,
    Modality,
    Reason,
    Representation,
)
from dataward.detect.representation import from_frame, load_records
from dataward.progress import Progress, Task

THRESHOLD = 0.5
#: order of the power mean of the detector scores that ranks records (2 was the root-mean-square; ADR 0085)
SCORE_POWER = 3.0
#: a label-noise record stays flagged when its label is at least this likely wrong (more likely wrong than right)
WRONG_LABEL = 0.5
#: per-record evidence of a label-issue finding, aligned with its records (trimmed alike)
_PER_RECORD = ("label_probability", "wrong_label_posterior")


def load_builtin_detectors() -> None:
    """Import the detector modules shipped with dataward (the registry's built-in table)."""
    registry.load_all()


@dataclass(frozen=True, eq=False)
class DetectionReport:
    """The outcome of :func:`detect`: per-record scores, flags, reasons, and findings (most severe first)."""

    n_records: int
    modality: str
    ids: tuple[str, ...]
    scores: FloatArray
    flagged: BoolArray
    reasons: Mapping[int, tuple[Reason, ...]]
    findings: tuple[Finding, ...]
    detectors: tuple[Mapping[str, Any], ...]
    results: Mapping[str, DetectorResult] = field(default_factory=dict)
    threshold: float = THRESHOLD
    seed: int = 0
    source: str = ""
    seconds: float = 0.0
    #: combined per-record p-values (Bonferroni over the detectors' own or empirical-null p-values)
    pvalues: FloatArray | None = None
    #: what fusion did: FDR level, discoveries, records dropped by FDR control and by attribution
    fusion: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_flagged(self) -> int:
        return int(self.flagged.sum())

    def to_json(self) -> dict[str, Any]:
        findings = self.findings_json()
        return {
            "n_records": self.n_records,
            "modality": self.modality,
            "source": self.source,
            "seed": self.seed,
            "threshold": self.threshold,
            "n_flagged": self.n_flagged,
            "seconds": round(self.seconds, 4),
            "fusion": _plain(self.fusion),
            "records": [
                {
                    "index": i,
                    "id": self.ids[i],
                    "score": round(float(self.scores[i]), 6),
                    "p_value": None if self.pvalues is None else float(f"{self.pvalues[i]:.4g}"),
                    "flagged": bool(self.flagged[i]),
                    "reasons": [{"detector": r.detector, "detail": r.detail} for r in self.reasons.get(i, ())],
                }
                for i in range(self.n_records)
            ],
            # the common findings schema (docs/findings.schema.json), as `check --json` prints them
            "findings": findings,
            "subject": self.source,
            "max_severity": max((f["severity"] for f in findings), key=SEVERITIES.index, default=None),
            "finding_counts": {s: sum(f["severity"] == s for f in findings) for s in SEVERITIES[::-1]},
            "results": [
                {
                    "check": str(d.get("name")),
                    "findings": [f for f in findings if f["check"] == d.get("name")],
                    "stats": _plain(d.get("params") or {}),
                    "seconds": d.get("seconds", 0.0),
                    "skipped": d.get("skipped"),
                }
                for d in self.detectors
            ],
            "detectors": [_plain(d) for d in self.detectors],
        }

    def findings_json(self) -> list[dict[str, Any]]:
        """The findings in the common findings schema: ``check`` is the detector, ``severity`` the level
        (the detector's 0..1 severity is ``evidence.score``, its p-value ``evidence.p_value``)."""
        out = []
        for f in self.findings:
            records = [int(r) for r in f.records]
            ev = _plain(f.evidence)
            evidence = {**(ev if isinstance(ev, dict) else {"detail": ev})}
            evidence.update({"detector": f.check, "score": round(f.rank_score, 4), "p_value": _finding_p(f)})
            out.append(
                {
                    "check": f.check,
                    "kind": f.kind,
                    "severity": f.severity.value,
                    "summary": f.summary,
                    "records": records,
                    "n_records": len(records),
                    "evidence": evidence,
                }
            )
        return out

    def summary(self, top: int = 8) -> str:
        """A short human summary: how many records are flagged, and the top findings."""
        lines = [
            f"{self.n_records} {self.modality} records, {self.n_flagged} flagged "
            f"({100.0 * self.n_flagged / max(1, self.n_records):.1f}%), "
            f"{sum(1 for d in self.detectors if not d.get('skipped'))} detectors ran"
        ]
        if not self.findings:
            lines.append("no findings")
        for f in self.findings[:top]:
            lines.append(f"- [{f.kind}] {f.summary} ({len(f.records)} records; {f.check})")
        if len(self.findings) > top:
            lines.append(f"... and {len(self.findings) - top} more findings (see --json)")
        skipped = [d for d in self.detectors if d.get("skipped")]
        for d in skipped:
            lines.append(f"  skipped {d['name']}: {d['skipped']}")
        return "\n".join(lines)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def detect(
    data: str | Path | pd.DataFrame | Representation,
    *,
    format: str | None = None,
    label: str | None = None,
    text: str | None = None,
    prompt: str | None = None,
    response: str | None = None,
    messages: str | None = None,
    image: str | None = None,
    features: Sequence[str] | None = None,
    embeddings: str | Path | None = None,
    seed: int = 0,
    detectors: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    params: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Progress | None = None,
) -> DetectionReport:
    """Detect poisoned or mislabelled records in ``data`` (a path, a DataFrame or a Representation).

    ``detectors`` restricts the run to those names (default: every registered detector that supports the
    modality and is enabled by default; opt-in ones such as ``activation_clustering`` must be named);
    ``params`` passes constructor keyword arguments per detector name.
    """
    roles: dict[str, Any] = {
        "label": label,
        "text": text,
        "prompt": prompt,
        "response": response,
        "messages": messages,
        "image": image,
        "features": features,
        "embeddings": embeddings,
    }
    from threadpoolctl import threadpool_limits

    # One BLAS thread: the many small dense fits spend more time on thread hand-offs than on work when
    # the machine is busy (measured: 30 s vs 0.4 s on digits), and results stay reproducible.
    with threadpool_limits(limits=1):
        return _detect(data, format, roles, seed, detectors, exclude, params, progress)


def _detect(
    data: str | Path | pd.DataFrame | Representation,
    format: str | None,
    roles: Mapping[str, Any],
    seed: int,
    detectors: Sequence[str] | None,
    exclude: Sequence[str],
    params: Mapping[str, Mapping[str, Any]] | None,
    progress: Progress | None,
) -> DetectionReport:
    started = time.perf_counter()
    if isinstance(data, Representation):
        rep = data
    elif isinstance(data, pd.DataFrame):
        rep = from_frame(data, **roles)
    else:
        rep = load_records(data, format=format, **roles)
    load_builtin_detectors()
    chosen = _choose(rep, detectors, exclude)
    results: dict[str, DetectorResult] = {}
    meta: list[dict[str, Any]] = []
    with _progress(progress, len(chosen)) as advance:
        done = _run_all(chosen, params or {}, rep, seed, advance)
        for cls in chosen:
            result = done[cls.name]
            results[cls.name] = result
            meta.append(
                {
                    "name": cls.name,
                    "params": dict(result.params),
                    "seconds": round(result.seconds, 4),
                    "skipped": result.skipped,
                    "n_flagged": int(result.flagged.sum()) if result.skipped is None else 0,
                }
            )
    return combine(rep, results, meta, seed=seed, seconds=time.perf_counter() - started)


#: from this many records on, the detectors run in two processes (a fork); below it a fork costs more than it saves
PARALLEL_RECORDS = 20_000
#: set to "2" to run the detectors in two processes (opt-in: on a shared 2-core machine no gain could be
#: shown against one process, ADR 0064); anything else runs every detector in this process
ENV_PROCESSES = "DATAWARD_DETECT_PROCESSES"
#: detectors that share work through the process they run in (one tokenisation of the texts): kept together
_SHARED_WORK = frozenset({"text_triggers", "text_combos"})


def _run_all(
    chosen: Sequence[type[Detector]],
    params: Mapping[str, Mapping[str, Any]],
    rep: Representation,
    seed: int,
    advance: Any,
) -> dict[str, DetectorResult]:
    """Every chosen detector's result; on large inputs a forked worker runs part of them meanwhile.

    The detectors are independent and single-threaded (one BLAS thread), so on a machine with two CPUs or
    more the detectors outside :data:`_SHARED_WORK` run in a forked child (it inherits the representation,
    nothing is copied in) while this process runs the rest. The child's results come back through the
    records sandbox's restricted unpickler (values only). If the child fails in any way, its detectors run
    here: the report is the same either way, the run only takes longer.
    """

    def run(classes: Sequence[type[Detector]], tick: Any) -> dict[str, DetectorResult]:
        out: dict[str, DetectorResult] = {}
        for cls in classes:
            out[cls.name] = _run(cls, dict(params.get(cls.name, {})), rep, seed)
            tick(cls.name)
        return out

    here = [c for c in chosen if c.name in _SHARED_WORK]
    there = [c for c in chosen if c.name not in _SHARED_WORK]
    if not (here and there and _may_fork(rep.n_records)):
        return run(chosen, advance)
    import pickle
    import threading

    from dataward.records.sandbox import load_values, read_all

    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        status = 0
        try:
            os.close(rfd)
            data = pickle.dumps(run(there, lambda _name: None), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(wfd, "wb") as out:
                out.write(data)
        except BaseException:
            status = 70
        finally:
            os._exit(status)
    os.close(wfd)
    received: dict[str, bytes] = {}
    # the child blocks once the pipe is full: read it meanwhile, so that both sides work at once
    reader = threading.Thread(target=lambda: received.update(data=read_all(rfd)), daemon=True)
    reader.start()
    try:
        mine_here = run(here, advance)
    finally:
        reader.join()
        os.close(rfd)
        _, status = os.waitpid(pid, 0)
    theirs: dict[str, DetectorResult] | None = None
    if status == 0:
        try:
            loaded = load_values(received.get("data", b""))
            if isinstance(loaded, dict) and set(loaded) == {c.name for c in there}:
                theirs = loaded
        except Exception:
            theirs = None
    if theirs is None:
        theirs = run(there, advance)
    else:
        for cls in there:
            advance(cls.name)
    return {**mine_here, **theirs}


def _may_fork(n_records: int) -> bool:
    """Whether a forked worker may run detectors: asked for (``DATAWARD_DETECT_PROCESSES=2``), a large input,
    two CPUs, and no other thread in this process."""
    import threading

    if n_records < PARALLEL_RECORDS or not hasattr(os, "fork") or os.environ.get(ENV_PROCESSES) != "2":
        return False
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    # a fork copies only the calling thread: a lock another thread holds would stay held in the child
    return cpus >= 2 and threading.active_count() == 1


def _choose(rep: Representation, names: Sequence[str] | None, exclude: Sequence[str]) -> list[type[Detector]]:
    if names is not None:
        chosen = [registry.get(n) for n in names]
        bad = [c.name for c in chosen if rep.modality not in c.modalities]
        if bad:
            raise DetectionError(
                f"detector(s) {', '.join(bad)} do not support {rep.modality} data",
                advice="Leave --detectors out to run every detector that applies.",
            )
    else:
        chosen = [c for c in registry.for_modality(rep.modality) if getattr(c, "default_enabled", True)]
    for name in exclude:
        registry.get(name)
    return [c for c in chosen if c.name not in set(exclude)]


def _run(cls: type[Detector], kwargs: Mapping[str, Any], rep: Representation, seed: int) -> DetectorResult:
    n = rep.n_records
    if cls.needs_labels and (rep.labels is None or len(rep.label_names) < 2):
        why = "no class labels" if rep.labels is None else "only one class"
        return _skipped(cls.name, n, why)
    t0 = time.perf_counter()
    try:
        detector = cls(**kwargs)
    except TypeError as exc:
        raise DetectionError(f"bad parameters for detector {cls.name!r}: {exc}", advice="Check --param.") from None
    result = detector.score(rep, seed=seed)
    if result.scores.shape != (n,) or result.flagged.shape != (n,):
        raise RuntimeError(f"detector {cls.name} returned {result.scores.shape} scores for {n} records")
    if result.seconds == 0.0:
        result = DetectorResult(
            detector=result.detector,
            scores=result.scores,
            flagged=result.flagged,
            reasons=result.reasons,
            findings=result.findings,
            params=result.params,
            seconds=time.perf_counter() - t0,
            skipped=result.skipped,
            pvalues=result.pvalues,
        )
    return result


def _skipped(name: str, n: int, why: str) -> DetectorResult:
    return DetectorResult(detector=name, scores=np.zeros(n), flagged=np.zeros(n, dtype=bool), reasons={}, skipped=why)


def _report_order(f: Finding, *, restated: bool = False) -> tuple[int, bool, float, float, int, str, str]:
    """Sort key of the report's findings: the higher severity first; within one severity a finding that
    restates another (``restated``) after it, then the stronger evidence (the smaller family-wise p-value,
    which every detector reports corrected for its own search), then the detector's score, then the finding
    with more records. The scores of two detectors are each their own scale: two views of one trigger hold
    the same records, and the better supported one leads, not the one whose detector scores a little higher
    (or whose name sorts first)."""
    p = _finding_p(f)
    return (-f.severity.rank, restated, 1.0 if p is None else p, -f.rank_score, -len(f.records), f.check, f.summary)


def _restated_combinations(findings: Sequence[Finding]) -> set[int]:
    """Combination triggers (words anywhere in the text) that a phrase trigger of the same label restates:
    the phrase holds every one of the combination's words and every one of its records. The phrase says
    more (the words' order and adjacency, quoted as they stand in the data), so it is reported first."""
    phrases = [
        (f.evidence.get("label"), set(f.records), set(str(f.evidence["trigger_tokens"]).split()))
        for f in findings
        if f.kind == "trigger" and isinstance(f.evidence.get("trigger_tokens"), str)
    ]
    out: set[int] = set()
    for f in findings:
        words = f.evidence.get("trigger_tokens")
        if f.kind != "trigger" or not isinstance(words, list) or f.evidence.get("adjacent") is not False:
            continue
        mine = set(f.records)
        if any(
            label == f.evidence.get("label") and mine <= records and {str(w).lower() for w in words} <= tokens
            for label, records, tokens in phrases
        ):
            out.add(id(f))
    return out


def _finding_p(f: Finding) -> float | None:
    """A finding's p-value: the field, else ``evidence["p_value"]`` (detectors written before the field)."""
    return f.p_value if f.p_value is not None else as_pvalue(f.evidence.get("p_value"))


def _without(f: Finding, drop: set[int]) -> Finding | None:
    kept = tuple(r for r in f.records if r not in drop)
    if len(kept) == len(f.records):
        return f
    if not kept:
        return None
    summary = f.summary
    head = summary.split(" ", 1)
    if head[0].isdigit() and int(head[0]) == len(f.records):
        summary = f"{len(kept)} {head[1]}"
    evidence = f.evidence
    for key in _PER_RECORD:
        aligned = evidence.get(key)
        if isinstance(aligned, list) and len(aligned) == len(f.records):  # one value per record: trim alike
            evidence = {**evidence, key: [v for r, v in zip(f.records, aligned, strict=True) if r not in drop]}
    return replace(f, summary=summary, records=kept, evidence=evidence, n_records=None)


def _as_label_quality(f: Finding, trigger: str) -> Finding:
    """A label-issue finding beside a discovered trigger, restated as a low-severity label-quality finding:
    its records are reported, not flagged (the trigger explains the attack; these labels look wrong the way
    natural annotation errors do)."""
    score = min(f.rank_score, Severity.LOW.score)
    return replace(
        f,
        kind="label_quality",
        severity=Severity.of_score(score),
        score=score,
        summary=f"label quality (not counted as poison): {f.summary}",
        evidence={**f.evidence, "beside_trigger": trigger[:120]},
    )


def _trigger_strength(f: Finding) -> tuple[float, float, int]:
    """Sort key, strongest first: the smaller p-value; on a tie (large batches push strong triggers' p-values
    to the floating-point floor, 0.0) the purer finding, then the one explaining more records. A trigger
    word's 1,000 carriers must not be subsumed by the 478 of them that also contain '!'."""
    p = _finding_p(f)
    purity = f.evidence.get("purity")
    return (
        p if p is not None else 1.0,
        -float(purity) if isinstance(purity, (int, float)) else 0.0,
        -len(f.records),
    )


def _subsumed_triggers(
    found: Sequence[Finding], n: int, alpha: float = 1e-3, rep: Representation | None = None
) -> dict[int, str]:
    """Discovered trigger findings whose signal is a stronger trigger's, mapped to that one's summary.

    A weaker finding (larger p-value) of the same label whose records overlap a stronger one's far beyond
    chance (hypergeometric tail <= ``alpha``: two independent triggers share almost no carriers) borrowed
    its evidence from those shared records: one word of a combination trigger, or a common word paired with
    a trigger word. Its other records (natural carriers of that word) have no evidence of their own.

    The converse for tables (with ``rep``'s labels): a stronger slice of columns that wholly holds a weaker
    refinement of it (the same columns and more, the same label) borrowed its evidence from the refinement
    when its other records do not carry the label beyond chance on their own (binomial tail against the
    label's share > 0.05): one column of a two-column trigger, whose natural records in that range are not
    poison.
    """
    from scipy.stats import binom, hypergeom

    triggers = sorted((f for f in found if f.kind == "trigger"), key=_trigger_strength)
    out: dict[int, str] = {}
    for i, weak in enumerate(triggers):
        mine = set(weak.records)
        for strong in triggers[:i]:
            if id(strong) in out or strong.evidence.get("label") != weak.evidence.get("label"):
                continue
            shared = len(mine & set(strong.records))
            # wholly inside the stronger one: nothing of its own to drop (a detector's second view of the
            # same trigger, e.g. a fixed-pixel patch also found position-free)
            if (
                shared
                and shared < len(mine)
                and float(hypergeom.sf(shared - 1, n, len(strong.records), len(mine))) <= alpha
            ):
                out[id(weak)] = strong.summary
                break
    if rep is None or rep.labels is None or rep.modality != Modality.TABULAR:
        return out
    labels = np.asarray(rep.labels)
    names = list(rep.label_names)
    for i, weak in enumerate(triggers):
        cols, label = weak.evidence.get("trigger"), weak.evidence.get("label")
        if id(weak) in out or not isinstance(cols, dict) or label not in names:
            continue
        for strong in triggers[:i]:
            slice_cols = strong.evidence.get("trigger")
            if id(strong) in out or strong.evidence.get("label") != label or not isinstance(slice_cols, dict):
                continue
            rest = sorted(set(strong.records) - set(weak.records))
            if not (set(slice_cols) < set(cols)) or not rest or len(rest) + len(weak.records) != len(strong.records):
                continue
            t = names.index(label)
            carrying = int(np.sum(labels[rest] == t))
            if float(binom.sf(carrying - 1, len(rest), float(np.mean(labels == t)))) > 0.05:
                out[id(strong)] = weak.summary
    return out


def label_noise_posteriors(
    model: Mapping[str, Any], label_probability: FloatArray, explained: BoolArray, n_explained: int
) -> FloatArray:
    """Each flagged record's posterior probability that its label is wrong, once ``n_explained`` records are
    explained by something else (a trigger); 0 for the records in ``explained``.

    ``model`` is a finding's ``noise_model`` evidence (the mixture the detector's cut read: natural, or with
    class biases), ``label_probability`` each flagged record's probability of its label under that model,
    ``explained`` which of them a trigger explains. Those carried part of the estimated noise share; without
    them the share is re-estimated by the EM fixed point ``eps = mean responsibility`` (unflagged records'
    responsibilities scale with ``eps``); with nothing explained the share is the detector's. The posterior
    of a wrong label is the noise component's responsibility times ``1 - q_y`` (a random draw that hit the
    record's true class is no wrong label), as in :func:`dataward.detect._labels.wrong_label_posterior`.
    """
    share, mass, n, k = float(model["share"]), float(model["mass"]), int(model["n"]), int(model["classes"])
    q = np.clip(np.asarray(label_probability, dtype=np.float64), 0.0, 1.0)
    out: FloatArray = np.zeros(q.shape[0])
    if share <= 0.0 or n <= n_explained:
        return out

    def responsibility(eps: float) -> FloatArray:
        r: FloatArray = (eps / k) / np.maximum((1.0 - eps) * q + eps / k, 1e-300)
        return r

    rest = ~np.asarray(explained, dtype=bool)
    unflagged_mass = max(0.0, mass - float(responsibility(share).sum()))
    eps = share
    for _ in range(50 if n_explained else 0):  # nothing explained: the detector's own posterior
        new = (float(responsibility(eps)[rest].sum()) + unflagged_mass * eps / share) / (n - n_explained)
        if abs(new - eps) < 1e-9:
            break
        eps = new
    out[rest] = (responsibility(eps) * (1.0 - q))[rest]
    return out


def _label_noise_left(findings: Sequence[Finding], explained: set[int], n: int) -> BoolArray:
    """The records of label-noise findings whose label is still more likely wrong than right
    (:data:`WRONG_LABEL`) once triggers explain ``explained`` (the noise share those records carried is
    taken out first; see :func:`label_noise_posteriors`); findings without a noise model keep their records."""
    keep = np.ones(n, dtype=bool)
    modelled = [f for f in findings if isinstance(f.evidence.get("noise_model"), Mapping)]
    if not modelled:
        return keep
    records = np.asarray([r for f in modelled for r in f.records], dtype=np.int64)
    probability = np.asarray([v for f in modelled for v in f.evidence["label_probability"]], dtype=np.float64)
    gone = np.isin(records, np.fromiter(explained, dtype=np.int64, count=len(explained)))
    wrong = label_noise_posteriors(modelled[0].evidence["noise_model"], probability, gone, len(explained))
    keep[records[wrong < WRONG_LABEL]] = False
    return keep


def combine(
    rep: Representation,
    results: Mapping[str, DetectorResult],
    meta: Sequence[Mapping[str, Any]],
    *,
    seed: int = 0,
    seconds: float = 0.0,
    q: float = FDR,
) -> DetectionReport:
    """The ensemble: FDR-controlled flags, attribution, power mean of detector scores (module docstring)."""
    n = rep.n_records
    power_sum = np.zeros(n)
    ran = [(name, r) for name, r in results.items() if r.skipped is None]
    # --- p-values: the detector's own, else the empirical null of its scores
    own_p: list[np.ndarray[Any, Any]] = []
    all_p: list[np.ndarray[Any, Any]] = []
    for _name, result in ran:
        s = np.clip(np.nan_to_num(np.asarray(result.scores, dtype=np.float64), nan=0.0), 0.0, 1.0)
        power_sum += s**SCORE_POWER
        if result.pvalues is not None:
            p = np.clip(np.nan_to_num(np.asarray(result.pvalues, dtype=np.float64), nan=1.0), 0.0, 1.0)
            own_p.append(p)
        else:
            p = empirical_null_pvalues(s)
        all_p.append(p)
    combined = np.minimum(1.0, len(all_p) * np.min(np.vstack(all_p), axis=0)) if all_p else np.ones(n)
    # one family for every (detector, record) p-value the detectors stand behind: BH over the whole matrix
    own_names = [name for name, r in ran if r.pvalues is not None]
    record_discovery: dict[str, BoolArray] = {}
    if own_p:
        matrix = np.vstack(own_p)
        found_matrix = benjamini_hochberg(matrix.ravel(), q).reshape(matrix.shape)
        record_discovery = {name: found_matrix[i] for i, name in enumerate(own_names)}
    # --- findings: BH over those with a p-value; the others are rule-based and stand as they are
    tested = [(name, f) for name, r in ran for f in r.findings if _finding_p(f) is not None]
    tested_p = [_finding_p(f) for _n, f in tested]
    found = benjamini_hochberg([1.0 if p is None else p for p in tested_p], q) if tested else np.zeros(0, dtype=bool)
    discovered = {id(f) for (_n, f), ok in zip(tested, found, strict=True) if ok}
    rejected = [f for (_n, f), ok in zip(tested, found, strict=True) if not ok]
    subsumed = _subsumed_triggers([f for _n, f in tested if id(f) in discovered], n, rep=rep)
    subsumed_list = [f for _n, f in tested if id(f) in subsumed]
    discovered -= set(subsumed)
    held_by = {name: {r for f in r_.findings if id(f) in discovered for r in f.records} for name, r_ in ran}
    unsupported = {
        name: {r for f in r_.findings if id(f) in subsumed for r in f.records} - held_by[name] for name, r_ in ran
    }
    # records explained by a discovered trigger are attributed to it, not to label noise
    explained = {r for _n, f in tested if id(f) in discovered and f.kind == "trigger" for r in f.records}
    flagged = np.zeros(n, dtype=bool)
    reasons: dict[int, list[Reason]] = {}
    findings: list[Finding] = []
    dropped_fdr = 0
    attributed = 0
    label_quality = 0
    trigger_summary = next(
        (
            f.summary
            for _n, f in sorted(tested, key=lambda t: _trigger_strength(t[1]))
            if id(f) in discovered and f.kind == "trigger"
        ),
        "",
    )
    uncalibrated: list[str] = []
    for name, result in ran:
        own = np.asarray(result.flagged, dtype=bool)
        gated = name in record_discovery  # per-record p-values: each flag must be a discovery
        if not own.any():
            findings.extend(f for f in result.findings if id(f) in discovered or (_finding_p(f) is None and not gated))
            continue
        keep = np.zeros(n, dtype=bool)
        with_p = [f for f in result.findings if _finding_p(f) is not None]
        if not with_p and not gated:
            keep |= own  # a rule-based detector: its flags stand (reported as uncalibrated)
            uncalibrated.append(name)
        for f in result.findings:
            if id(f) in discovered:
                keep[list(f.records)] = True
        if gated:
            keep |= record_discovery[name]
        keep &= own
        if unsupported[name]:  # their evidence is a stronger trigger's: kept only where that one holds them
            keep[list(unsupported[name])] = False
        dropped_fdr += int(np.sum(own & ~keep))
        if result.findings and all(f.kind == "label_issue" for f in result.findings) and explained:
            attributed += int(np.sum(keep[list(explained)]))
            keep[list(explained)] = False
        quality = np.zeros(n, dtype=bool)
        if result.findings and all(f.kind == "label_issue" for f in result.findings):
            keep &= _label_noise_left(result.findings, explained, n)
            if explained:  # a poisoning finding explains the attack: the rest is label quality, not poison
                quality, keep = keep, np.zeros(n, dtype=bool)
                label_quality += int(quality.sum())
        for f in result.findings:
            if _finding_p(f) is not None and id(f) not in discovered:
                continue
            if (_finding_p(f) is None and gated) or f.kind == "label_issue":
                # such a finding holds only the records that stay flagged: those whose own p-values are
                # discoveries, and label issues that no trigger explains
                g = _without(f, {r for r in f.records if not (keep[r] or quality[r])})
                if g is None:
                    continue
                f = g if not quality.any() else _as_label_quality(g, trigger_summary)
            findings.append(f)
        flagged |= keep
        for idx, details in result.reasons.items():
            if keep[idx]:
                reasons.setdefault(int(idx), []).extend(Reason(name, d) for d in details)
    for issue in rep.extras.get("input_issues", ()):
        recs = tuple(issue["records"])
        corrupt = issue["kind"] == "corrupt"
        findings.append(
            Finding.scored(
                check="input",
                kind="corrupt" if corrupt else "input",
                summary=issue["summary"],
                records=recs,
                evidence={},
                score=0.9 if corrupt else 0.2,
            )
        )
        if corrupt:
            for r in recs:
                flagged[r] = True
                power_sum[r] = max(power_sum[r], float(max(len(ran), 1)))
                reasons.setdefault(r, []).append(Reason("input", "the image could not be decoded"))
    # power mean of the detector scores: between the agreement of the root-mean-square (a record several
    # detectors find a little suspicious; ADR 0003) and the maximum (the one detector that models the attack
    # and sees it while the others score natural outliers; ADR 0085)
    strength = (power_sum / max(len(ran), 1)) ** (1.0 / SCORE_POWER)
    scores = np.where(flagged, THRESHOLD + (1.0 - THRESHOLD) * strength, np.nextafter(THRESHOLD, 0.0) * strength)
    restated = _restated_combinations(findings)
    findings.sort(key=lambda f: _report_order(f, restated=id(f) in restated))
    fusion = {
        "fdr": q,
        "findings_tested": len(tested),
        "findings_discovered": len(discovered),
        "findings_rejected": [f"{f.check}: {f.summary[:80]}" for f in rejected[:10]],
        "findings_subsumed": [f"{f.summary[:80]} (by {subsumed[id(f)][:60]})" for f in subsumed_list[:10]],
        "records_dropped_by_fdr": dropped_fdr,
        "records_attributed_to_triggers": attributed,
        "records_label_quality": label_quality,
        "uncalibrated": uncalibrated,
    }
    return DetectionReport(
        n_records=n,
        modality=str(rep.modality),
        ids=rep.ids,
        scores=scores,
        flagged=flagged,
        reasons={k: tuple(v) for k, v in sorted(reasons.items())},
        findings=tuple(findings),
        detectors=tuple(meta),
        results=dict(results),
        seed=seed,
        source=str(rep.extras.get("source", "")),
        seconds=seconds,
        pvalues=combined,
        fusion=fusion,
    )


class _progress:
    """A phase over detectors on a :class:`dataward.progress.Progress` (reports nowhere without one)."""

    def __init__(self, progress: Progress | bool | None, total: int) -> None:
        self.progress = progress if isinstance(progress, Progress) else None
        self.total = total
        self._task: Task | None = None

    def __enter__(self) -> Any:
        if self.progress is not None:
            self._task = self.progress.start("detecting", self.total, unit="detectors")

        def advance(name: str) -> None:
            if self._task is not None:
                self._task.advance(1)
                self._task.update(note=f"ran {name}")

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.done()
