"""Bugs found hunting in the baselines, scores and scalers (agents/detector/baselines.py, scores.py, scaler.py)."""
from __future__ import annotations

import warnings

import numpy as np

from agents.detector import baselines as bl


def test_pca_of_wide_windows_is_seeded_not_drawn_from_the_global_rng() -> None:
    """Windows of more than 500 values (T*F, as 60 steps x 9 SKAB sensors) send scikit-learn's PCA to its randomized
    SVD: with the global NumPy RNG it drew from before, the same data and seed scored differently each fit."""
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(40, 60, 10)), rng.normal(size=(5, 60, 10))
    np.random.seed(1)
    first = bl.score_baselines(bl.fit_baselines(train, ["pca"], seed=0), test)["pca"]
    np.random.seed(2)
    again = bl.score_baselines(bl.fit_baselines(train, ["pca"], seed=0), test)["pca"]
    np.testing.assert_array_equal(first, again)


def test_pca_on_training_windows_that_never_moved_fits_without_a_numpy_warning() -> None:
    """A machine at rest gives identical training windows: scikit-learn's explained-variance ratio (unused here)
    divided 0 by 0, and the run printed 'RuntimeWarning: invalid value encountered in divide'."""
    train = np.ones((10, 8, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted = bl.fit_baselines(train, ["pca"])
    scores = fitted["pca"].score(np.stack([train[0], train[0] + 5.0]))
    assert scores[0] == 0.0 and scores[1] > 1.0
