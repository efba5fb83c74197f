"""Backdoor attacks on images: a BadNets patch and a blended trigger, both relabelled to the target."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from dataward.detect.interface import Modality
from dataward.simulate.interface import (
    AttackCall,
    PoisonResult,
    Roles,
    SeededAttack,
    SimulationError,
    pick,
    register_attack,
    resolve_target,
)

_LOCATIONS = ("bottom-right", "bottom-left", "top-right", "top-left", "center", "random")


def _image_column(data: pd.DataFrame, roles: Roles, attack: str) -> str:
    if roles.image is None or roles.image not in data.columns:
        raise SimulationError(f"attack {attack!r} needs an image column", advice="Pass --image or an image folder.")
    return roles.image


def _shape(images: list[Any], attack: str) -> tuple[int, int]:
    good = [np.asarray(img) for img in images if img is not None]
    if not good:
        raise SimulationError(f"attack {attack!r}: no decodable image", advice="Check the images.")
    h, w = good[0].shape[:2]
    return int(h), int(w)


def _targets(data: pd.DataFrame, col: str, target: str | None) -> Any:
    if target is not None:
        return resolve_target(data, col, target)
    return sorted(pd.unique(data[col]), key=str)[0]


def _origin(location: Any, h: int, w: int, size: int) -> tuple[int, int]:
    if isinstance(location, list | tuple) and len(location) == 2:
        r, c = int(location[0]), int(location[1])
    elif isinstance(location, str) and "," in location:
        r, c = (int(v) for v in location.split(",", 1))
    elif location == "bottom-right":
        r, c = h - size, w - size
    elif location == "bottom-left":
        r, c = h - size, 0
    elif location == "top-right":
        r, c = 0, w - size
    elif location == "top-left":
        r, c = 0, 0
    elif location == "center":
        r, c = (h - size) // 2, (w - size) // 2
    else:
        raise SimulationError(
            f"unknown patch location {location!r}", advice=f"Use one of {', '.join(_LOCATIONS)} or 'ROW,COL'."
        )
    if not (0 <= r <= h - size and 0 <= c <= w - size):
        raise SimulationError(f"patch at {r},{c} of size {size} does not fit {h}x{w} images", advice="Move it.")
    return r, c


@register_attack
class BadNetsPatch(SeededAttack):
    name: ClassVar[str] = "badnets"
    modalities: ClassVar[frozenset[Modality]] = frozenset({Modality.IMAGE})
    description: ClassVar[str] = (
        "stamp a square patch (params size, location incl. 'random' = anywhere, value 0-255, 'checker' or 'random') "
        "on RATE of non-target images "
        "and relabel them TARGET"
    )
    default_rate: ClassVar[float] = 0.03

    def poison(self, call: AttackCall) -> PoisonResult:
        """Stamp the patch on non-target images and relabel them as the target."""
        data, roles, params, rng = call.data, call.roles, call.params, call.rng
        rate, target = call.rate, call.target
        col = call.label()
        img_col = _image_column(data, roles, self.name)
        images = list(data[img_col])
        h, w = _shape(images, self.name)
        size = int(params.get("size", max(2, round(min(h, w) / 8))))
        if not 1 <= size <= min(h, w):
            raise SimulationError(f"patch size {size} does not fit {h}x{w} images", advice="Use a smaller size.")
        location = params.get("location", "bottom-right")
        # "random": a different position in every image (a translation-invariant trigger)
        r, c = (0, 0) if location == "random" else _origin(location, h, w, size)
        value = params.get("value", 255)
        tgt = _targets(data, col, target)
        if value == "checker":
            patch = np.indices((size, size)).sum(axis=0) % 2 * 255
        elif value == "random":  # one random pattern (drawn from the seed), the same in every image
            patch = rng.integers(0, 256, size=(size, size))
        else:
            v = int(value)
            if not 0 <= v <= 255:
                raise SimulationError(f"patch value {v} is outside 0-255", advice="Pass value=0..255 or checker.")
            patch = np.full((size, size), v)
        ok = np.array([img is not None and np.asarray(img).shape[:2] == (h, w) for img in images])
        candidates = np.flatnonzero(ok & (data[col] != tgt).to_numpy())
        chosen = pick(rng, candidates, rate, len(data))
        out = data.copy()
        new_images = list(images)
        labels = list(out[col])
        how: dict[int, str] = {}
        origins: dict[int, list[int]] = {}
        for i in chosen:
            img = np.array(new_images[i], dtype=np.uint8, copy=True)
            if location == "random":
                r, c = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
            origins[i] = [r, c]
            if img.ndim == 3:
                img[r : r + size, c : c + size, :] = patch[:, :, None].astype(np.uint8)
            else:
                img[r : r + size, c : c + size] = patch.astype(np.uint8)
            new_images[i] = img
            how[i] = f"patch added at {r},{c}, label {labels[i]} -> {tgt}"
            labels[i] = tgt
        out[img_col] = pd.Series(new_images, index=out.index, dtype=object)
        out[col] = pd.Series(labels, index=out.index, dtype=data[col].dtype if data[col].dtype != object else object)
        trigger: dict[str, Any] = {"kind": "patch", "size": size, "value": value, "location": location}
        if value == "random":
            trigger["pattern"] = patch.astype(int).tolist()
        if location == "random":
            trigger["origins"] = {str(i): origin for i, origin in origins.items()}
        else:
            trigger.update({"rows": [r, r + size - 1], "cols": [c, c + size - 1]})
        return call.result(
            out,
            chosen,
            how,
            params={**params, "size": size, "location": location, "value": value},
            target=str(tgt),
            trigger=trigger,
        )


@register_attack
class BlendedTrigger(SeededAttack):
    name: ClassVar[str] = "blended"
    modalities: ClassVar[frozenset[Modality]] = frozenset({Modality.IMAGE})
    description: ClassVar[str] = (
        "blend a fixed random pattern (param alpha, default 0.2) into RATE of non-target images and relabel TARGET"
    )
    default_rate: ClassVar[float] = 0.05

    def poison(self, call: AttackCall) -> PoisonResult:
        """Blend the seeded pattern into non-target images and relabel them as the target."""
        data, roles, params, rng = call.data, call.roles, call.params, call.rng
        rate, target = call.rate, call.target
        col = call.label()
        img_col = _image_column(data, roles, self.name)
        alpha = float(params.get("alpha", 0.2))
        if not 0.0 < alpha < 1.0:
            raise SimulationError(f"alpha {alpha} is outside (0, 1)", advice="Pass alpha=0.1..0.3.")
        images = list(data[img_col])
        h, w = _shape(images, self.name)
        pattern = rng.integers(0, 256, size=(h, w)).astype(np.float64)
        tgt = _targets(data, col, target)
        ok = np.array([img is not None and np.asarray(img).shape[:2] == (h, w) for img in images])
        chosen = pick(rng, np.flatnonzero(ok & (data[col] != tgt).to_numpy()), rate, len(data))
        out = data.copy()
        new_images = list(images)
        labels = list(out[col])
        how: dict[int, str] = {}
        for i in chosen:
            img = np.asarray(new_images[i], dtype=np.float64)
            pat = pattern[:, :, None] if img.ndim == 3 else pattern
            new_images[i] = np.clip(np.rint((1 - alpha) * img + alpha * pat), 0, 255).astype(np.uint8)
            how[i] = f"pattern blended (alpha {alpha}), label {labels[i]} -> {tgt}"
            labels[i] = tgt
        out[img_col] = pd.Series(new_images, index=out.index, dtype=object)
        out[col] = pd.Series(labels, index=out.index, dtype=data[col].dtype if data[col].dtype != object else object)
        return call.result(
            out,
            chosen,
            how,
            params={**params, "alpha": alpha},
            target=str(tgt),
            trigger={"kind": "blend", "alpha": alpha, "pattern_seed": call.seed},
        )
