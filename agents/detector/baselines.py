"""Baselines on flattened windows fitted on training normals: kNN distance, PCA error, IsolationForest
(docs/thresholds.md); their fitted state is plain arrays and numbers (no pickle), scikit-learn imported to fit."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Iterable

import numpy as np

from agents.detector.thresholds import ConformalThreshold, conformal_threshold
from utils.core.arrays import check_array

KNN_NEIGHBORS = 5
PCA_COMPONENTS = 10
FOREST_TREES = 100  # scikit-learn's default n_estimators
KNN_MAX_REFERENCE = 5000  # training windows kept as the kNN reference set (seeded subsample)


class Baseline:
    """A fitted baseline scoring flattened windows (M, D), higher = more anomalous, registered as ``NAME`` and shown
    as ``DISPLAY``; its fitted state is its constructor's keyword arguments named in ``STATE`` (arrays and numbers)."""

    NAME: ClassVar[str] = ""
    DISPLAY: ClassVar[str] = ""
    STATE: ClassVar[tuple[str, ...]] = ()

    def score(self, x: np.ndarray) -> np.ndarray:
        """Scores (M,) float64 of flattened windows (M, D)."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """The fitted state."""
        return {name: getattr(self, name) for name in self.STATE}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Baseline:
        """The baseline of a saved :meth:`state` (arrays may be tensors)."""
        return cls(**{name: state[name] for name in cls.STATE})


def flatten_windows(windows: Any, name: str = "windows") -> np.ndarray:
    """Check windows (N, T, F) (ValueError: not 3-d, empty, or NaN/inf) and flatten them to float64 (N, T*F)."""
    arr = check_array(windows, name, "NTF")
    return arr.reshape(arr.shape[0], -1)


def pca_components(n_train: int, n_dims: int, wanted: int = PCA_COMPONENTS) -> int:
    """PCA components used: ``wanted`` capped at ``min(n_train - 1, n_dims)``, at least 1."""
    return max(1, min(wanted, n_train - 1, n_dims))


class KNNDistance(Baseline):
    """Mean Euclidean distance to the ``k`` nearest training normals (at most :data:`KNN_MAX_REFERENCE` kept)."""

    NAME, DISPLAY, STATE = "knn", f"kNN distance (k={KNN_NEIGHBORS})", ("reference", "k")

    def __init__(self, reference: np.ndarray, k: int) -> None:
        self.reference, self.k, self._nn = _array(reference, 2), int(k), None

    @classmethod
    def fit(cls, x_train: np.ndarray, seed: int = 0, k: int = KNN_NEIGHBORS) -> KNNDistance:
        """Fit on flattened training normals ``x_train`` (N, D); ``k`` is capped at the reference set's size."""
        if len(x_train) > KNN_MAX_REFERENCE:
            rows = np.sort(np.random.default_rng(seed).choice(len(x_train), KNN_MAX_REFERENCE, replace=False))
            x_train = x_train[rows]
        return cls(np.ascontiguousarray(x_train, dtype=np.float64), min(k, len(x_train)))

    def score(self, x: np.ndarray) -> np.ndarray:
        """Mean distance (M,) of each window of ``x`` (M, D) to its ``k`` nearest training normals."""
        if self._nn is None:  # built on first use
            from sklearn.neighbors import NearestNeighbors

            self._nn = NearestNeighbors(n_neighbors=self.k).fit(self.reference)
        return self._nn.kneighbors(x)[0].mean(axis=1).astype(np.float64)


class PCAReconstruction(Baseline):
    """Mean squared reconstruction error from the leading principal components."""

    NAME, DISPLAY, STATE = "pca", f"PCA reconstruction ({PCA_COMPONENTS} components)", ("mean", "components")

    def __init__(self, mean: np.ndarray, components: np.ndarray) -> None:
        """From the mean (D,) and the components (C, D)."""
        self.mean, self.components = _array(mean, 1), _array(components, 2)
        self.n_components = len(self.components)

    @classmethod
    def fit(cls, x_train: np.ndarray, seed: int = 0, n_components: int = PCA_COMPONENTS) -> PCAReconstruction:
        """Fit on ``x_train`` (N, D), ``n_components`` capped (:func:`pca_components`), ``seed`` for randomized SVD."""
        from sklearn.decomposition import PCA

        components = pca_components(x_train.shape[0], x_train.shape[1], n_components)
        with np.errstate(invalid="ignore", divide="ignore"):  # identical windows: sklearn's unused variance ratio 0/0
            pca = PCA(n_components=components, random_state=seed).fit(x_train)
        return cls(pca.mean_.astype(np.float64), pca.components_.astype(np.float64))

    def score(self, x: np.ndarray) -> np.ndarray:
        """Mean squared error (M,) of ``x`` (M, D) against its projection on the components."""
        recon = (x - self.mean) @ self.components.T @ self.components + self.mean
        return ((x - recon) ** 2).mean(axis=1).astype(np.float64)


