"""Split-conformal alarm thresholds that state their promise, p-values, an :class:`AdaptiveThreshold` per stream
and the reporting-only oracle :func:`best_f1_threshold` (docs/thresholds.md)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from utils.core.arrays import as_scores
from utils.metrics.promise import false_alarm_interval, promise_verdict


def _check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.number)) or not 0.0 <= float(alpha) < 1.0:
        raise ValueError(f"false_alarm_rate: expected a number in [0, 1), got {alpha!r}")
    return float(alpha)


def conformal_rank(n: int, alpha: float) -> int:
    """``k = ceil((n + 1)(1 - alpha))``, the threshold's rank among ``n`` sorted scores (may exceed n), rounded to 9
    decimals first (``n=99, alpha=0.05`` gives 95, not 96 from ``95.00000000000001``)."""
    if n < 1:
        raise ValueError(f"need at least one calibration score, got n={n}")
    return int(math.ceil(round((n + 1) * (1.0 - _check_alpha(alpha)), 9)))


@dataclass(frozen=True)
class ConformalThreshold:
    """A split-conformal threshold (alarm where ``score > threshold``), its rank ``k`` (1 = smallest, at most ``n``)
    among ``n`` calibration scores, ``bound = (n + 1 - k) / (n + 1)``, the false-alarm probability it guarantees on
    exchangeable normals; ``achievable``: False when ``n`` was too small for ``alpha`` (then ``k = n``)."""

    threshold: float
    alpha: float
    n: int
    k: int
    bound: float
    achievable: bool

    @property
    def note(self) -> str:
        """One sentence for logs and reports."""
        if self.achievable:
            return (f"false-alarm rate <= {self.bound:.4g} (asked {self.alpha:g}) from the {self.k}-th smallest of "
                    f"{self.n} calibration scores")
        needed = min_calibration_size(self.alpha)
        enough = "no number of them reaches it" if needed is None else f"it needs at least {needed}"
        return (f"{self.n} calibration scores are too few for a false-alarm rate of {self.alpha:g} ({enough}); the "
                f"threshold is their maximum, which bounds the false-alarm rate by 1/(n+1) = {self.bound:.4g}")


def min_calibration_size(alpha: float) -> int | None:
    """Fewest calibration scores for which ``alpha`` is achievable (``k <= n``); None for ``alpha = 0``."""
    alpha = _check_alpha(alpha)
    if alpha == 0.0:
        return None
    n = max(1, math.ceil(1.0 / alpha) - 1)
    while conformal_rank(n, alpha) > n:
        n += 1
    return n


def conformal_threshold(calibration_scores: Any, alpha: float) -> ConformalThreshold:
    """The split-conformal threshold for false-alarm rate ``alpha`` from ``calibration_scores`` (n,) of normals."""
    s = np.sort(as_scores(calibration_scores, "calibration_scores"))
    n = len(s)
    k = min(k_wanted := conformal_rank(n, alpha), n)
    return ConformalThreshold(threshold=float(s[k - 1]), alpha=float(alpha), n=n, k=k,
                              bound=(n + 1 - k) / (n + 1), achievable=k_wanted <= n)


def conformal_p_values(calibration_scores: Any, scores: Any) -> np.ndarray:
    """Conformal p-values (M,) ``(1 + #{calibration >= s}) / (n + 1)`` of ``scores`` (M,); small = anomalous."""
    cal = np.sort(as_scores(calibration_scores, "calibration_scores"))
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if np.isnan(s).any():
        raise ValueError("scores hold NaN")
    return (1.0 + (len(cal) - np.searchsorted(cal, s, side="left"))) / (len(cal) + 1.0)


def false_alarm_report(promise: ConformalThreshold, y_true: Any, scores: Any) -> dict[str, Any]:
    """What a threshold promised and did on labels ``y_true`` (N,) (0 = normal) and ``scores`` (N,): the promise's
    fields, ``measured`` (:func:`false_alarm_interval`), ``promise_kept`` and ``verdict`` (:func:`promise_verdict`)."""
    y, s = np.asarray(y_true).reshape(-1), as_scores(scores)
    if y.shape != s.shape:
        raise ValueError(f"y_true has shape {y.shape} but scores has shape {s.shape}")
    measured = false_alarm_interval(int((s[y == 0] > promise.threshold).sum()), int((y == 0).sum()))
    return {**asdict(promise), "measured": measured, **promise_verdict(promise.bound, measured)}


class AdaptiveThreshold:
    """Adaptive conformal inference (Gibbs & Candès 2021) on one stream: the level starts at ``alpha`` (at least
    ``1 / (n + 1)``: the calibrated threshold) and after each scored time step moves by ``gamma * (alpha -
    alarmed)``; the threshold is the calibration score of rank ``ceil((n + 1)(1 - level))`` (+inf above ``n``, -inf
    below 1). A NaN score neither alarms nor moves the level (docs/thresholds.md)."""

    def __init__(self, calibration_scores: Any, alpha: float, gamma: float) -> None:
        self.sorted = np.sort(as_scores(calibration_scores, "calibration_scores"))
        self.alpha, self.gamma = _check_alpha(alpha), float(gamma)
        if not self.gamma > 0:
            raise ValueError(f"gamma must be above 0, got {gamma!r}")
        # +inf at alpha < 1/(n+1) would silence the stream; this start keeps Gibbs & Candes' bound
        self.level = max(self.alpha, 1.0 / (len(self.sorted) + 1))

    def threshold(self) -> float:
        """The threshold at the current level."""
        n = len(self.sorted)
        k = math.ceil(round((n + 1) * (1.0 - self.level), 9))
        return math.inf if k > n else -math.inf if k < 1 else float(self.sorted[k - 1])

    def thresholds(self, scores: Any) -> np.ndarray:
        """The thresholds (m,) of the next time steps' ``scores`` (m,) (NaN: not scored), advancing the level."""
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        limits = np.empty(len(s))
        for i, value in enumerate(s):
            limits[i] = self.threshold()
            if not math.isnan(value):
                self.level += self.gamma * (self.alpha - float(value > limits[i]))
        return limits


def best_f1_threshold(y_true: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """Oracle ``(threshold, f1)`` maximising the anomaly class's F1 on labels ``y_true`` (N,) (1 = anomaly) and
    ``scores`` (N,) (reporting only); the best cut ``s`` of ``score >= s`` returned as ``nextafter(s, -inf)``."""
    s = as_scores(scores)
    y = np.asarray(y_true)
    if y.shape != s.shape:
        raise ValueError(f"y_true has shape {y.shape} but scores has shape {s.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold only 0 (normal) and 1 (anomaly)")
    y = y.astype(np.int64)
    if y.sum() == 0:
        raise ValueError("best_f1_threshold needs at least one anomaly in y_true")
    from sklearn.metrics import precision_recall_curve  # lazily: the detector and the baselines import this module

    precision, recall, cuts = precision_recall_curve(y, s)
    p, r = precision[:-1], recall[:-1]  # last point (recall 0) has no cut
    f1 = np.divide(2.0 * p * r, p + r, out=np.zeros_like(p), where=p + r > 0)
    best = int(np.argmax(f1))
    return float(np.nextafter(np.float64(cuts[best]), -np.inf)), float(f1[best])


def adaptive_thresholds(calibration: dict[str, Any], alpha: float, gamma: float) -> dict[str, AdaptiveThreshold]:
    """A fresh :class:`AdaptiveThreshold` per score (one set per stream); none when ``gamma`` is 0."""
    return {name: AdaptiveThreshold(cal, alpha, gamma) for name, cal in calibration.items()} if gamma else {}
