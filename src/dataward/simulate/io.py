"""Read a data file or image folder for the simulator, and write the poisoned copy plus ``truth.json``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataward.detect.data_io import (
    decode_image_cell,
    encode_png,
    infer_format,
    read_imagefolder,
    read_table,
    write_imagefolder,
    write_table,
)
from dataward.simulate import simulate
from dataward.simulate.interface import GroundTruth, PoisonResult, Roles, SimulationError


def read_dataset(path: Path, fmt: str | None, roles: Roles) -> tuple[pd.DataFrame, Roles, str]:
    """Load ``path``; image cells are decoded to uint8 arrays so attacks can edit pixels."""
    fmt = infer_format(path, fmt)
    if fmt == "imagefolder":
        frame = read_imagefolder(path)
        return frame, Roles(label="label", image="image", id="path"), fmt
    frame = read_table(path, fmt)
    if roles.label is None:
        for cand in ("label", "labels", "class", "target", "y"):
            matches = [c for c in frame.columns if str(c).lower() == cand]
            if matches:
                roles = Roles(**{**roles.__dict__, "label": str(matches[0])})
                break
    if roles.image is not None:
        if roles.image not in frame.columns:
            raise SimulationError(f"no image column {roles.image!r} in {path}", advice="Check --image.")
        frame = frame.copy()
        frame[roles.image] = pd.Series(
            [decode_image_cell(v, path.parent) for v in frame[roles.image]], index=frame.index, dtype=object
        )
    return frame, roles, fmt


def write_dataset(result: PoisonResult, roles: Roles, out: Path, fmt: str, *, name: str = "data") -> Path:
    """Write the poisoned data into ``out`` (and ``out/truth.json``); returns the data path.

    For an image folder the records are re-laid out as ``<label>/<file>.png`` and sorted by relative path
    (the order ``detect`` reads them in); the ground truth's indices are remapped to that order.
    """
    out.mkdir(parents=True, exist_ok=True)
    frame = result.data
    truth = result.truth
    if fmt == "imagefolder":
        assert roles.label is not None and roles.image is not None
        paths = _image_paths(frame, roles)
        order = sorted(range(len(frame)), key=lambda i: paths[i])
        new_index = {old: new for new, old in enumerate(order)}
        laid = pd.DataFrame({"path": [paths[i] for i in order], "image": [frame[roles.image].iloc[i] for i in order]})
        target = out / "images"
        write_imagefolder(laid, target)
        truth = _remap(truth, new_index, {new_index[i]: paths[i] for i in range(len(frame))})
        data_path = target
    else:
        frame = frame.copy()
        if roles.image is not None:
            frame[roles.image] = _encode_images(frame[roles.image], out, fmt)
        data_path = out / f"{name}.{fmt}"
        write_table(frame, data_path, fmt)
    tmp = out / ".truth.json.tmp"
    tmp.write_text(json.dumps(truth.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(out / "truth.json")
    return data_path


def _image_paths(frame: pd.DataFrame, roles: Roles) -> list[str]:
    assert roles.label is not None
    ids = frame[roles.id] if roles.id is not None and roles.id in frame.columns else pd.Series(range(len(frame)))
    seen: set[str] = set()
    out: list[str] = []
    for i, (ident, lab) in enumerate(zip(ids, frame[roles.label], strict=True)):
        stem = Path(str(ident)).stem if str(ident) else f"img{i:06d}"
        rel = f"{lab}/{stem}.png"
        k = 1
        while rel in seen:
            rel = f"{lab}/{stem}-{k}.png"
            k += 1
        seen.add(rel)
        out.append(rel)
    return out


def _remap(truth: GroundTruth, new_index: Mapping[int, int], ids: Mapping[int, str]) -> GroundTruth:
    changed = tuple(sorted(new_index[i] for i in truth.changed))
    how = {new_index[i]: v for i, v in truth.how.items()}
    return GroundTruth(
        attack=truth.attack,
        n_records=truth.n_records,
        changed=changed,
        how=how,
        params=truth.params,
        target=truth.target,
        trigger=truth.trigger,
        ids={i: ids[i] for i in changed},
        seed=truth.seed,
        rate=truth.rate,
    )


def _encode_images(column: pd.Series, out: Path, fmt: str) -> list[Any]:
    values: list[Any] = []
    folder = out / "images"
    for i, img in enumerate(column):
        if img is None:
            values.append(None)
            continue
        png = encode_png(np.asarray(img, dtype=np.uint8))
        if fmt == "parquet":
            values.append(png)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i:06d}.png").write_bytes(png)
            values.append(f"images/{i:06d}.png")
    return values


def simulate_file(
    path: Path,
    attack: str,
    out: Path,
    *,
    fmt: str | None = None,
    roles: Roles | None = None,
    rate: float | None = None,
    target: str | None = None,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
) -> tuple[Path, GroundTruth]:
    """Poison the file/folder at ``path`` and write the copy and ``truth.json`` into ``out``."""
    frame, roles, fmt = read_dataset(path, fmt, roles or Roles())
    result = simulate(frame, attack, roles, rate=rate, target=target, seed=seed, params=params)
    data_path = write_dataset(result, roles, out, fmt, name=path.stem if path.is_file() else "data")
    truth = GroundTruth.from_json(json.loads((out / "truth.json").read_text(encoding="utf-8")))
    return data_path, truth
