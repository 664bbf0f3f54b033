"""Simple anomaly-detection baselines on flattened windows: kNN distance, PCA error, IsolationForest.

Each baseline is fitted on training normals only, on windows already scaled like
the model's input, flattened from (N, T, F) to (N, T*F); it then scores windows of
the same shape, higher = more anomalous:

* ``knn``: mean Euclidean distance to the ``k = 5`` nearest training normals
  (``k`` capped at the number of training windows);
* ``pca``: mean squared error of the reconstruction from the leading
  ``10`` principal components (capped at ``min(N - 1, T*F)``);
* ``isolation_forest``: ``-score_samples`` of an IsolationForest with
  scikit-learn's default 100 trees and ``random_state=seed``.

Pure NumPy in, NumPy out; scikit-learn is imported when a baseline is fitted,
so importing this module (and ``agents``) stays free of it.

Example::

    fitted = fit_baselines(scaled_train, seed=0)          # (N, T, F) training normals
    scores = score_baselines(fitted, scaled_test)         # {"knn": (M,), "pca": (M,), ...}
    calibrated = calibrate_baselines(fitted, scaled_val, false_alarm_rate=0.01)
    alarms = calibrated["knn"].score(scaled_test) > calibrated["knn"].promise.threshold
    label = DISPLAY_NAMES["knn"]                          # "kNN distance (k=5)"
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Protocol

import numpy as np

from utils.scoring.conformal import ConformalThreshold, conformal_threshold

KNN_NEIGHBORS = 5
PCA_COMPONENTS = 10
FOREST_TREES = 100  # scikit-learn's default n_estimators

DISPLAY_NAMES: dict[str, str] = {
    "knn": f"kNN distance (k={KNN_NEIGHBORS})",
    "pca": f"PCA reconstruction ({PCA_COMPONENTS} components)",
    "isolation_forest": f"IsolationForest ({FOREST_TREES} trees)",
}
BASELINE_NAMES: tuple[str, ...] = tuple(DISPLAY_NAMES)


class Baseline(Protocol):
    """A fitted baseline: scores flattened windows (M, D), higher = more anomalous."""

    def score(self, x: np.ndarray) -> np.ndarray:
        """Scores (M,) float64 of flattened windows (M, D)."""


def flatten_windows(windows: Any, name: str = "windows") -> np.ndarray:
    """Check windows and flatten them to one row each.

    Args:
        windows: Array-like of shape (N, T, F), finite numbers.
        name: How error messages call the array.

    Returns:
        float64 array of shape (N, T*F).

    Raises:
        ValueError: Not 3-d, empty, or holding NaN or inf.
    """
    arr = np.asarray(windows, dtype=np.float64)
    if arr.ndim != 3:
        raise ValueError(f"{name} must have shape (N, T, F), got {arr.shape}")
    if arr.shape[0] == 0 or arr[0].size == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or inf")
    return arr.reshape(arr.shape[0], -1)


def pca_components(n_train: int, n_dims: int, wanted: int = PCA_COMPONENTS) -> int:
    """PCA components used: ``wanted`` capped at ``min(n_train - 1, n_dims)``, at least 1."""
    return max(1, min(wanted, n_train - 1, n_dims))


class KNNDistance:
    """Mean Euclidean distance to the ``k`` nearest training normals."""

    def __init__(self, x_train: np.ndarray, k: int = KNN_NEIGHBORS) -> None:
        """Fit on flattened training normals ``x_train`` (N, D); ``k`` is capped at N."""
        from sklearn.neighbors import NearestNeighbors

        self.k = min(k, len(x_train))
        self._nn = NearestNeighbors(n_neighbors=self.k).fit(x_train)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Mean distance (M,) of each window of ``x`` (M, D) to its ``k`` nearest training normals."""
        return self._nn.kneighbors(x)[0].mean(axis=1).astype(np.float64)


