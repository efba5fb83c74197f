"""Image helpers: decode bounded images and compute the 64-bit DCT perceptual hash (pHash)."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import pyarrow as pa
from PIL import Image
from scipy.fft import dctn

MAX_PIXELS = 64_000_000


def image_bytes(arr: pa.Array) -> list[bytes | None]:
    """The image bytes of a binary column or of a struct column with a ``bytes`` field (Hugging Face)."""
    if pa.types.is_struct(arr.type):
        arr = arr.field("bytes")
    if not (pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)):
        return [None] * len(arr)
    return [v if isinstance(v, bytes) else None for v in arr.to_pylist()]


def decode_gray(data: bytes, size: int = 32) -> np.ndarray | None:
    """The image as a ``size`` x ``size`` grayscale float array, or None if it is not a readable image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                w, h = img.size
                if w * h > MAX_PIXELS or w == 0 or h == 0:
                    return None
                gray = img.convert("L").resize((size, size), Image.Resampling.LANCZOS)
                return np.asarray(gray, dtype=np.float64)
    except (
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        EOFError,
        MemoryError,
    ):
        return None


def phash(data: bytes) -> int | None:
    """64-bit pHash: sign of the 8x8 low-frequency DCT coefficients against their median."""
    gray = decode_gray(data)
    if gray is None:
        return None
    return phash_array(gray)


def phash_array(gray: np.ndarray) -> int:
    coeffs = dctn(gray, norm="ortho")[:8, :8]
    flat = coeffs.flatten()
    med = float(np.median(flat[1:]))
    bits = flat > med
    value = 0
    for b in bits:
        value = (value << 1) | int(b)
    return value


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def phash_column(arr: Any) -> list[int | None]:
    return [phash(b) if b is not None else None for b in image_bytes(arr)]
