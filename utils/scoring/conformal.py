"""Split-conformal alarm thresholds and p-values: a threshold that states its promise.

Given ``n`` calibration scores of normal windows that the score was not fitted on, and a
wanted false-alarm rate ``alpha``, the threshold is the ``k``-th smallest calibration score
with ``k = ceil((n + 1) * (1 - alpha))`` (Vovk et al. 2005; Lei et al. 2018, split conformal).
A new normal window that is exchangeable with the calibration windows is then an alarm
(``score > threshold``) with probability at most

    bound = (n + 1 - k) / (n + 1) <= alpha,

over the draw of calibration and new window together (ties only lower it). When ``n`` is too
small for ``alpha`` (``k > n``, i.e. ``alpha < 1 / (n + 1)``) no calibration score gives the
promise; the threshold is then the largest calibration score (``k = n``) and the bound that
holds is ``1 / (n + 1)``, which :class:`ConformalThreshold` reports with ``achievable=False``.

The conformal p-value of a score ``s`` is ``(1 + #{calibration >= s}) / (n + 1)``; it is
uniform-or-larger on new normals, so p-values of different scores are comparable, and
``score > threshold`` exactly when ``p <= bound`` (the alarm rule reads either way).

Written by hand: the rule is a few lines of NumPy, and the libraries that have it (MAPIE,
crepes) target regression/classification wrappers, not a bare score vector.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from utils.scoring.thresholds import _as_scores


def _check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.number)) or not 0.0 <= float(alpha) < 1.0:
        raise ValueError(f"false_alarm_rate: expected a number in [0, 1), got {alpha!r}")
    return float(alpha)


def conformal_rank(n: int, alpha: float) -> int:
    """``k = ceil((n + 1)(1 - alpha))``, the rank of the threshold among ``n`` sorted scores (may exceed n).

    Computed in exact rational steps where ``alpha`` has few decimals, so that ``n=99, alpha=0.05``
    gives 95, not 96 from ``100 * 0.95 = 95.00000000000001``.
    """
    if n < 1:
        raise ValueError(f"need at least one calibration score, got n={n}")
    product = (n + 1) * (1.0 - _check_alpha(alpha))
    return int(math.ceil(round(product, 9)))


@dataclass(frozen=True)
class ConformalThreshold:
    """A split-conformal threshold and the promise it keeps.

    Attributes:
        threshold: alarm where ``score > threshold``.
        alpha: the false-alarm rate asked for.
        n: calibration scores it was taken from.
        k: rank of the threshold among them (1 = smallest), capped at ``n``.
        bound: the false-alarm probability it guarantees on exchangeable normals, ``(n + 1 - k) / (n + 1)``.
        achievable: False when ``n`` was too small for ``alpha`` (then ``bound = 1 / (n + 1) > alpha``).
    """

    threshold: float
    alpha: float
    n: int
    k: int
    bound: float
    achievable: bool

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields."""
        return asdict(self)

    @property
    def note(self) -> str:
        """One sentence for logs and reports."""
        if self.achievable:
            return (f"false-alarm rate <= {self.bound:.4g} (asked {self.alpha:g}) from the {self.k}-th smallest of "
                    f"{self.n} calibration scores")
        return (f"{self.n} calibration scores are too few for a false-alarm rate of {self.alpha:g} (it needs at "
                f"least {min_calibration_size(self.alpha)}); the threshold is their maximum, which bounds the "
                f"false-alarm rate by 1/(n+1) = {self.bound:.4g}")


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
    """The split-conformal threshold for false-alarm rate ``alpha``.

    Args:
        calibration_scores: scores (n,) of normal windows the score was not fitted on; finite.
        alpha: wanted false-alarm rate in [0, 1).

    Returns:
        The threshold with its rank, bound and whether ``alpha`` was achievable.

    Raises:
        ValueError: empty or non-finite scores, ``alpha`` outside [0, 1).
    """
    s = np.sort(_as_scores(calibration_scores, "calibration_scores"))
    n = len(s)
    k_wanted = conformal_rank(n, alpha)
    k = min(k_wanted, n)
    return ConformalThreshold(threshold=float(s[k - 1]), alpha=float(alpha), n=n, k=k,
                              bound=(n + 1 - k) / (n + 1), achievable=k_wanted <= n)


def conformal_p_values(calibration_scores: Any, scores: Any) -> np.ndarray:
    """Conformal p-values ``(1 + #{calibration >= s}) / (n + 1)`` of new scores.

    Args:
        calibration_scores: scores (n,) of normal windows the score was not fitted on.
        scores: new scores (M,).

    Returns:
        (M,) float64 in ``[1/(n+1), 1]``; small = anomalous.
    """
    cal = np.sort(_as_scores(calibration_scores, "calibration_scores"))
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if np.isnan(s).any():
        raise ValueError("scores hold NaN")
    at_least = len(cal) - np.searchsorted(cal, s, side="left")
    return (1.0 + at_least) / (len(cal) + 1.0)