class PCAReconstruction:
    """Mean squared reconstruction error from the leading principal components."""

    def __init__(self, x_train: np.ndarray, n_components: int = PCA_COMPONENTS) -> None:
        """Fit on ``x_train`` (N, D) with ``n_components`` capped by :func:`pca_components`."""
        from sklearn.decomposition import PCA

        self.n_components = pca_components(x_train.shape[0], x_train.shape[1], n_components)
        self._pca = PCA(n_components=self.n_components).fit(x_train)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Mean squared error (M,) of ``x`` (M, D) against its projection on the components."""
        recon = self._pca.inverse_transform(self._pca.transform(x))
        return ((x - recon) ** 2).mean(axis=1).astype(np.float64)


class IsolationForestScore:
    """IsolationForest anomaly score ``-score_samples`` (higher = more anomalous)."""

    def __init__(self, x_train: np.ndarray, seed: int = 0, n_estimators: int = FOREST_TREES) -> None:
        """Fit ``n_estimators`` trees on ``x_train`` (N, D) with ``random_state=seed``."""
        from sklearn.ensemble import IsolationForest

        self.n_estimators = n_estimators
        self._forest = IsolationForest(n_estimators=n_estimators, random_state=seed).fit(x_train)

    def score(self, x: np.ndarray) -> np.ndarray:
        """``-score_samples`` (M,) of ``x`` (M, D)."""
        return (-self._forest.score_samples(x)).astype(np.float64)


class FittedBaseline:
    """A baseline fitted on training windows (N, T, F); scores windows of the same T and F."""

    def __init__(self, name: str, window_shape: tuple[int, int], model: Baseline) -> None:
        self.name = name
        self.display_name = DISPLAY_NAMES[name]
        self.window_shape = window_shape
        self.model = model

    def score(self, windows: Any) -> np.ndarray:
        """Scores (M,) float64 of windows (M, T, F), higher = more anomalous.

        Raises:
            ValueError: Windows not (M, T, F) with the training T and F, or not finite.
        """
        arr = np.asarray(windows)
        if arr.ndim == 3 and tuple(arr.shape[1:]) != self.window_shape:
            raise ValueError(f"windows have shape (T, F) = {tuple(arr.shape[1:])}, but {self.name} "
                             f"was fitted on {self.window_shape}")
        return self.model.score(flatten_windows(arr))


def check_names(names: Iterable[str]) -> tuple[str, ...]:
    """The baseline names, checked; duplicates dropped, order kept.

    Raises:
        ValueError: An unknown name (the message lists the valid ones) or no name at all.
    """
    chosen = tuple(dict.fromkeys(str(n) for n in ([names] if isinstance(names, str) else names)))
    unknown = [n for n in chosen if n not in DISPLAY_NAMES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; valid baselines: {', '.join(BASELINE_NAMES)}")
    if not chosen:
        raise ValueError(f"no baseline named; valid baselines: {', '.join(BASELINE_NAMES)}")
    return chosen


def fit_baselines(train_windows: Any, names: Iterable[str] = BASELINE_NAMES,
                  seed: int = 0) -> dict[str, FittedBaseline]:
    """Fit baselines on scaled training normals.

    Args:
        train_windows: Scaled training normals, shape (N, T, F) with N >= 2.
        names: Baselines to fit, from :data:`BASELINE_NAMES`.
        seed: ``random_state`` of the IsolationForest (the others are deterministic).

    Returns:
        ``{name: fitted baseline}`` in the order of ``names``.

    Raises:
        ValueError: An unknown name, fewer than 2 windows, or invalid windows.
    """
    chosen = check_names(names)
    arr = np.asarray(train_windows)
    x = flatten_windows(arr, "train_windows")
    if len(x) < 2:
        raise ValueError(f"train_windows: need at least 2 windows to fit the baselines, got {len(x)}")
    builders = {"knn": lambda: KNNDistance(x), "pca": lambda: PCAReconstruction(x),
                "isolation_forest": lambda: IsolationForestScore(x, seed=seed)}
    shape = (int(arr.shape[1]), int(arr.shape[2]))
    return {name: FittedBaseline(name, shape, builders[name]()) for name in chosen}


def score_baselines(fitted: dict[str, FittedBaseline], windows: Any) -> dict[str, np.ndarray]:
    """Score windows with every fitted baseline.

    Args:
        fitted: What :func:`fit_baselines` returned.
        windows: Windows scaled like the training normals, shape (M, T, F).

    Returns:
        ``{name: scores (M,) float64}``, higher = more anomalous.
    """
    return {name: baseline.score(windows) for name, baseline in fitted.items()}


@dataclass
class CalibratedBaseline:
    """A fitted baseline with its split-conformal threshold (the rule the models' scores follow).

    Attributes:
        fitted: the baseline fitted on the training normals.
        calibration: its scores (n,) of the validation normals (not used to fit it).
        promise: the threshold taken from them, with its bound.
    """

    fitted: FittedBaseline
    calibration: np.ndarray
    promise: ConformalThreshold

    def score(self, windows: Any) -> np.ndarray:
        """Scores (M,) of windows (M, T, F) scaled like the training normals."""
        return self.fitted.score(windows)


def calibrate_baselines(fitted: dict[str, FittedBaseline], val_windows: Any,
                        false_alarm_rate: float) -> dict[str, CalibratedBaseline]:
    """Thresholds of fitted baselines on validation normals (M, T, F), at ``false_alarm_rate``."""
    out = {}
    for name, baseline in fitted.items():
        calibration = baseline.score(val_windows)
        out[name] = CalibratedBaseline(baseline, calibration, conformal_threshold(calibration, false_alarm_rate))
    return out
