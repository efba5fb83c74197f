"""The tails check's cell lookup (one gather per value) equals the masked formulation it replaced."""

from __future__ import annotations

import numpy as np
import pytest

from dataward.screen import _rules as rules


def _masked_cells(g: rules._NumericGrid, x: np.ndarray) -> np.ndarray:
    """The earlier formulation: bin by binary search, sub-bin by width, open cells by masks (the oracle)."""
    m = g.q.size
    b = np.searchsorted(g.q, x, side="right")
    inner = (b >= 1) & (b <= m - 1)
    bi = np.clip(b - 1, 0, m - 2)
    with np.errstate(invalid="ignore", over="ignore"):
        sub = np.clip(np.nan_to_num((x - g.q[bi]) * g.inv_w[bi]), 0, rules._SUB - 1).astype(np.int64)
    return np.where(inner, 1 + bi * rules._SUB + sub, np.where(b == 0, 0, g.n_cells - 1))


class _Col:
    def __init__(self, s: np.ndarray) -> None:
        self.min, self.max = float(s[0]), float(s[-1])


@pytest.mark.parametrize("kind", ["normal", "poisson", "lognormal", "spike"])
def test_cells_equal_the_masked_formulation(kind: str) -> None:
    r = np.random.default_rng(len(kind))
    for trial in range(25):
        if kind == "normal":
            s = r.normal(0, 1, 5000)
        elif kind == "poisson":
            s = r.poisson(3, 5000).astype(float)
        elif kind == "lognormal":
            s = r.lognormal(0, 3, 5000)
        else:
            s = np.r_[np.zeros(4000), r.normal(0, 1e-300, 1000)]
        s = np.sort(s)
        g = rules._NumericGrid(s, _Col(s))  # type: ignore[arg-type]
        scale = 10.0 ** float(r.integers(-3, 300))
        x = np.concatenate([r.normal(0, 3, 5000) * scale, g.q, np.nextafter(g.q, -np.inf), [1e308, -1e308, 0.0]])
        np.testing.assert_array_equal(g.cells(x), _masked_cells(g, x), err_msg=f"{kind} trial {trial}")
