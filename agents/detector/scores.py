"""The anomaly scores a detector computes, one registered class each (``evaluation.scores``).

A score turns what the model gives for a batch (the windows ``x``, their eval-mode
reconstruction ``x_hat``, and the latent code ``z`` for models with a latent space) into
per-window *features*, may fit statistics on the features of normal windows, and maps
features to one number per window, higher = more anomalous:

================================  ==========================  ==================  ======================
score                             features (B, D)             fitted on           value
================================  ==========================  ==================  ======================
``reconstruction``                mean squared error (B, 1)   --                  the feature
``reconstruction_mae``            mean absolute error (B, 1)  --                  the feature
``error_gaussian``                ``|x - x_hat|`` (B, T*F)    half the val        Mahalanobis distance
``error_gaussian_train``          ``|x - x_hat|`` (B, T*F)    train normals       Mahalanobis distance
``latent_euclidean``              ``z`` (B, D)                train normals       distance to their mean
``latent_mahalanobis``            ``z`` (B, D)                train normals       Mahalanobis distance
``latent_mahalanobis_recording``  ``z`` (B, D)                each recording's    Mahalanobis distance
                                                              own train normals
================================  ==========================  ==================  ======================

The first four need only reconstructions, so they work with every model; the latent ones
need ``encode`` (the config validator refuses them for a model without it).

The thresholds are split-conformal on the validation normals (:meth:`agents.detector.detector.Detector.fit`),
which needs calibration scores the score was not fitted on. Scores fitted on the training normals
(the latent ones) are calibrated on all validation normals. A score fitted on validation normals
(``error_gaussian``, as in EncDec-AD, which fits on one validation part and thresholds on another) is
fitted on one half of them and calibrated on the other half, with the very statistics that score
new windows, so calibration and new normal windows are exchangeable and the bound holds exactly.
(Cross-fitting, scoring each fold with statistics fitted on the others, looks out of sample but is
not: the deployed statistics are fitted on more windows, and the scale of a shrunk Mahalanobis
distance changes with the number of windows, so new normals scored higher than the folds did.)

The numeric work is in the pure functions at the end of this module (no config, no I/O):
reconstruction errors on torch tensors, the Gaussian fits and distances on NumPy arrays in
float64, fitted on normal windows only, never on the test set.
"""
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
    """Base class: per-window features, statistics fitted on normals, the score.

    Attributes:
        needs_latent: the score reads ``z`` (the model must implement ``encode``).
        fit_split: ``"train"`` (the training normals) or ``"val"`` (the fitting half of the validation
            normals): what :meth:`fit` is given; None: nothing to fit.
        error_kind: ``"mse"``/``"mae"`` for a reconstruction-error score (sets the kind of the
            per-sensor contributions and of the exported score), else None.
        statistics: the keys :meth:`fit` returns (a checkpoint's statistics are checked against them); a
            ``"precision"`` among them is a covariance, whose dimension is limited.
        feature_space: what the features' dimension D is: ``"latent"`` (the latent code's size),
            ``"errors"`` (T*F) or None (1, or nothing fitted).
        per_recording: the statistics that score a recording's windows are fitted on that recording's own
            training windows (its *reference*, :meth:`agents.detector.detector.Detector.reference_statistics`);
            the statistics fitted on ``fit_split`` (all recordings) are kept for the checkpoint's checks only.
    """

    name: ClassVar[str] = ""
    needs_latent: ClassVar[bool] = False
    fit_split: ClassVar[str | None] = None
    error_kind: ClassVar[str | None] = None
    statistics: ClassVar[tuple[str, ...]] = ()
    feature_space: ClassVar[str | None] = None
    per_recording: ClassVar[bool] = False

    @classmethod
    def fits_covariance(cls) -> bool:
        """Whether :meth:`fit` estimates a D x D covariance (its cost grows as D^3)."""
        return "precision" in cls.statistics

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


GAUSSIAN_STATISTICS = ("mean", "precision", "shrinkage")


def _gaussian_statistics(fit: GaussianFit) -> Statistics:
    return {"mean": torch.from_numpy(fit.mean), "precision": torch.from_numpy(fit.precision),
            "shrinkage": float(fit.shrinkage)}


