"""Turn a data file (or an in-memory frame) into a :class:`Representation` detectors can score.

Modalities and what the representation holds:

- tabular: numeric columns median-imputed and standardised, categorical columns one-hot encoded (the most
  frequent values; the rest share an ``=<other>`` column); the original columns stay in ``raw_columns``.
- text: raw texts in ``texts``; ``features`` is a TF-IDF word 1-2 gram sparse CSR matrix.
- instruction: ``prompts`` / ``responses`` (from prompt/response columns or a ``messages`` list: user and
  system turns form the prompt, assistant turns the response); ``features`` is TF-IDF over both,
  ``prompt:`` / ``response:`` prefixed; no labels.
- image: ``images`` (n, h, w[, c]) in [0, 1]; ``features`` the flattened pixels.
- embedding: user-supplied ``.npy`` rows (one per record) are ``embeddings`` for any modality, and also the
  ``features`` when the file has no content columns besides the label.

Problems with the input that do not stop detection (NaNs, empty texts, corrupt images, a single class,
identical records) are listed in ``extras["input_issues"]`` and become findings of the report.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from dataward.detect.data_io import decode_image_cell, infer_format, read_imagefolder, read_table
from dataward.detect.interface import DetectionError, FloatArray, IntArray, Modality, Representation

_LABEL_NAMES = ("label", "labels", "class", "target", "y", "category")
_TEXT_NAMES = ("text", "sentence", "sms", "review", "content", "document")
_MAX_ONE_HOT = 50
_MAX_IMAGE_SIDE = 64


def _issue(kind: str, summary: str, records: Sequence[int]) -> dict[str, Any]:
    return {"kind": kind, "summary": summary, "records": tuple(int(r) for r in records)}


def _find_column(frame: pd.DataFrame, wanted: str | None, candidates: Sequence[str], role: str) -> str | None:
    if wanted is not None:
        if wanted not in frame.columns:
            cols = ", ".join(map(str, frame.columns[:20]))
            raise DetectionError(
                f"no column {wanted!r} for {role} (columns: {cols})", advice=f"Pass an existing column to --{role}."
            )
        return wanted
    lower = {str(c).lower(): str(c) for c in frame.columns}
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    return None


def load_records(
    path: str | Path,
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
) -> Representation:
    """Read ``path`` and build the representation of its records (see the module docstring)."""
    src = Path(path)
    fmt = infer_format(src, format)
    if fmt == "imagefolder":
        frame = read_imagefolder(src)
        rep_kwargs: dict[str, Any] = {"label": "label", "image": "image", "ids_column": "path"}
        return from_frame(frame, base=src, embeddings=embeddings, **rep_kwargs)
    frame = read_table(src, fmt)
    return from_frame(
        frame,
        label=label,
        text=text,
        prompt=prompt,
        response=response,
        messages=messages,
        image=image,
        features=features,
        embeddings=embeddings,
        base=src.parent,
        source=str(src),
    )


def from_frame(
    frame: pd.DataFrame,
    *,
    label: str | None = None,
    text: str | None = None,
    prompt: str | None = None,
    response: str | None = None,
    messages: str | None = None,
    image: str | None = None,
    features: Sequence[str] | None = None,
    embeddings: str | Path | FloatArray | None = None,
    ids_column: str | None = None,
    base: Path | None = None,
    source: str = "input",
) -> Representation:
    """Build a representation from a DataFrame with the given column roles (auto-detected when omitted)."""
    n = len(frame)
    if n == 0:
        raise DetectionError(f"{source} has no records", advice="Detection needs at least a few records.")
    if any(not isinstance(c, str) for c in frame.columns):
        frame = frame.rename(columns=str)
    issues: list[dict[str, Any]] = []
    # ---- roles
    if messages is None and prompt is None and response is None and text is None and image is None:
        messages = _find_column(frame, None, ("messages", "conversation", "conversations"), "messages")
        if messages is None and {"prompt", "response"} <= {str(c).lower() for c in frame.columns}:
            prompt = _find_column(frame, None, ("prompt",), "prompt")
            response = _find_column(frame, None, ("response",), "response")
        if messages is None and prompt is None and features is None:
            text = _find_column(frame, None, _TEXT_NAMES, "text")
            if text is None:
                image = _find_column(frame, None, ("image", "img", "image_path", "image_bytes"), "image")
    else:
        for col, role in ((messages, "messages"), (prompt, "prompt"), (response, "response"), (text, "text")):
            if col is not None:
                _find_column(frame, col, (), role)
        if image is not None:
            _find_column(frame, image, (), "image")
    if (prompt is None) != (response is None):
        raise DetectionError("--prompt and --response go together", advice="Pass both, or --messages for chat records.")
    instruction = messages is not None or prompt is not None
    label_col = None if instruction else _find_column(frame, label, _LABEL_NAMES, "label")
    if instruction and label is not None:
        label_col = _find_column(frame, label, (), "label")
    id_col = ids_column if ids_column is not None else _find_column(frame, None, ("id",), "id")
    ids = _ids(frame, id_col)

    labels: IntArray | None = None
    label_names: tuple[str, ...] = ()
    if label_col is not None:
        labels, label_names = _encode_labels(frame[label_col], label_col, source)
        if len(label_names) < 2:
            issues.append(
                _issue(
                    "input",
                    f"label column {label_col!r} has a single class ({label_names[0]!r}): "
                    "label-based detectors cannot run",
                    [],
                )
            )
    emb = _load_embeddings(embeddings, n, source)

    used = {c for c in (label_col, id_col, text, prompt, response, messages, image) if c is not None}
    common: dict[str, Any] = {"n_records": n, "ids": ids, "labels": labels, "label_names": label_names}
    if messages is not None or prompt is not None:
        if messages is not None:
            prompts, responses = _split_messages(frame[messages], messages, issues)
        else:
            assert prompt is not None and response is not None
            prompts = _texts(frame[prompt], prompt, issues)
            responses = _texts(frame[response], response, issues)
        feats, names = _tfidf_pair(prompts, responses)
        if feats.shape[1] == 0:
            raise DetectionError(f"{source}: the prompts and responses contain no words", advice="Check the columns.")
        _check_identical([p + "\x00" + r for p, r in zip(prompts, responses, strict=True)], issues)
        rep = Representation(
            modality=Modality.INSTRUCTION,
            features=feats,
            feature_names=names,
            prompts=tuple(prompts),
            responses=tuple(responses),
            embeddings=emb,
            extras={"input_issues": issues, "source": source},
            **common,
        )
        return rep
    if labels is None:
        raise DetectionError(
            f"{source}: no label column (looked for {', '.join(_LABEL_NAMES)})",
            advice="Name the class label column with --label (instruction data needs --prompt/--response or "
            "--messages instead).",
        )
    if text is not None:
        texts = _texts(frame[text], text, issues)
        if not any(t.strip() for t in texts):
            raise DetectionError(f"{source}: every text in column {text!r} is empty", advice="Check --text.")
        feats, names = _tfidf(texts, prefix="")
        if feats.shape[1] == 0:
            raise DetectionError(f"{source}: the texts in column {text!r} contain no words", advice="Check --text.")
        _check_identical(texts, issues)
        return Representation(
            modality=Modality.TEXT,
            features=feats,
            feature_names=names,
            texts=tuple(texts),
            embeddings=emb,
            extras={"input_issues": issues, "source": source, "text_column": text},
            **common,
        )
    if image is not None:
        images = _images(frame[image], base or Path("."), issues, ids)
        flat = images.reshape(n, -1).astype(np.float64)
        _check_identical_dense(flat, issues)
        return Representation(
            modality=Modality.IMAGE,
            features=flat,
            feature_names=None,
            images=images,
            embeddings=emb,
            extras={"input_issues": issues, "source": source},
            **common,
        )
    cols = list(features) if features is not None else [str(c) for c in frame.columns if str(c) not in used]
    for col in cols:
        if col not in frame.columns:
            raise DetectionError(f"{source}: no feature column {col!r}", advice="Check --features.")
    if not cols:
        if emb is None:
            raise DetectionError(
                f"{source}: no feature columns besides the label",
                advice="Pass --embeddings FILE.npy (one row per record) or --text/--image/--features.",
            )
        _check_identical_dense(emb, issues)
        return Representation(
            modality=Modality.EMBEDDING,
            features=emb,
            embeddings=emb,
            extras={"input_issues": issues, "source": source},
            **common,
        )
    dense, names, raw = _tabular(frame, cols, issues)
    _check_identical_dense(dense, issues)
    return Representation(
        modality=Modality.TABULAR,
        features=dense,
        feature_names=names,
        raw_columns=raw,
        embeddings=emb,
        extras={"input_issues": issues, "source": source},
        **common,
    )


def from_arrays(
    features: Any,
    labels: Sequence[Any] | np.ndarray[Any, Any] | None,
    *,
    modality: Modality = Modality.TABULAR,
    images: np.ndarray[Any, Any] | None = None,
    texts: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
) -> Representation:
    """A representation from arrays already in memory (tests, benchmarks, the Python API)."""
    x = features if sparse.issparse(features) else np.asarray(features, dtype=np.float64)
    n = int(x.shape[0])
    issues: list[dict[str, Any]] = []
    enc: IntArray | None = None
    names: tuple[str, ...] = ()
    if labels is not None:
        enc, names = _encode_labels(pd.Series(list(labels)), "label", "arrays")
        if len(names) < 2:
            issues.append(_issue("input", "a single class: label-based detectors cannot run", []))
    if not sparse.issparse(x):
        if not np.all(np.isfinite(x)):
            raise DetectionError("features contain NaN or infinite values", advice="Impute or drop them first.")
        if modality in (Modality.TABULAR, Modality.EMBEDDING):
            x = _standardise(x)
    imgs = None if images is None else np.asarray(images, dtype=np.float64)
    return Representation(
        modality=modality,
        n_records=n,
        ids=tuple(ids) if ids is not None else tuple(str(i) for i in range(n)),
        features=x,
        labels=enc,
        label_names=names,
        texts=tuple(texts) if texts is not None else None,
        images=imgs,
        extras={"input_issues": issues, "source": "arrays"},
    )


# ------------------------------------------------------------------------------------------ helpers


def _ids(frame: pd.DataFrame, id_col: str | None) -> tuple[str, ...]:
    if id_col is None:
        return tuple(str(i) for i in range(len(frame)))
    return tuple("" if _is_missing(v) else str(v) for v in frame[id_col])


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value)) if np.ndim(value) == 0 else False
    except (TypeError, ValueError):
        return False


def _encode_labels(column: pd.Series, name: str, source: str) -> tuple[IntArray, tuple[str, ...]]:
    values = list(column)
    missing = [i for i, v in enumerate(values) if _is_missing(v) or (isinstance(v, str) and not v.strip())]
    if missing:
        shown = ", ".join(str(i) for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DetectionError(
            f"{source}: label column {name!r} is empty in {len(missing)} record(s) (rows {shown})",
            advice="Label those records or drop them before detection.",
        )
    strs = [_label_str(v) for v in values]
    names, codes = np.unique(np.asarray(strs, dtype=object).astype(str), return_inverse=True)
    return codes.astype(np.int64), tuple(str(x) for x in names)


def _label_str(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def _texts(column: pd.Series, name: str, issues: list[dict[str, Any]]) -> list[str]:
    out = ["" if _is_missing(v) else str(v) for v in column]
    empty = [i for i, t in enumerate(out) if not t.strip()]
    if empty:
        issues.append(_issue("input", f"{len(empty)} record(s) have an empty {name!r}", empty))
    return out


def _split_messages(column: pd.Series, name: str, issues: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    prompts: list[str] = []
    responses: list[str] = []
    bad: list[int] = []
    for i, value in enumerate(column):
        turns = value
        if isinstance(turns, str):
            try:
                turns = json.loads(turns)
            except json.JSONDecodeError:
                turns = None
        if isinstance(turns, np.ndarray):
            turns = list(turns)
        p_parts: list[str] = []
        r_parts: list[str] = []
        if isinstance(turns, list):
            for turn in turns:
                if not isinstance(turn, Mapping):
                    continue
                role = str(turn.get("role", turn.get("from", ""))).lower()
                content = turn.get("content", turn.get("value", ""))
                content = "" if _is_missing(content) else str(content)
                if role in ("assistant", "gpt", "model", "bot"):
                    r_parts.append(content)
                else:
                    p_parts.append(content)
        if not r_parts and not p_parts:
            bad.append(i)
        prompts.append("\n".join(p_parts))
        responses.append("\n".join(r_parts))
    if bad:
        issues.append(_issue("input", f"{len(bad)} record(s) have no readable turns in {name!r}", bad))
    no_answer = [i for i, r in enumerate(responses) if not r.strip() and i not in set(bad)]
    if no_answer:
        issues.append(_issue("input", f"{len(no_answer)} record(s) have no assistant turn in {name!r}", no_answer))
    return prompts, responses


def _vectorizer(n: int, prefix: str) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        ngram_range=(1, 2),
        min_df=2 if n >= 50 else 1,
        max_features=200_000,
        sublinear_tf=True,
        dtype=np.float64,
        token_pattern=r"(?u)\b\w+\b",  # noqa: S106 - not a password
    )


def _tfidf(texts: Sequence[str], prefix: str) -> tuple[Any, tuple[str, ...]]:
    vec = _vectorizer(len(texts), prefix)
    try:
        mat = vec.fit_transform(texts)
    except ValueError:  # empty vocabulary (e.g. only punctuation)
        return sparse.csr_matrix((len(texts), 0), dtype=np.float64), ()
    names = tuple(prefix + str(t) for t in vec.get_feature_names_out())
    return sparse.csr_matrix(mat), names


def _tfidf_pair(prompts: Sequence[str], responses: Sequence[str]) -> tuple[Any, tuple[str, ...]]:
    a, an = _tfidf(prompts, "prompt:")
    b, bn = _tfidf(responses, "response:")
    return sparse.csr_matrix(sparse.hstack([a, b], format="csr")), an + bn


def _load_embeddings(embeddings: str | Path | FloatArray | None, n: int, source: str) -> FloatArray | None:
    if embeddings is None:
        return None
    if isinstance(embeddings, np.ndarray):
        arr = embeddings
        where = "embeddings"
    else:
        where = str(embeddings)
        from dataward.errors import InputError
        from dataward.records import LimitError, load_npy

        try:
            arr = load_npy(str(Path(embeddings)))
        except LimitError:
            raise
        except InputError as exc:
            raise DetectionError(
                f"cannot read embeddings {where}: {exc.message}",
                advice="Pass a .npy file of numbers (numpy.save), one row per record.",
            ) from None
    if arr.dtype.kind not in "biuf":
        raise DetectionError(f"embeddings {where} are not numeric ({arr.dtype})", advice="Save a float array.")
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        arr = arr.reshape(arr.shape[0], -1)
    if arr.shape[0] != n:
        raise DetectionError(
            f"embeddings {where} have {arr.shape[0]} rows but {source} has {n} records",
            advice="Save exactly one embedding row per record, in input order.",
        )
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.all(np.isfinite(arr), axis=1))
        raise DetectionError(
            f"embeddings {where} contain NaN/inf in {bad.size} row(s) (first: {int(bad[0])})",
            advice="Recompute the embeddings for those records.",
        )
    return arr


def _standardise(x: FloatArray) -> FloatArray:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-12] = 1.0
    out: FloatArray = (x - mean) / std
    return out


def _tabular(
    frame: pd.DataFrame, cols: Sequence[str], issues: list[dict[str, Any]]
) -> tuple[FloatArray, tuple[str, ...], dict[str, list[Any]]]:
    n = len(frame)
    blocks: list[FloatArray] = []
    names: list[str] = []
    raw: dict[str, list[Any]] = {}
    nan_rows: set[int] = set()
    nan_cols: list[str] = []
    for col in cols:
        series = frame[col]
        raw[col] = list(series)
        numeric = pd.to_numeric(series, errors="coerce") if series.dtype != bool else series.astype(float)
        is_num = series.dtype.kind in "biuf" or (
            series.dtype == object and numeric.notna().sum() >= 0.95 * series.notna().sum() > 0
        )
        missing = series.isna().to_numpy()
        if missing.any():
            nan_rows.update(int(i) for i in np.flatnonzero(missing))
            nan_cols.append(col)
        if is_num:
            values = numeric.to_numpy(dtype=np.float64)
            values[~np.isfinite(values)] = np.nan
            if np.all(np.isnan(values)):
                continue
            med = float(np.nanmedian(values))
            values = np.where(np.isnan(values), med, values)
            blocks.append(np.asarray(values.reshape(n, 1), dtype=np.float64))
            names.append(col)
        else:
            strs = ["<missing>" if _is_missing(v) else str(v) for v in series]
            counts = Counter(strs)
            if len(counts) > 0.5 * n and len(counts) > _MAX_ONE_HOT:
                continue  # free text or identifiers: not a useful one-hot feature
            top = [v for v, _ in counts.most_common(_MAX_ONE_HOT)]
            index = {v: j for j, v in enumerate(top)}
            block = np.zeros((n, len(top) + (1 if len(counts) > len(top) else 0)))
            for i, v in enumerate(strs):
                block[i, index.get(v, len(top))] = 1.0
            blocks.append(block)
            names.extend(f"{col}={v}" for v in top)
            if len(counts) > len(top):
                names.append(f"{col}=<other>")
    if nan_rows:
        issues.append(
            _issue(
                "input",
                f"{len(nan_rows)} record(s) have missing values (columns: {', '.join(nan_cols[:8])}); "
                "numeric gaps were filled with the column median",
                sorted(nan_rows),
            )
        )
    if not blocks:
        raise DetectionError(
            "no usable feature columns (all empty or free-form text)",
            advice="Pass --features, or --text for a text column.",
        )
    dense = _standardise(np.hstack(blocks))
    return dense, tuple(names), raw


def _images(column: pd.Series, base: Path, issues: list[dict[str, Any]], ids: Sequence[str]) -> FloatArray:
    decoded = [decode_image_cell(v, base) for v in column]
    bad = [i for i, img in enumerate(decoded) if img is None]
    good = [img for img in decoded if img is not None]
    if not good:
        raise DetectionError("no image could be decoded", advice="Check the image column / folder.")
    if bad:
        shown = ", ".join(ids[i] for i in bad[:3])
        issues.append(_issue("corrupt", f"{len(bad)} image(s) could not be decoded ({shown})", bad))
    color = any(img.ndim == 3 for img in good)
    shape = Counter(img.shape[:2] for img in good).most_common(1)[0][0]
    h, w = shape
    if max(h, w) > _MAX_IMAGE_SIDE:
        scale = _MAX_IMAGE_SIDE / max(h, w)
        h, w = max(1, round(h * scale)), max(1, round(w * scale))
    resized = 0
    out = np.zeros((len(decoded), h, w, 3) if color else (len(decoded), h, w), dtype=np.float64)
    from PIL import Image

    for i, img in enumerate(decoded):
        if img is None:
            continue
        if color and img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        if img.shape[:2] != (h, w):
            resized += 1
            img = np.asarray(Image.fromarray(img).resize((w, h), Image.Resampling.BILINEAR), dtype=np.uint8)
        out[i] = img.astype(np.float64) / 255.0
    return out


def _check_identical(values: Sequence[str], issues: list[dict[str, Any]]) -> None:
    if len(values) > 1 and len(set(values)) == 1:
        issues.append(_issue("input", f"all {len(values)} records are identical", range(len(values))))


def _check_identical_dense(x: FloatArray, issues: list[dict[str, Any]]) -> None:
    if x.shape[0] > 1 and (x.shape[1] == 0 or bool(np.all(np.ptp(x, axis=0) == 0))):
        issues.append(_issue("input", f"all {x.shape[0]} records have identical features", range(x.shape[0])))