#: The arrays of an isolation tree (scikit-learn's ``tree_``), one row per tree in the saved state.
TREE_FIELDS = ("children_left", "children_right", "feature", "threshold", "n_node_samples")


class IsolationForestScore(Baseline):
    """IsolationForest ``-score_samples``, fitted by scikit-learn, scored by its arithmetic on :data:`TREE_FIELDS`."""

    NAME, DISPLAY = "isolation_forest", f"IsolationForest ({FOREST_TREES} trees)"
    STATE = (*TREE_FIELDS, "max_samples")

    def __init__(self, max_samples: int, **trees: np.ndarray) -> None:
        """From ``max_samples`` (the path-length normalisation) and the trees' arrays (trees, nodes)."""
        self.trees = {f: _array(trees[f], 2, np.float64 if f == "threshold" else np.int64) for f in TREE_FIELDS}
        self.max_samples = int(max_samples)

    @classmethod
    def fit(cls, x_train: np.ndarray, seed: int = 0, n_estimators: int = FOREST_TREES) -> IsolationForestScore:
        """Fit ``n_estimators`` trees on ``x_train`` (N, D) with ``random_state=seed``."""
        from sklearn.ensemble import IsolationForest

        forest = IsolationForest(n_estimators=n_estimators, random_state=seed).fit(x_train)
        trees = [t.tree_ for t in forest.estimators_]
        tables = {}
        for field in TREE_FIELDS:
            fill, dtype = (-1, np.int64) if field != "threshold" else (0.0, np.float64)
            tables[field] = np.full((len(trees), max(t.node_count for t in trees)), fill, dtype=dtype)
            for i, tree in enumerate(trees):  # (trees, nodes), padded past node_count
                tables[field][i, : tree.node_count] = getattr(tree, field)
        return cls(int(forest._max_samples), **tables)

    def score(self, x: np.ndarray) -> np.ndarray:
        """``-score_samples`` (M,) of ``x`` (M, D): scikit-learn's arithmetic on float32 inputs, tree by tree."""
        x = np.asarray(x, dtype=np.float32).astype(np.float64)  # the trees split float32 values
        left, right = self.trees["children_left"], self.trees["children_right"]
        depths, rows = np.zeros(len(x)), np.arange(len(x))
        for i in range(len(left)):
            node, depth = np.zeros(len(x), dtype=np.int64), np.ones(len(x))  # the root's depth is 1, as sklearn's
            inner = left[i, node] != -1
            while inner.any():
                go_left = x[rows, self.trees["feature"][i, node]] <= self.trees["threshold"][i, node]
                node = np.where(inner, np.where(go_left, left[i, node], right[i, node]), node)
                depth = depth + inner
                inner = left[i, node] != -1
            depths += depth + average_path_length(self.trees["n_node_samples"][i, node]) - 1.0
        denominator = len(left) * average_path_length(np.array([self.max_samples]))[0]
        return 2 ** -np.divide(depths, denominator, out=np.ones_like(depths), where=denominator != 0)

    def state(self) -> dict[str, Any]:
        """The trees' arrays and ``max_samples``."""
        return {**self.trees, "max_samples": self.max_samples}


def average_path_length(n_samples: np.ndarray) -> np.ndarray:
    """Average path length of an unsuccessful search in a binary tree of ``n`` samples (scikit-learn's)."""
    n = np.asarray(n_samples, dtype=np.float64)
    out = np.zeros(n.shape)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def _array(value: Any, ndim: int, dtype: Any = np.float64) -> np.ndarray:
    """A saved array (tensor or array) as NumPy of ``ndim`` dimensions."""
    arr = np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=dtype)
    if arr.ndim != ndim:
        raise ValueError(f"expected {ndim} dimensions, got shape {arr.shape}")
    return arr