def _gaussian(stats: Statistics) -> GaussianFit:
    return GaussianFit(mean=np.asarray(stats["mean"], dtype=np.float64),
                       precision=np.asarray(stats["precision"], dtype=np.float64), shrinkage=float(stats["shrinkage"]))


class _GaussianScore(Score):
    """A Mahalanobis distance under a Gaussian (Ledoit-Wolf shrunk) fitted on the features of normal windows."""

    statistics = GAUSSIAN_STATISTICS

    def fit(self, features: np.ndarray) -> Statistics:
        return _gaussian_statistics(fit_gaussian(features))

    def score(self, features: np.ndarray, stats: Statistics) -> np.ndarray:
        return mahalanobis_distance(features, _gaussian(stats))


@register_score("error_gaussian")
class ErrorGaussian(_GaussianScore):
    """EncDec-AD's score (Malhotra et al. 2016): the Mahalanobis distance of a window's absolute
    error vector ``|x - x_hat|`` under a Gaussian fitted on the validation normals' error vectors.

    The paper scores a point by ``(e - mu)^T Sigma^-1 (e - mu)`` of its per-time-step error ``e``; for a
    univariate beat ``e`` is one number, so here the errors of all T time steps of a window form one vector of
    T*F values, and the Gaussian captures which time steps normally err more and how they co-vary. Two
    deliberate deviations: the covariance is Ledoit-Wolf shrunk (few windows against T*F dimensions make the
    maximum-likelihood one singular), and the score is the square root, which ranks the same.
    """

    name, fit_split, feature_space = "error_gaussian", "val", "errors"

    def features(self, x: Tensor, x_hat: Tensor, z: Tensor | None) -> np.ndarray:
        return _numpy((x - x_hat).abs()).reshape(len(x), -1)


@register_score("error_gaussian_train")
class ErrorGaussianTrain(ErrorGaussian):
    """The error Gaussian fitted on the training normals' error vectors instead, so every validation normal
    calibrates the threshold (twice the calibration scores of ``error_gaussian``: at a false-alarm rate of 0.05
    the threshold is not the largest of few scores). Training errors are in-sample, so the Gaussian is tighter
    than for new normals; that shifts every new window's score alike and the calibration absorbs it."""

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
    """Mahalanobis distance of the latent code under a Gaussian fitted on the training normals'
    codes with Ledoit-Wolf shrinkage (a singular covariance never fails)."""

    name = "latent_mahalanobis"


@register_score("latent_mahalanobis_recording")
class LatentMahalanobisRecording(LatentMahalanobis):
    """The latent Mahalanobis distance under a Gaussian fitted on the scored recording's own training windows.

    Per-recording normalisation (``data.normalize="per_recording"``) puts each recording's sensors on the scale of
    its own normal operation; this score does the same in the latent space, so a recording whose normal codes sit
    apart from the others' (another operating point, other correlations) is measured against its own. It follows
    SKAB's protocol, where every recording's model sees its own first rows only, with one network for all
    recordings. Needs ``data.normalize="per_recording"``: a recording to score then brings its reference rows.
    """

    name, per_recording = "latent_mahalanobis_recording", True


def contributions(x: Tensor, x_hat: Tensor, kind: str) -> np.ndarray:
    """Per-sensor reconstruction error (B, F) float64, averaged over time; their mean is the error score."""
    return _numpy(feature_contributions(x, x_hat, kind))


_KINDS = ("mse", "mae")


def _elementwise_error(x: Tensor, x_hat: Tensor, kind: str) -> Tensor:
    """Squared or absolute error, same shape as ``x``."""
    if kind not in _KINDS:
        raise ValueError(f"kind: expected one of {_KINDS}, got {kind!r}")
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {tuple(x.shape)} "
                         f"and {tuple(x_hat.shape)}")
    if x.dim() < 1:
        raise ValueError("x must have a batch dimension, got a 0-d tensor")
    diff = x - x_hat
    return diff.square() if kind == "mse" else diff.abs()


def reconstruction_error(x: Tensor, x_hat: Tensor, kind: str = "mse") -> Tensor:
    """Mean reconstruction error of each sample.

    Args:
        x: Inputs, shape (N, ...).
        x_hat: Reconstructions, same shape as ``x``.
        kind: ``"mse"`` (squared error) or ``"mae"`` (absolute error).

    Returns:
        Tensor of shape (N,): the error averaged over all non-batch dimensions.

    Raises:
        ValueError: Unknown ``kind`` or mismatched shapes.
    """
    err = _elementwise_error(x, x_hat, kind)
    return err.reshape(err.shape[0], -1).mean(dim=1)


