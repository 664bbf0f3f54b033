"""The anomaly scores a detector computes, one registered class each (``evaluation.scores``; docs/thresholds.md),
and the pure numeric functions behind them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from utils.core.arrays import check_array
from utils.core.registry import register_score

Statistics = dict[str, Any]


class Score:
    """Base class: a batch's windows ``x``, reconstructions ``x_hat`` and latent codes ``z`` -> per-window features
    -> (statistics fitted on normal windows' features) -> a score, higher = more anomalous.

    Attributes:
        needs_latent: the score reads ``z`` (the model must implement ``encode``).
        fit_split: ``"train"`` or ``"val"`` (the fitting half of the validation normals); None: nothing to fit.
        error_kind: ``"mse"``/``"mae"`` for a reconstruction-error score (and its contributions), else None.
        statistics: the keys :meth:`fit` returns (checked in a checkpoint); ``"precision"`` marks a covariance.
        feature_space: the features' dimension D: ``"latent"``, ``"errors"`` (T*F) or None (1, or nothing fitted).
        per_recording: fitted on the scored recording's own training windows (``Detector.reference_statistics``).
    """

    name: ClassVar[str] = ""
    needs_latent: ClassVar[bool] = False
    fit_split: ClassVar[str | None] = None
    error_kind: ClassVar[str | None] = None
    statistics: ClassVar[tuple[str, ...]] = ()
    feature_space: ClassVar[str | None] = None
    per_recording: ClassVar[bool] = False

    def features(self, x: Tensor, x_hat: Tensor, z: Tensor | None) -> np.ndarray:
        """Per-window features (B, D) float64 of a batch: windows and reconstructions (B, T, F), ``z`` (B, D')."""
        raise NotImplementedError

    def fit(self, features: np.ndarray) -> Statistics:
        """Statistics fitted on the features (N, D) of normal windows (tensors and floats only)."""
        return {}

    def score(self, features: np.ndarray, stats: Statistics) -> np.ndarray:
        """Scores (N,) float64 of features (N, D), higher = more anomalous."""
        return features[:, 0]


def _numpy(t: Tensor) -> np.ndarray:
    return t.detach().double().cpu().numpy()


class _ReconstructionError(Score):
    def features(self, x: Tensor, x_hat: Tensor, z: Tensor | None) -> np.ndarray:
        return _numpy(reconstruction_error(x, x_hat, self.error_kind))[:, None]


@register_score("reconstruction")
class MeanSquaredError(_ReconstructionError):
    """Mean squared reconstruction error of the window."""

    name, error_kind = "reconstruction", "mse"


@register_score("reconstruction_mae")
class MeanAbsoluteError(_ReconstructionError):
    """Mean absolute reconstruction error of the window."""

    name, error_kind = "reconstruction_mae", "mae"


class _GaussianScore(Score):
    """A Mahalanobis distance under a Gaussian (Ledoit-Wolf shrunk) fitted on the features of normal windows."""

    statistics = ("mean", "precision", "shrinkage")

    def fit(self, features: np.ndarray) -> Statistics:
        fit = fit_gaussian(features)
        return {"mean": torch.from_numpy(fit.mean), "precision": torch.from_numpy(fit.precision),
                "shrinkage": float(fit.shrinkage)}

    def score(self, features: np.ndarray, stats: Statistics) -> np.ndarray:
        mean, precision = (np.asarray(stats[key], dtype=np.float64) for key in ("mean", "precision"))
        return mahalanobis_distance(features, GaussianFit(mean, precision, float(stats["shrinkage"])))


@register_score("error_gaussian")
class ErrorGaussian(_GaussianScore):
    """EncDec-AD's score (Malhotra et al. 2016): Mahalanobis distance of the error vector ``|x - x_hat|`` (T*F) under a
    Gaussian fitted on validation normals' errors, Ledoit-Wolf shrunk and square-rooted (same ranking)."""

    name, fit_split, feature_space = "error_gaussian", "val", "errors"

    def features(self, x: Tensor, x_hat: Tensor, z: Tensor | None) -> np.ndarray:
        return _numpy((x - x_hat).abs()).reshape(len(x), -1)


@register_score("error_gaussian_train")
class ErrorGaussianTrain(ErrorGaussian):
    """The error Gaussian fitted on the training normals' errors, so every validation normal calibrates."""

    name, fit_split = "error_gaussian_train", "train"


class _LatentScore(Score):
    needs_latent, fit_split, feature_space = True, "train", "latent"

    def features(self, x: Tensor, x_hat: Tensor, z: Tensor | None) -> np.ndarray:
        return _numpy(z)


@register_score("latent_euclidean")
class LatentEuclidean(_LatentScore):
    """Euclidean distance of the latent code from the training normals' mean code."""

    name, statistics = "latent_euclidean", ("mean",)

    def fit(self, features: np.ndarray) -> Statistics:
        return {"mean": torch.from_numpy(features.mean(axis=0))}

    def score(self, features: np.ndarray, stats: Statistics) -> np.ndarray:
        return euclidean_distance(features, np.asarray(stats["mean"], dtype=np.float64))


@register_score("latent_mahalanobis")
class LatentMahalanobis(_LatentScore, _GaussianScore):
    """Mahalanobis distance of the latent code under a Ledoit-Wolf Gaussian fitted on the training normals' codes."""

    name = "latent_mahalanobis"


@register_score("latent_mahalanobis_recording")
class LatentMahalanobisRecording(LatentMahalanobis):
    """The latent Mahalanobis distance under a Gaussian fitted on the scored recording's own training windows
    (needs ``data.normalize="per_recording"``, which gives a recording to score its reference rows)."""

    name, per_recording = "latent_mahalanobis_recording", True


_KINDS = ("mse", "mae")


def _elementwise_error(x: Tensor, x_hat: Tensor, kind: str) -> Tensor:
    if kind not in _KINDS:
        raise ValueError(f"kind: expected one of {_KINDS}, got {kind!r}")
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}")
    if x.dim() < 1:
        raise ValueError("x must have a batch dimension, got a 0-d tensor")
    diff = x - x_hat
    return diff.square() if kind == "mse" else diff.abs()


def reconstruction_error(x: Tensor, x_hat: Tensor, kind: str = "mse") -> Tensor:
    """Mean reconstruction error (N,) of inputs ``x`` (N, ...) and ``x_hat`` of the same shape."""
    err = _elementwise_error(x, x_hat, kind)
    return err.reshape(err.shape[0], -1).mean(dim=1)


def feature_contributions(x: Tensor, x_hat: Tensor, kind: str = "mse") -> Tensor:
    """Per-feature reconstruction error (N, F) averaged over time (mean: the score) of ``x``, ``x_hat`` (N, T, F)."""
    if x.dim() != 3:
        raise ValueError(f"x must have shape (N, T, F), got {tuple(x.shape)}")
    return _elementwise_error(x, x_hat, kind).mean(dim=1)


#: The spread given to a Gaussian fitted on identical samples, relative to their magnitude: far above float32's
#: rounding, far below any change of input.
DEGENERATE_STD = 1e-4


@dataclass
class GaussianFit:
    """A Gaussian: mean (D,), precision (D, D) (pinv of the shrunk covariance), Ledoit-Wolf shrinkage in [0, 1]."""

    mean: np.ndarray
    precision: np.ndarray
    shrinkage: float


def fit_gaussian(z: np.ndarray) -> GaussianFit:
    """Fit mean and Ledoit-Wolf shrunk covariance on normal samples ``z`` (N, D), N >= 2; identical samples get
    (:data:`DEGENERATE_STD` x the mean's magnitude)^2 on the diagonal (else everything would score 0, or far out)."""
    arr = check_array(z, "z", "ND")
    if arr.shape[0] < 2:
        raise ValueError(f"fit_gaussian needs at least 2 samples, got {arr.shape[0]}")
    import scipy.linalg  # here, not at import: scipy and scikit-learn add ~1 s to every start-up
    from sklearn.covariance import LedoitWolf

    lw = LedoitWolf(store_precision=False, assume_centered=False).fit(arr)
    covariance = lw.covariance_
    floor = (DEGENERATE_STD * max(1.0, float(np.abs(lw.location_).max()))) ** 2
    if np.trace(covariance) < floor * len(covariance):  # identical samples, up to the rounding of float32 models
        covariance = covariance + np.eye(len(covariance)) * floor
    precision = scipy.linalg.pinvh(covariance)
    return GaussianFit(np.asarray(lw.location_, dtype=np.float64), 0.5 * (precision + precision.T),
                       float(lw.shrinkage_))


def euclidean_distance(z: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Euclidean distance (N,) float64 of each sample ``z`` (N, D) to ``center`` (D,)."""
    arr = check_array(z, "z", "ND")
    c = np.asarray(center, dtype=np.float64)
    if c.shape != (arr.shape[1],):
        raise ValueError(f"center must have shape ({arr.shape[1]},), got {c.shape}")
    return np.sqrt(np.square(arr - c).sum(axis=1))


def mahalanobis_distance(z: np.ndarray, fit: GaussianFit) -> np.ndarray:
    """Mahalanobis distance (N,) float64 of each sample ``z`` (N, D); the quadratic form clipped at 0 (no NaN)."""
    arr = check_array(z, "z", "ND")
    if arr.shape[1] != (d := fit.mean.shape[0]):
        raise ValueError(f"z has {arr.shape[1]} features but the Gaussian was fitted on {d}")
    diff = arr - fit.mean
    quad = np.einsum("nd,de,ne->n", diff, fit.precision, diff, optimize=True)
    return np.sqrt(np.clip(quad, 0.0, None))
