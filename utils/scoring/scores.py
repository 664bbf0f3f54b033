"""Anomaly scores: one value per sample, higher = more anomalous.

Pure functions, no config and no I/O. Statistics (means, covariances) are
fitted on normal data only (validation normals), never on the test set.

Reconstruction scores work on torch tensors; the Gaussian scores work on NumPy
arrays and compute in float64.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

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


def absolute_error_vectors(x: Tensor, x_hat: Tensor) -> np.ndarray:
    """Per-time-step error vectors e(t) = |x(t) - x_hat(t)| (Malhotra et al. 2016).

    Args:
        x: Inputs, shape (N, T, F).
        x_hat: Reconstructions, shape (N, T, F).

    Returns:
        float64 array of shape (N, T, F), detached from the graph, on the CPU.
    """
    err = _elementwise_error(x.detach(), x_hat.detach(), "mae")
    return err.cpu().to(torch.float64).numpy()


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

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (lists and floats) to store in a checkpoint."""
        return {"mean": self.mean.tolist(), "precision": self.precision.tolist(),
                "shrinkage": float(self.shrinkage)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "GaussianFit":
        """Inverse of :meth:`to_dict`."""
        return cls(mean=np.asarray(state["mean"], dtype=np.float64),
                   precision=np.asarray(state["precision"], dtype=np.float64),
                   shrinkage=float(state["shrinkage"]))


def _as_2d_float64(z: Any, name: str) -> np.ndarray:
    """Array of shape (N, D), float64, finite, N >= 1."""
    arr = np.asarray(z, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D), got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (no samples)")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or inf")
    return arr


def fit_gaussian(z: np.ndarray) -> GaussianFit:
    """Fit mean and Ledoit-Wolf shrunk covariance on normal samples.

    Ledoit-Wolf shrinks the sample covariance towards a scaled identity, so a
    singular sample covariance (N < D, or a constant column) still gives a
    well-defined Gaussian. The precision is the symmetric pseudo-inverse
    (``scipy.linalg.pinvh``, as sklearn's ``precision_`` does), so even an
    all-constant input (zero covariance) gives finite (zero) distances.

    Args:
        z: Normal samples, shape (N, D), N >= 2.

    Returns:
        The fitted :class:`GaussianFit`.

    Raises:
        ValueError: Wrong shape, fewer than 2 samples, or NaN/inf values.
    """
    arr = _as_2d_float64(z, "z")
    if arr.shape[0] < 2:
        raise ValueError(f"fit_gaussian needs at least 2 samples, got {arr.shape[0]}")
    import scipy.linalg  # here, not at import: scipy and scikit-learn add ~1 s to every start-up
    from sklearn.covariance import LedoitWolf

    lw = LedoitWolf(store_precision=False, assume_centered=False).fit(arr)
    precision = scipy.linalg.pinvh(lw.covariance_)
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
    arr = _as_2d_float64(z, "z")
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
    arr = _as_2d_float64(z, "z")
    d = fit.mean.shape[0]
    if arr.shape[1] != d:
        raise ValueError(f"z has {arr.shape[1]} features but the Gaussian was fitted on {d}")
    diff = arr - fit.mean
    quad = np.einsum("nd,de,ne->n", diff, fit.precision, diff, optimize=True)
    return np.sqrt(np.clip(quad, 0.0, None))


def _flatten_errors(errors: np.ndarray) -> np.ndarray:
    """(N, T, F) or (N, T) error sequences -> (N, T*F) float64."""
    arr = np.asarray(errors, dtype=np.float64)
    if arr.ndim < 2:
        raise ValueError(f"errors must have shape (N, T, F) or (N, T), got {arr.shape}")
    return arr.reshape(arr.shape[0], -1)


def fit_error_gaussian(errors: np.ndarray) -> GaussianFit:
    """Fit the error Gaussian of Malhotra et al. (2016), one vector per window.

    The paper (EncDec-AD) fits N(mu, Sigma) by maximum likelihood on the error
    vectors e(i) = |x(i) - x_hat(i)| of validation normals and scores a point
    by a(i) = (e(i) - mu)^T Sigma^-1 (e(i) - mu). For univariate ECG a
    per-time-step e(i) is a single number, so here the error vectors of all T
    time steps of a window are concatenated into one vector of length T*F: the
    Gaussian then captures which time steps of a beat normally have larger
    errors and how they co-vary. Two deliberate deviations: the covariance is
    Ledoit-Wolf shrunk (few windows versus T*F dimensions make the MLE
    singular), and :func:`error_gaussian_score` returns sqrt(a), which ranks
    identically (same ROC/PR AUC) but is on the scale of a distance.

    Args:
        errors: Error sequences of validation normals, shape (N, T, F) (or
            (N, T)), e.g. from :func:`absolute_error_vectors`.

    Returns:
        :class:`GaussianFit` of dimension T*F.
    """
    return fit_gaussian(_flatten_errors(errors))


def error_gaussian_score(errors: np.ndarray, fit: GaussianFit) -> np.ndarray:
    """Mahalanobis distance of each window's flattened error vector.

    Args:
        errors: Error sequences, shape (N, T, F) (or (N, T)).
        fit: Result of :func:`fit_error_gaussian` on validation normals.

    Returns:
        float64 array of shape (N,).
    """
    return mahalanobis_distance(_flatten_errors(errors), fit)


error_vectors_mahalanobis = error_gaussian_score
"""Alias of :func:`error_gaussian_score` (name used in the design brief)."""
