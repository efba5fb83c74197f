"""``dataward.detect``: run every applicable detector and combine them into one report.

The ensemble (see docs/adr/0003-detection-ensemble.md): each detector chooses its own flag threshold from
the data alone (robust statistics, no ground truth) and maps it to 0.5 on its score scale. A record is
flagged when at least one detector flags it. Its ensemble score is the root-mean-square of its detector
scores, mapped into [0.5, 1] for flagged records and [0, 0.5) for the others, so 0.5 is the ensemble's
threshold. Every flagged record carries the reasons of the detectors that flagged it.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataward.detect import registry
from dataward.detect.interface import (
    BoolArray,
    DetectionError,
    Detector,
    DetectorResult,
    Finding,
    FloatArray,
    Reason,
    Representation,
)
from dataward.detect.representation import from_frame, load_records

THRESHOLD = 0.5
_BUILTIN = (
    "labels",
    "patches",
    "shortcuts",
    "neighbours",
    "duplicates",
    "spectral",
    "activation_clustering",
    "text_triggers",
    "instruction",
)


def load_builtin_detectors() -> None:
    """Import the detector modules shipped with dataward (each registers itself)."""
    for module in _BUILTIN:
        name = f"dataward.detect.{module}"
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


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

    @property
    def n_flagged(self) -> int:
        return int(self.flagged.sum())

    def to_json(self) -> dict[str, Any]:
        return {
            "n_records": self.n_records,
            "modality": self.modality,
            "source": self.source,
            "seed": self.seed,
            "threshold": self.threshold,
            "n_flagged": self.n_flagged,
            "seconds": round(self.seconds, 4),
            "records": [
                {
                    "index": i,
                    "id": self.ids[i],
                    "score": round(float(self.scores[i]), 6),
                    "flagged": bool(self.flagged[i]),
                    "reasons": [{"detector": r.detector, "detail": r.detail} for r in self.reasons.get(i, ())],
                }
                for i in range(self.n_records)
            ],
            "findings": [
                {
                    "detector": f.detector,
                    "kind": f.kind,
                    "summary": f.summary,
                    "severity": round(float(f.severity), 4),
                    "records": [int(r) for r in f.records],
                    "evidence": _plain(f.evidence),
                }
                for f in self.findings
            ],
            "detectors": [_plain(d) for d in self.detectors],
        }

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
            lines.append(f"- [{f.kind}] {f.summary} ({len(f.records)} records; {f.detector})")
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
    progress: bool = False,
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
    progress: bool,
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
        for cls in chosen:
            kwargs = dict((params or {}).get(cls.name, {}))
            result = _run(cls, kwargs, rep, seed)
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
            advance(cls.name)
    return combine(rep, results, meta, seed=seed, seconds=time.perf_counter() - started)


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
        )
    return result


def _skipped(name: str, n: int, why: str) -> DetectorResult:
    return DetectorResult(detector=name, scores=np.zeros(n), flagged=np.zeros(n, dtype=bool), reasons={}, skipped=why)


def combine(
    rep: Representation,
    results: Mapping[str, DetectorResult],
    meta: Sequence[Mapping[str, Any]],
    *,
    seed: int = 0,
    seconds: float = 0.0,
) -> DetectionReport:
    """The ensemble: union of detector flags, RMS of detector scores (see the module docstring)."""
    n = rep.n_records
    sq_sum = np.zeros(n)
    ran = 0
    flagged = np.zeros(n, dtype=bool)
    reasons: dict[int, list[Reason]] = {}
    findings: list[Finding] = []
    for name, result in results.items():
        if result.skipped is not None:
            continue
        s = np.clip(np.nan_to_num(np.asarray(result.scores, dtype=np.float64), nan=0.0), 0.0, 1.0)
        sq_sum += s**2
        ran += 1
        flagged |= np.asarray(result.flagged, dtype=bool)
        for idx, details in result.reasons.items():
            if result.flagged[idx]:
                reasons.setdefault(int(idx), []).extend(Reason(name, d) for d in details)
        findings.extend(result.findings)
    for issue in rep.extras.get("input_issues", ()):
        recs = tuple(issue["records"])
        corrupt = issue["kind"] == "corrupt"
        findings.append(
            Finding(
                detector="input",
                kind="corrupt" if corrupt else "input",
                summary=issue["summary"],
                records=recs,
                evidence={},
                severity=0.9 if corrupt else 0.2,
            )
        )
        if corrupt:
            for r in recs:
                flagged[r] = True
                sq_sum[r] = max(sq_sum[r], float(max(ran, 1)))
                reasons.setdefault(r, []).append(Reason("input", "the image could not be decoded"))
    # root-mean-square of the detector scores: ranks better than the maximum (a record several detectors
    # find a little suspicious beats one a single detector finds odd; see ADR 0003)
    strength = np.sqrt(sq_sum / max(ran, 1))
    scores = np.where(flagged, THRESHOLD + (1.0 - THRESHOLD) * strength, np.nextafter(THRESHOLD, 0.0) * strength)
    findings.sort(key=lambda f: (-f.severity, -len(f.records), f.detector, f.summary))
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
    )


class _progress:
    """A rich progress bar over detectors on stderr (a no-op when disabled)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled
        self.total = total
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Any:
        if self.enabled:
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(console=Console(stderr=True), transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task("detecting", total=self.total)

        def advance(name: str) -> None:
            if self._bar is not None:
                self._bar.update(self._task, advance=1, description=f"ran {name}")

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
