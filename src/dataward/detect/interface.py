"""The detector plug-in interface.

A detector turns a :class:`Representation` of a data set into a :class:`DetectorResult`: one score per
record in [0, 1] (1 = most suspicious), a per-record flag, reasons for each flagged record, and findings
(groups of records with a shared explanation, e.g. a named trigger: the one
:class:`dataward.model.finding.Finding`, built with :meth:`Finding.scored <dataward.model.finding.Finding.scored>`
so it carries its 0..1 score and p-value). Results are values, never exceptions:
a detector that cannot run on some input returns a result with ``skipped`` set and a reason.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from dataward.errors import Error
from dataward.model.finding import Finding as Finding  # re-exported: detectors build the one Finding


class DetectionError(Error):
    """Detection could not run on this input (no label column, mismatched embeddings, ...)."""

    exit_code = 2
    default_advice = "Check the input and the column options (--label, --text, --prompt/--response, ...)."


class Modality(enum.StrEnum):
    """The kind of data a representation holds (and a detector supports)."""
    TABULAR = "tabular"
    TEXT = "text"
    INSTRUCTION = "instruction"
    IMAGE = "image"
    EMBEDDING = "embedding"


FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Representation:
    """Everything a detector may look at, for ``n_records`` records in input order.

    Fields a modality does not have are ``None``. ``features`` is the main numeric representation
    (standardised tabular columns, TF-IDF/hashing n-grams as a scipy CSR matrix, image pixels/PCA, or
    user-supplied embeddings); ``labels`` are integer codes into ``label_names``.
    """

    modality: Modality
    n_records: int
    ids: tuple[str, ...]
    features: Any  # np.ndarray (n, d) float64, or scipy.sparse.csr_matrix (n, d)
    feature_names: tuple[str, ...] | None = None
    labels: IntArray | None = None
    label_names: tuple[str, ...] = ()
    texts: tuple[str, ...] | None = None  # text classification: the text of each record
    prompts: tuple[str, ...] | None = None  # instruction records: the prompt (or joined user turns)
    responses: tuple[str, ...] | None = None  # instruction records: the response (or assistant turns)
    images: npt.NDArray[np.float64] | None = None  # (n, h, w) or (n, h, w, c), values in [0, 1]
    raw_columns: Mapping[str, Sequence[Any]] | None = None  # tabular: original column values
    embeddings: FloatArray | None = None  # user-supplied embeddings/activations, if given
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reason:
    """Why a detector flagged one record (``detail`` is a one-line explanation)."""
    detector: str
    detail: str


@dataclass(frozen=True, eq=False)
class DetectorResult:
    """One detector's verdict on every record: scores in [0, 1] (1 = most suspicious), flags, reasons, findings."""
    detector: str
    scores: FloatArray  # (n,) in [0, 1]
    flagged: BoolArray  # (n,)
    reasons: Mapping[int, tuple[str, ...]]  # record index -> details
    findings: tuple[Finding, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: str | None = None  # why the detector did not run, if it did not
    #: per-record p-values (n,) against the detector's null, small = suspicious; None if not calibrated.
    #: Fusion controls the false discovery rate over these (docs/adr: calibrated alarms).
    pvalues: FloatArray | None = None


class Detector(ABC):
    """A registered detector. Subclasses set ``name`` and ``modalities`` and implement :meth:`score`."""

    name: ClassVar[str]
    modalities: ClassVar[frozenset[Modality]]
    #: whether the detector needs class labels
    needs_labels: ClassVar[bool] = True
    #: whether ``detect`` runs it unless asked not to (opt-in detectors set this to False)
    default_enabled: ClassVar[bool] = True

    @abstractmethod
    def score(self, rep: Representation, *, seed: int = 0) -> DetectorResult:
        """Score every record of ``rep``; deterministic for a given seed."""
