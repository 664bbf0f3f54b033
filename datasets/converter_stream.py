"""The ``converter_stream`` loader: one long simulated converter recording (:mod:`datasets.stream_simulator`),
its parameters checked and its memory estimated first, cut into contiguous train / validation / test stretches.
"""
from __future__ import annotations

import logging

import numpy as np

from datasets.base import DataSplits
from datasets.converter import (ANOMALY_TYPES, DEFAULT_MAGNITUDE, MIN_SEGMENT, NOISE_STD, SAMPLE_PERIOD_S, SENSORS,
                                AnomalyType, fail_key, is_finite_number)
from datasets.stream_simulator import simulate_stream
from datasets.stream_split import kind_ranges, split_stream, stretch_bounds, warn_about_labels
from utils.core.registry import register_dataset
from utils.core.types import Fraction, PositiveFloat, PositiveInt
from utils.runtime.memory import check_fits

logger = logging.getLogger("anomaly")

MAX_DENSITY = 0.5  # at most this share of anomalous rows: the splits need normal windows


# ----- the loader -----------------------------------------------------------------------
def stream_bytes(n_rows: int, time_steps: int, stride: int, eval_stride: int) -> int:
    """Peak memory of :func:`load_converter_stream`: about a dozen (n,) float64 work arrays and the rows in
    float64 and float32, the kinds, then the windows (float32 splits, the agent's scaled copies and the float64
    rows the scaler is fitted on) at ``stride`` (train) and ``eval_stride`` (the rest, at most every row)."""
    windows = n_rows / stride + n_rows / eval_stride
    return int(n_rows * (12 * 8 + len(SENSORS) * (8 + 4) + 2 * 20) + windows * time_steps * len(SENSORS) * (4 * 3 + 8))


