"""The federation's model: multinomial logistic regression, weights and bias as one (d+1, k) array. Pure.

Both sides train it the same way: a node (and the simulation) makes its update with :func:`local_update`,
and the coordinator replays it per batch when a node cooperates in tracing (``trace_batches``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
Labels = npt.NDArray[np.int64]


def _softmax(z: Array) -> Array:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: Array = e / e.sum(axis=1, keepdims=True)
    return out


def local_update(base: Array, x: Array, y: Labels, *, lr: float = 0.5, epochs: int = 5) -> Array:
    """Gradient steps on softmax cross-entropy from ``base``; returns the update (new - base)."""
    w = base.copy()
    onehot = np.eye(base.shape[1])[y]
    xb = np.hstack([x, np.ones((len(x), 1))])
    for _ in range(epochs):
        p = _softmax(xb @ w)
        w -= lr * xb.T @ (p - onehot) / max(1, len(x))
    out: Array = w - base
    return out
