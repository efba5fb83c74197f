"""The ensemble's ranking (ADR 0050): agreement or strongest evidence, whichever ranks a record higher."""

from __future__ import annotations

import numpy as np

from dataward.detect.api import cauchy_combination, ranking_strength


def test_cauchy_combination_is_calibrated_on_independent_uniform_pvalues() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(size=(8, 20_000))
    combined = cauchy_combination(p, cap=1.0 - 1e-12)
    for level in (0.01, 0.05, 0.2):
        assert abs(float(np.mean(combined <= level)) - level) < 0.25 * level + 0.003


def test_one_strong_detector_is_not_diluted_by_indifferent_ones() -> None:
    rng = np.random.default_rng(4)
    n, k = 400, 8
    p = rng.uniform(size=(k, n))
    scores = rng.uniform(0.0, 0.3, size=(k, n))
    p[0, 17] = 1e-9  # one detector is sure about record 17; the other seven see nothing
    scores[0, 17] = 0.45
    strength = ranking_strength(scores, p)
    assert int(np.argmax(strength)) == 17


def test_agreement_of_many_detectors_still_ranks_high() -> None:
    rng = np.random.default_rng(5)
    n, k = 400, 6
    p = rng.uniform(0.05, 1.0, size=(k, n))
    scores = rng.uniform(0.0, 0.1, size=(k, n))
    scores[:, 9] = 0.3  # every detector a little suspicious, none with a small p-value
    strength = ranking_strength(scores, p)
    assert strength[9] == strength.max()
    assert np.all((strength > 0.0) & (strength <= 1.0))
