"""The anomaly scores a detector computes, one registered class each (``evaluation.scores``).

A score turns what the model gives for a batch (the windows ``x``, their eval-mode
reconstruction ``x_hat``, and the latent code ``z`` for models with a latent space) into
per-window *features*, may fit statistics on the features of normal windows, and maps
features to one number per window, higher = more anomalous:

========================  ==========================  =============  ======================
score                     features (B, D)             fitted on      value
========================  ==========================  =============  ======================
``reconstruction``        mean squared error (B, 1)   --             the feature
``reconstruction_mae``    mean absolute error (B, 1)  --             the feature
``error_gaussian``        ``|x - x_hat|`` (B, T*F)    half the val   Mahalanobis distance
``error_gaussian_train``  ``|x - x_hat|`` (B, T*F)    train normals  Mahalanobis distance
``latent_euclidean``      ``z`` (B, D)                train normals  distance to their mean
``latent_mahalanobis``    ``z`` (B, D)                train normals  Mahalanobis distance
========================  ==========================  =============  ======================

The first four need only reconstructions, so they work with every model; the latent ones
need ``encode`` (the config validator refuses them for a model without it). The numeric work
is done by the pure functions of :mod:`utils.scoring.scores`.

The thresholds are split-conformal on the validation normals (:meth:`agents.detector.Detector.fit`),
which needs calibration scores the score was not fitted on. Scores fitted on the training normals
(the latent ones) are calibrated on all validation normals. A score fitted on validation normals
(``error_gaussian``, as in EncDec-AD, which fits on one validation part and thresholds on another) is
fitted on one half of them and calibrated on the other half, with the very statistics that score
new windows, so calibration and new normal windows are exchangeable and the bound holds exactly.
(Cross-fitting, scoring each fold with statistics fitted on the others, looks out of sample but is
not: the deployed statistics are fitted on more windows, and the scale of a shrunk Mahalanobis
distance changes with the number of windows, so new normals scored higher than the folds did.)
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from utils.core.registry import register_score
from utils.scoring.scores import (
    GaussianFit,
    euclidean_distance,
    feature_contributions,
    fit_gaussian,
    mahalanobis_distance,
    reconstruction_error,
)

Statistics = dict[str, Any]


class Score:
    """Base class: per-window features, statistics fitted on normals, the score.

    Attributes:
        needs_latent: the score reads ``z`` (the model must implement ``encode``).
        fit_split: ``"train"`` (the training normals) or ``"val"`` (the fitting half of the validation
            normals): what :meth:`fit` is given; None: nothing to fit.
        error_kind: ``"mse"``/``"mae"`` for a reconstruction-error score (sets the kind of the
            per-sensor contributions and of the exported score), else None.
    """

    name: ClassVar[str] = ""
    needs_latent: ClassVar[bool] = False
    fit_split: ClassVar[str | None] = None
    error_kind: ClassVar[str | None] = None

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


def _gaussian_statistics(fit: GaussianFit) -> Statistics:
    return {"mean": torch.from_numpy(fit.mean), "precision": torch.from_numpy(fit.precision),
            "shrinkage": float(fit.shrinkage)}


def _gaussian(stats: Statistics) -> GaussianFit:
    return GaussianFit(mean=np.asarray(stats["mean"], dtype=np.float64),
                       precision=np.asarray(stats["precision"], dtype=np.float64), shrinkage=float(stats["shrinkage"]))


@register_score("error_gaussian")
class ErrorGaussian(Score):
    """EncDec-AD's score (Malhotra et al. 2016): the Mahalanobis distance of a window's absolute
    error vector ``|x - x_hat|`` (flattened to T*F) under a Gaussian (Ledoit-Wolf shrunk) fitted on
    the validation normals' error vectors (:func:`utils.scoring.scores.fit_error_gaussian`)."""

    name, fit_split = "error_gaussian", "val"

    def features(self, x: Tensor, x_hat: Tensor, z: Tensor | None) -> np.ndarray:
        return _numpy((x - x_hat).abs()).reshape(len(x), -1)

    def fit(self, features: np.ndarray) -> Statistics:
        return _gaussian_statistics(fit_gaussian(features))

    def score(self, features: np.ndarray, stats: Statistics) -> np.ndarray:
        return mahalanobis_distance(features, _gaussian(stats))


@register_score("error_gaussian_train")
class ErrorGaussianTrain(ErrorGaussian):
    """The error Gaussian fitted on the training normals' error vectors instead, so every validation normal
    calibrates the threshold (twice the calibration scores of ``error_gaussian``: at a false-alarm rate of 0.05
    the threshold is not the largest of few scores). Training errors are in-sample, so the Gaussian is tighter
    than for new normals; that shifts every new window's score alike and the calibration absorbs it."""

    name, fit_split = "error_gaussian_train", "train"


class _LatentScore(Score):
    needs_latent, fit_split = True, "train"

    def features(self, x: Tensor, x_hat: Tensor, z: Tensor | None) -> np.ndarray:
        return _numpy(z)


@register_score("latent_euclidean")
class LatentEuclidean(_LatentScore):
    """Euclidean distance of the latent code from the training normals' mean code."""

    name = "latent_euclidean"

    def fit(self, features: np.ndarray) -> Statistics:
        return {"mean": torch.from_numpy(features.mean(axis=0))}

    def score(self, features: np.ndarray, stats: Statistics) -> np.ndarray:
        return euclidean_distance(features, np.asarray(stats["mean"], dtype=np.float64))


@register_score("latent_mahalanobis")
class LatentMahalanobis(_LatentScore):
    """Mahalanobis distance of the latent code under a Gaussian fitted on the training normals'
    codes with Ledoit-Wolf shrinkage (a singular covariance never fails)."""

    name = "latent_mahalanobis"

    def fit(self, features: np.ndarray) -> Statistics:
        return _gaussian_statistics(fit_gaussian(features))

    def score(self, features: np.ndarray, stats: Statistics) -> np.ndarray:
        return mahalanobis_distance(features, _gaussian(stats))


def contributions(x: Tensor, x_hat: Tensor, kind: str) -> np.ndarray:
    """Per-sensor reconstruction error (B, F) float64, averaged over time; their mean is the error score."""
    return _numpy(feature_contributions(x, x_hat, kind))