def false_alarm_interval(n_alarms: int, n_normals: int, confidence: float = 0.95) -> dict[str, Any]:
    """Measured false-alarm rate with its exact (Clopper-Pearson) binomial confidence interval.

    Args:
        n_alarms: normal windows flagged.
        n_normals: normal windows scored.
        confidence: level of the interval.

    Returns:
        ``{"rate", "low", "high", "n_alarms", "n_normals", "confidence"}``; rate and interval None when
        ``n_normals`` is 0.
    """
    from scipy.stats import binomtest

    if n_normals == 0:
        return {"rate": None, "low": None, "high": None, "n_alarms": 0, "n_normals": 0, "confidence": confidence}
    if not 0 <= n_alarms <= n_normals:
        raise ValueError(f"n_alarms must be in [0, n_normals={n_normals}], got {n_alarms}")
    ci = binomtest(int(n_alarms), int(n_normals)).proportion_ci(confidence_level=confidence, method="exact")
    return {"rate": n_alarms / n_normals, "low": float(ci.low), "high": float(ci.high),
            "n_alarms": int(n_alarms), "n_normals": int(n_normals), "confidence": confidence}


def promise_verdict(bound: float, measured: dict[str, Any], unit: str = "windows") -> dict[str, Any]:
    """Whether a measured false-alarm rate kept the stated bound, and the finding in words.

    The promise is broken only when the whole confidence interval lies above the bound (its lower end
    is above it): a rate whose interval covers the bound is what an exchangeable test part may show.

    Args:
        bound: the false-alarm probability the threshold states.
        measured: a :func:`false_alarm_interval` dict of the test normals.
        unit: what was counted, e.g. ``"windows"`` or ``"time steps"``.

    Returns:
        ``{"promise_kept": True, False or None (no normals), "verdict": one sentence}``.
    """
    if measured["rate"] is None:
        return {"promise_kept": None, "verdict": f"not judged: no normal test {unit}"}
    kept = not measured["low"] > bound
    counts = (f"alarmed on {measured['n_alarms']} of {measured['n_normals']} normal test {unit} "
              f"({100 * measured['confidence']:g}% CI {measured['low']:.4f}-{measured['high']:.4f})")
    if kept:
        return {"promise_kept": True, "verdict": f"kept: {counts}, consistent with the stated bound {bound:.4g}"}
    return {"promise_kept": False, "verdict": f"broken: {counts} against the stated bound {bound:.4g}"}


def false_alarm_report(promise: ConformalThreshold, y_true: Any, scores: Any) -> dict[str, Any]:
    """What a threshold promised and what it did on labelled data.

    Args:
        promise: the threshold and its bound.
        y_true: labels (N,), 0 = normal.
        scores: scores (N,) of the same windows.

    Returns:
        The promise's fields plus ``measured``: the false-alarm rate on the normals of ``y_true``
        with its 95 % Clopper-Pearson interval (:func:`false_alarm_interval`), and ``promise_kept`` and
        ``verdict`` (:func:`promise_verdict`).
    """
    y, s = np.asarray(y_true).reshape(-1), _as_scores(scores)
    if y.shape != s.shape:
        raise ValueError(f"y_true has shape {y.shape} but scores has shape {s.shape}")
    normal = s[y == 0]
    measured = false_alarm_interval(int((normal > promise.threshold).sum()), len(normal))
    return {**promise.as_dict(), "measured": measured, **promise_verdict(promise.bound, measured)}


class AdaptiveThreshold:
    """Adaptive conformal inference (Gibbs & Candès 2021) on one stream: the alarm level follows the alarms.

    The split-conformal threshold promises its rate only while the stream stays exchangeable with the
    calibration scores; a drifting recording breaks that (SKAB's anomaly-free.csv alarms on 98 % of its
    later time steps). Here the level starts at ``alpha`` and after each scored time step moves by
    ``gamma * (alpha - alarmed)``; the threshold at level ``a`` is the calibration order statistic of rank
    ``ceil((n + 1)(1 - a))`` (+inf above ``n``: no alarm, -inf below 1: alarm). Whatever the scores do, over
    ``T`` scored steps

        |alarm rate - alpha| <= (max(alpha, 1 - alpha) + gamma) / (gamma T)     (their Proposition 4.1),

    so drift cannot hold the rate up. The price: a fault that lasts stops alarming once its alarms have
    spent the level, after about ``alpha / gamma`` alarmed steps more than ``alpha`` allows; on SKAB this
    misses most of every labelled range. A NaN score (a time step no window covered) neither alarms nor
    moves the level.

    Written by hand: a few lines, and the conformal libraries (MAPIE, crepes) have no unsupervised stream form.

    Args:
        calibration_scores: (n,) the split-conformal calibration scores.
        alpha: the long-run false-alarm rate to keep, in [0, 1).
        gamma: the step of the level, > 0 (larger: faster tracking, shorter alarms on a lasting fault).
    """

    def __init__(self, calibration_scores: Any, alpha: float, gamma: float) -> None:
        self.sorted = np.sort(_as_scores(calibration_scores, "calibration_scores"))
        self.alpha, self.gamma = _check_alpha(alpha), float(gamma)
        if not self.gamma > 0:
            raise ValueError(f"gamma must be above 0, got {gamma!r}")
        self.level = self.alpha

    def threshold(self) -> float:
        """The threshold at the current level."""
        n = len(self.sorted)
        k = math.ceil(round((n + 1) * (1.0 - self.level), 9))
        return math.inf if k > n else -math.inf if k < 1 else float(self.sorted[k - 1])

    def thresholds(self, scores: Any) -> np.ndarray:
        """The threshold of each of the next time steps (m,), advancing the level past them.

        Args:
            scores: (m,) the per-time-step scores, in stream order (NaN: not scored).

        Returns:
            (m,) float64: time step ``i`` alarms where ``scores[i] > thresholds[i]``.
        """
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        limits = np.empty(len(s))
        for i, value in enumerate(s):
            limits[i] = self.threshold()
            if not math.isnan(value):
                self.level += self.gamma * (self.alpha - float(value > limits[i]))
        return limits