def feature_contributions(x: Tensor, x_hat: Tensor, kind: str = "mse") -> Tensor:
    """Mean reconstruction error per feature, averaged over time.

    Their mean over features equals :func:`reconstruction_error`.

    Args:
        x: Inputs, shape (N, T, F).
        x_hat: Reconstructions, shape (N, T, F).
        kind: ``"mse"`` or ``"mae"``.

    Returns:
        Tensor of shape (N, F).

    Raises:
        ValueError: Unknown ``kind``, mismatched shapes or inputs not 3-d.
    """
    if x.dim() != 3:
        raise ValueError(f"x must have shape (N, T, F), got {tuple(x.shape)}")
    return _elementwise_error(x, x_hat, kind).mean(dim=1)


#: The spread given to a Gaussian fitted on identical samples, relative to their magnitude (:func:`fit_gaussian`):
#: far above float32's rounding (1.2e-7, so the same window scored in another batch stays near 0), far below
#: any change of input.
DEGENERATE_STD = 1e-4


@dataclass
class GaussianFit:
    """A Gaussian fitted on normal samples.

    Attributes:
        mean: Mean, shape (D,), float64.
        precision: (Pseudo-)inverse of the shrunk covariance, shape (D, D), float64.
        shrinkage: Ledoit-Wolf shrinkage coefficient in [0, 1].
    """

    mean: np.ndarray
    precision: np.ndarray
    shrinkage: float


def fit_gaussian(z: np.ndarray) -> GaussianFit:
    """Fit mean and Ledoit-Wolf shrunk covariance on normal samples.

    Ledoit-Wolf shrinks the sample covariance towards a scaled identity, so a
    singular sample covariance (N < D, or a constant column) still gives a
    well-defined Gaussian. The precision is the symmetric pseudo-inverse
    (``scipy.linalg.pinvh``, as sklearn's ``precision_`` does). Identical
    samples have no spread to shrink: a zero covariance, whose pseudo-inverse
    would score every sample 0 (nothing could ever alarm), or one of float32
    rounding only, which would score the very same sample far out. Their
    covariance gets (:data:`DEGENERATE_STD` x the mean's magnitude)^2 on the
    diagonal, so the sample itself scores about 0 and any change of it high.

    Args:
        z: Normal samples, shape (N, D), N >= 2.

    Returns:
        The fitted :class:`GaussianFit`.

    Raises:
        ValueError: Wrong shape, fewer than 2 samples, or NaN/inf values.
    """
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
    precision = 0.5 * (precision + precision.T)
    return GaussianFit(mean=np.asarray(lw.location_, dtype=np.float64),
                       precision=precision, shrinkage=float(lw.shrinkage_))


def euclidean_distance(z: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Euclidean distance of each sample to a center.

    Args:
        z: Samples, shape (N, D).
        center: Center, shape (D,).

    Returns:
        float64 array of shape (N,).
    """
    arr = check_array(z, "z", "ND")
    c = np.asarray(center, dtype=np.float64)
    if c.shape != (arr.shape[1],):
        raise ValueError(f"center must have shape ({arr.shape[1]},), got {c.shape}")
    return np.sqrt(np.square(arr - c).sum(axis=1))


def mahalanobis_distance(z: np.ndarray, fit: GaussianFit) -> np.ndarray:
    """Mahalanobis distance sqrt((z - mu)^T P (z - mu)) of each sample.

    Args:
        z: Samples, shape (N, D).
        fit: Gaussian fitted on normal samples of dimension D.

    Returns:
        float64 array of shape (N,); the quadratic form is clipped at 0 before
        the square root, so round-off never gives NaN.
    """
    arr = check_array(z, "z", "ND")
    d = fit.mean.shape[0]
    if arr.shape[1] != d:
        raise ValueError(f"z has {arr.shape[1]} features but the Gaussian was fitted on {d}")
    diff = arr - fit.mean
    quad = np.einsum("nd,de,ne->n", diff, fit.precision, diff, optimize=True)
    return np.sqrt(np.clip(quad, 0.0, None))
