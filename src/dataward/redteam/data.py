"""Evaluation data for red-teaming and incidents: a released version (``DATASET@N``) or a file, and its roles.

Roles: the label column, and either one text column (text models) or numeric feature columns (tabular and
small-image models: a square number of features >= 16 is treated as a grey image for patch triggers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataward.errors import InputError

LABEL_NAMES = ("label", "Label", "y", "target", "class", "expected")
PROVENANCE = ("_batch", "_file", "_record", "_record_digest")


@dataclass(frozen=True)
class Columns:
    """Which columns of a frame are the label, the text, and the numeric features."""

    label: str | None
    text: str | None
    features: tuple[str, ...]

    @property
    def modality(self) -> str:
        """``text`` when there is a text column, else ``tabular``."""
        return "text" if self.text else "tabular"

    @property
    def image_side(self) -> int | None:
        """The side of a square image when the features are its pixels (at least 4x4, no text), else None."""
        n = len(self.features)
        side = round(n**0.5)
        return side if self.text is None and n >= 16 and side * side == n else None

    def to_json(self) -> dict[str, Any]:
        """The JSON form the red-team report carries."""
        return {"label": self.label, "text": self.text, "features": list(self.features), "modality": self.modality}


def read_path(path: Path) -> pd.DataFrame:
    """A CSV/TSV/JSONL/Parquet file read through the records layer (strict), as a DataFrame."""
    from dataward.records import read_table
    from dataward.records.sniff import format_of_name

    fmt = format_of_name(path.name)
    if fmt not in ("csv", "tsv", "jsonl", "parquet"):
        raise InputError(
            f"{path}: unknown format {path.suffix or '(none)'}", advice="Use .csv, .tsv, .jsonl or .parquet."
        )
    frame: pd.DataFrame = read_table(str(path), fmt, errors="strict").to_pandas()
    return frame


def load_frame(ref: str, *, workspace: Any = None, principal: Any = None) -> pd.DataFrame:
    """A file path, or a released version read (verified) through ``dataward.open``."""
    p = Path(ref)
    if p.is_file():
        return read_path(p)
    if "@" in ref and workspace is not None:
        from dataward.release.reader import open_dataset

        frame: pd.DataFrame = open_dataset(ref, as_="pandas", workspace=workspace, principal=principal)
        return frame
    raise InputError(f"{ref!r}: no such file or released version", advice="Give a file or DATASET@VERSION.")


def infer_columns(
    frame: pd.DataFrame, *, label: str | None = None, text: str | None = None, features: tuple[str, ...] = ()
) -> Columns:
    """The label, text and feature columns of ``frame``: those named, else inferred (provenance columns left out)."""
    cols = [c for c in frame.columns if str(c) not in PROVENANCE]
    for name in (label, text, *features):
        if name is not None and name not in frame.columns:
            raise InputError(f"no column {name!r} (columns: {', '.join(map(str, cols))})")
    if label is None:
        label = next((c for c in LABEL_NAMES if c in cols), None)
    rest = [c for c in cols if c != label]
    if not features and text is None:
        objects = [c for c in rest if frame[c].dtype == object]
        if objects:
            text = max(objects, key=lambda c: float(frame[c].astype(str).str.len().mean()))
    if text is None and not features:
        features = tuple(str(c) for c in rest if pd.api.types.is_numeric_dtype(frame[c]))
        if not features:
            raise InputError("no text column and no numeric feature columns", advice="Name them with --text/--feature.")
    return Columns(label, text, tuple(features))


def inputs_of(frame: pd.DataFrame, cols: Columns) -> list[Any]:
    """The model inputs: strings for text, float rows otherwise."""
    if cols.text:
        return [str(v) if v is not None and v == v else "" for v in frame[cols.text].tolist()]
    return list(matrix(frame, cols).tolist())


def matrix(frame: pd.DataFrame, cols: Columns) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The feature columns as a float64 matrix (missing values as NaN)."""
    out: np.ndarray[Any, np.dtype[np.float64]] = frame[list(cols.features)].to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def labels_of(frame: pd.DataFrame, cols: Columns) -> list[str] | None:
    """The label column as strings (None when the frame has no label)."""
    if cols.label is None:
        return None
    return [_str_label(v) for v in frame[cols.label].tolist()]


def _str_label(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)