def validate_stream_params(duration_s: float, sample_rate_hz: float, anomaly_density: float, anomaly_min_s: float,
                           anomaly_max_s: float, anomaly_magnitude: float, anomaly_types: list[str],
                           time_steps: int, stride: int, eval_stride: int, val_fraction: float,
                           test_fraction: float) -> None:
    """Raise ConfigError naming ``data.<param>`` and what is valid for the first bad value."""
    names_ok = isinstance(anomaly_types, (list, tuple)) and bool(anomaly_types) and all(
        k in ANOMALY_TYPES for k in anomaly_types) and len(set(map(str, anomaly_types))) == len(anomaly_types)
    if not names_ok:
        fail_key("anomaly_types", anomaly_types, f"expected a non-empty list of distinct names from: "
                                                 f"{', '.join(ANOMALY_TYPES)}")
    for name, value in (("duration_s", duration_s), ("sample_rate_hz", sample_rate_hz),
                        ("anomaly_min_s", anomaly_min_s), ("anomaly_max_s", anomaly_max_s),
                        ("anomaly_magnitude", anomaly_magnitude)):
        if not (is_finite_number(value) and value > 0.0):
            fail_key(name, value, "expected a positive finite number")
    for name, value in (("time_steps", time_steps), ("stride", stride), ("eval_stride", eval_stride)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            fail_key(name, value, "expected a positive integer")
    if eval_stride > time_steps:
        fail_key("eval_stride", eval_stride, f"expected at most data.time_steps={time_steps}, so the test windows "
                                             "cover every test row")
    if not (is_finite_number(anomaly_density) and 0.0 < anomaly_density <= MAX_DENSITY):
        fail_key("anomaly_density", anomaly_density, f"expected a share of anomalous rows in (0, {MAX_DENSITY}]")
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not (is_finite_number(value) and 0.0 < value < 1.0):
            fail_key(name, value, "expected a number strictly between 0 and 1")
    if val_fraction + test_fraction >= 1.0:
        fail_key("val_fraction", val_fraction, "val_fraction + test_fraction must be below 1")
    _check_duration(duration_s, sample_rate_hz, time_steps, eval_stride, val_fraction, test_fraction)
    if anomaly_min_s * sample_rate_hz < MIN_SEGMENT - 0.5:
        fail_key("anomaly_min_s", anomaly_min_s, f"expected at least {MIN_SEGMENT} rows at data.sample_rate_hz="
                                                 f"{sample_rate_hz}: anomaly_min_s >= {MIN_SEGMENT / sample_rate_hz:g}")
    if anomaly_max_s < anomaly_min_s:
        fail_key("anomaly_max_s", anomaly_max_s, f"expected at least data.anomaly_min_s={anomaly_min_s}")
    if anomaly_max_s > test_fraction * duration_s:
        fail_key("anomaly_max_s", anomaly_max_s, f"expected at most data.test_fraction * data.duration_s = "
                                                 f"{test_fraction * duration_s:g} s, so an anomaly fits in the test "
                                                 "stretch")


def _check_duration(duration_s: float, sample_rate_hz: float, time_steps: int, eval_stride: int,
                    val_fraction: float, test_fraction: float) -> None:
    """The recording must give the test stretch one window and the validation stretch 4 (before anomalies)."""
    n_rows = int(round(duration_s * sample_rate_hz))
    (_, a), (_, b), (_, n) = stretch_bounds(n_rows, val_fraction, test_fraction)
    need = {"test": (n - b, time_steps), "validation": (b - a, time_steps + 3 * eval_stride),
            "train": (a, time_steps)}
    for stretch, (rows, rows_needed) in need.items():
        if rows < rows_needed:
            fraction = {"test": test_fraction, "validation": val_fraction}.get(stretch)
            share = fraction if fraction is not None else 1.0 - val_fraction - test_fraction
            fail_key("duration_s", duration_s, f"gives {n_rows} rows at data.sample_rate_hz={sample_rate_hz}, so the "
                                               f"{stretch} stretch holds {rows}, fewer than the {rows_needed} it needs "
                                               f"(data.time_steps={time_steps}); need duration_s >= "
                                               f"{rows_needed / share / sample_rate_hz:.3g}")


@register_dataset("converter_stream")
def load_converter_stream(
    seed: int,
    duration_s: PositiveFloat = 1200.0,
    sample_rate_hz: PositiveFloat = 1.0 / SAMPLE_PERIOD_S,
    anomaly_density: Fraction = 0.05,
    anomaly_min_s: PositiveFloat = 0.2,
    anomaly_max_s: PositiveFloat = 2.0,
    anomaly_magnitude: PositiveFloat = DEFAULT_MAGNITUDE,
    anomaly_types: list[AnomalyType] = list(ANOMALY_TYPES),  # noqa: B006 (read-only default)
    time_steps: PositiveInt = 100,
    stride: PositiveInt | None = None,
    eval_stride: PositiveInt | None = None,
    val_fraction: Fraction = 0.15,
    test_fraction: Fraction = 0.15,
) -> DataSplits:
    """Simulate one converter recording and cut it into contiguous train / validation / test stretches.

    Args:
        seed: seeds the simulation (the split is by row order).
        duration_s: seconds recorded.
        sample_rate_hz: rows per second.
        anomaly_density: share of the rows inside labelled anomaly ranges, at most 0.5.
        anomaly_min_s, anomaly_max_s: length range of a current oscillation or temperature drift
            (a voltage spike lasts :data:`~datasets.stream_simulator.SPIKE_S`).
        anomaly_magnitude: anomaly size in noise stds of the affected sensor.
        anomaly_types: names from :data:`~datasets.converter.ANOMALY_TYPES` (default: all).
        time_steps: rows per window T.
        stride: rows between training window starts; default ``time_steps // 2``.
        eval_stride: rows between validation and test window starts, at most ``time_steps``;
            default ``time_steps // 4``.
        val_fraction, test_fraction: shares of the rows in the validation and test stretches.

    Returns:
        DataSplits with (N, time_steps, 3) windows (see :func:`datasets.stream_split.split_stream`),
        ``streams`` ``"val"`` and ``"test"``, and ``info`` holding the parameters, ``sample_period_s``,
        the split's stretches and the labelled ranges of the test stretch (recording rows).
    """
    types = list(anomaly_types) if isinstance(anomaly_types, (list, tuple)) else anomaly_types
    stride = stride or max(1, time_steps // 2)
    eval_stride = eval_stride or max(1, time_steps // 4)
    params = dict(duration_s=duration_s, sample_rate_hz=sample_rate_hz, anomaly_density=anomaly_density,
                  anomaly_min_s=anomaly_min_s, anomaly_max_s=anomaly_max_s, anomaly_magnitude=anomaly_magnitude,
                  anomaly_types=types)
    validate_stream_params(**params, time_steps=time_steps, stride=stride, eval_stride=eval_stride,
                           val_fraction=val_fraction, test_fraction=test_fraction)
    n_rows = int(round(duration_s * sample_rate_hz))
    check_fits(stream_bytes(n_rows, time_steps, stride, eval_stride), "the simulated recording and its windows",
               f"data.duration_s={duration_s}, data.sample_rate_hz={sample_rate_hz}, data.time_steps={time_steps}, "
               f"data.stride={stride}, data.eval_stride={eval_stride}")
    values, labels, kinds, _ = simulate_stream(**params, seed=seed)
    period = 1.0 / sample_rate_hz
    times = np.arange(n_rows, dtype=np.float64) * period
    train, val, test, streams, split_info = split_stream(
        values, labels, kinds, time_steps, stride, eval_stride, val_fraction, test_fraction, times=times,
        sample_period_s=period, length_key="time_steps", size_hint="a longer data.duration_s")
    warn_about_labels([{"name": "the simulated recording", **split_info}])
    test_part = streams["test"]
    test_ranges = kind_ranges(test_part.labels, test_part.kinds, offset=test_part.first_row)
    missing = sorted(set(types) - {r["kind"] for r in test_ranges})
    if missing:
        logger.warning("data: the test stretch holds no %s range; raise data.anomaly_density or data.duration_s",
                       ", ".join(missing))
    info = {"dataset": "converter_stream", **params, "seed": int(seed), "time_steps": time_steps,
            "val_fraction": val_fraction, "test_fraction": test_fraction, "noise_std": dict(NOISE_STD),
            "sample_period_s": period, **split_info, "anomalous_share": float(labels.mean()),
            "test_ranges": test_ranges}
    return DataSplits(train=train, val=val, test=test, feature_names=list(SENSORS), info=info, streams=streams)