_MODELS: dict[str, type[Baseline]] = {cls.NAME: cls for cls in (KNNDistance, PCAReconstruction, IsolationForestScore)}
DISPLAY_NAMES: dict[str, str] = {name: cls.DISPLAY for name, cls in _MODELS.items()}
BASELINE_NAMES: tuple[str, ...] = tuple(DISPLAY_NAMES)


class FittedBaseline:
    """A baseline fitted on training windows (N, T, F); scores windows of the same T and F."""

    def __init__(self, name: str, window_shape: tuple[int, int], model: Baseline) -> None:
        self.name, self.display_name, self.window_shape, self.model = name, DISPLAY_NAMES[name], window_shape, model

    def score(self, windows: Any) -> np.ndarray:
        """Scores (M,) float64 of windows (M, T, F) of the training T and F, higher = more anomalous."""
        arr = np.asarray(windows)
        if arr.ndim == 3 and tuple(arr.shape[1:]) != self.window_shape:
            raise ValueError(f"windows have shape (T, F) = {tuple(arr.shape[1:])}, but {self.name} "
                             f"was fitted on {self.window_shape}")
        return self.model.score(flatten_windows(arr))


def check_names(names: Iterable[str]) -> tuple[str, ...]:
    """The baseline names, checked (ValueError: unknown, or none); duplicates dropped, order kept."""
    chosen = tuple(dict.fromkeys(str(n) for n in ([names] if isinstance(names, str) else names)))
    if unknown := [n for n in chosen if n not in DISPLAY_NAMES]:
        raise ValueError(f"unknown baseline(s) {unknown}; valid baselines: {', '.join(BASELINE_NAMES)}")
    if not chosen:
        raise ValueError(f"no baseline named; valid baselines: {', '.join(BASELINE_NAMES)}")
    return chosen


def fit_baselines(train_windows: Any, names: Iterable[str] = BASELINE_NAMES,
                  seed: int = 0) -> dict[str, FittedBaseline]:
    """``{name: fitted baseline}`` on scaled training normals (N, T, F), N >= 2, with random draws by ``seed``."""
    chosen = check_names(names)
    arr = np.asarray(train_windows)
    x = flatten_windows(arr, "train_windows")
    if len(x) < 2:
        raise ValueError(f"train_windows: need at least 2 windows to fit the baselines, got {len(x)}")
    return {name: FittedBaseline(name, (int(arr.shape[1]), int(arr.shape[2])), _MODELS[name].fit(x, seed))
            for name in chosen}


def score_baselines(fitted: dict[str, FittedBaseline], windows: Any) -> dict[str, np.ndarray]:
    """``{name: scores (M,) float64}`` of windows (M, T, F) scaled like the training normals."""
    return {name: baseline.score(windows) for name, baseline in fitted.items()}


@dataclass
class CalibratedBaseline:
    """A fitted baseline with its threshold (``promise``) from its scores of validation normals, ``calibration``."""

    fitted: FittedBaseline
    calibration: np.ndarray
    promise: ConformalThreshold

    def score(self, windows: Any) -> np.ndarray:
        """Scores (M,) of windows (M, T, F) scaled like the training normals."""
        return self.fitted.score(windows)


def calibrate_baselines(fitted: dict[str, FittedBaseline], val_windows: Any,
                        false_alarm_rate: float) -> dict[str, CalibratedBaseline]:
    """Thresholds of fitted baselines on validation normals (M, T, F), at ``false_alarm_rate``."""
    return {name: CalibratedBaseline(b, cal, conformal_threshold(cal, false_alarm_rate))
            for name, b in fitted.items() for cal in [b.score(val_windows)]}


def load_baselines(state: dict[str, dict[str, Any]], false_alarm_rate: float) -> dict[str, CalibratedBaseline]:
    """Calibrated baselines from :func:`agents.detector.detector.baselines_checkpoint`, thresholds taken again
    (ValueError, KeyError, TypeError: a field missing or of the wrong shape)."""
    out = {}
    for name, fields in state.items():
        model = _MODELS[check_names([name])[0]].from_state(fields)
        fitted = FittedBaseline(name, tuple(int(v) for v in fields["window_shape"]), model)
        calibration = _array(fields["calibration"], 1)
        out[name] = CalibratedBaseline(fitted, calibration, conformal_threshold(calibration, false_alarm_rate))
    return out
