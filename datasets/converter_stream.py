"""The ``converter_stream`` loader: one long simulated converter recording with labelled anomaly ranges, cut into
contiguous train / validation / test stretches (:func:`datasets.stream_split.split_stream`; docs/streams.md).
"""
from __future__ import annotations

import logging
from itertools import accumulate

import numpy as np

from datasets.splits import NORMAL, DataSplits, checked_args
from datasets.converter import (AFFECTED_SENSOR, AMBIENT_RANGE, ANOMALY_TYPES, DEFAULT_MAGNITUDE, HEATING_RATE,
                                LOAD_RANGE, LOAD_SLEW, MIN_SEGMENT, MIN_SPIKE, NOISE_STD, OSC_CYCLES_PER_SAMPLE,
                                RIPPLE_CYCLES_PER_SAMPLE, RIPPLE_JITTER, SAMPLE_PERIOD_S, SENSORS, V_OFFSET,
                                AnomalyType, check_shared_params, fail_key, sensor_readings)
from datasets.stream_split import kind_ranges, split_stream, stretch_bounds, warn_about_labels
from utils.core.registry import register_dataset
from utils.core.types import Fraction, PositiveFloat, PositiveInt
from utils.runtime.memory import check_fits

logger = logging.getLogger("anomaly")

MAX_DENSITY = 0.5  # at most this share of anomalous rows: the splits need normal windows
HOLD_RANGE_S = (5.0, 30.0)  # s a load level is held, uniform
RAMP_SLEW_RANGE = (0.2, 1.0)  # share of LOAD_SLEW a load ramp runs at, uniform
RIPPLE_WANDER_S = 2.0  # s between the knots of the ripple-frequency wander (short: every stretch sees its whole range)
# s, heat-sink time constant: short enough to settle within a load hold, so no stretch reaches temperatures the
# others never see (with 20 s, 2% of the validation and test rows lay outside the training rows' range)
THERMAL_TAU_S = 5.0
THERMAL_GAIN = HEATING_RATE * THERMAL_TAU_S  # °C per A²: the lag's initial slope is HEATING_RATE * load²
RIPPLE_HZ = RIPPLE_CYCLES_PER_SAMPLE / SAMPLE_PERIOD_S  # the window simulator's ripple in Hz
OSC_HZ = OSC_CYCLES_PER_SAMPLE / SAMPLE_PERIOD_S  # faulty-control-loop oscillation in Hz
SPIKE_S = 0.05  # s, voltage spike length (at least MIN_SPIKE samples)


# ----- the normal process ---------------------------------------------------------------
def simulate_load(seconds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Load current (n,) A: random levels held for :data:`HOLD_RANGE_S`, joined by ramps at up to LOAD_SLEW."""
    duration = float(seconds[-1]) if len(seconds) else 0.0
    count = int(duration / HOLD_RANGE_S[0]) + 2  # enough levels to outlast the recording
    levels = rng.uniform(*LOAD_RANGE, count)
    holds = rng.uniform(*HOLD_RANGE_S, count)
    ramps = np.abs(np.diff(levels, append=levels[-1])) / (LOAD_SLEW * rng.uniform(*RAMP_SLEW_RANGE, count))
    knot_t = np.concatenate([[0.0], np.cumsum(np.stack([holds, ramps], axis=1).reshape(-1))])  # hold_0, ramp_0, ...
    knot_v = np.append(np.repeat(levels, 2), levels[-1])  # L0, L0, L1, L1, ...: held, then ramped
    return np.interp(seconds, knot_t, knot_v)


def first_order_lag(x: np.ndarray, alpha: float) -> np.ndarray:
    """``y[n] = alpha * x[n] + (1 - alpha) * y[n-1]`` over (n,) float64 ``x``, starting settled at ``x[0]``.

    ``scipy.signal.lfilter([alpha], [1, alpha - 1], x, zi=[(1 - alpha) * x[0]])`` bit for bit (tested), written out
    because importing scipy.signal takes 0.7-1.5 s, a third of a run's start-up.
    """
    keep = 1.0 - alpha
    steps = accumulate((alpha * x).tolist(), lambda y, pushed: keep * y + pushed, initial=float(x[0]))
    return np.fromiter(steps, dtype=np.float64, count=len(x) + 1)[1:]


def simulate_normal_stream(n_rows: int, sample_rate_hz: float, rng: np.random.Generator) -> np.ndarray:
    """A continuous normal recording: (n_rows, 3) float64 voltage (V), current (A), temperature (°C), noisy."""
    seconds = np.arange(n_rows, dtype=np.float64) / sample_rate_hz
    load = simulate_load(seconds, rng)
    knots = np.arange(0.0, seconds[-1] + 2 * RIPPLE_WANDER_S, RIPPLE_WANDER_S)
    freq = RIPPLE_HZ * (1.0 + np.interp(seconds, knots, rng.uniform(-RIPPLE_JITTER, RIPPLE_JITTER, len(knots))))
    angle = rng.uniform(0.0, 2.0 * np.pi) + 2.0 * np.pi * np.cumsum(freq) / sample_rate_hz  # continuous phase
    offset = rng.uniform(-V_OFFSET, V_OFFSET)
    settled = rng.uniform(*AMBIENT_RANGE) + THERMAL_GAIN * load**2  # where the heat sink would settle
    alpha = -np.expm1(-1.0 / (sample_rate_hz * THERMAL_TAU_S))  # exact first-order step per row
    return sensor_readings(load, angle, offset, first_order_lag(settled, alpha), rng)


# ----- the anomalies --------------------------------------------------------------------
def plan_anomalies(n_rows: int, sample_rate_hz: float, density: float, min_s: float, max_s: float,
                   types: list[str], rng: np.random.Generator) -> list[tuple[int, int, str]]:
    """Where the anomalies go: ``[(start, end, kind), ...]`` rows, in order, separated by at least one normal row.

    Kinds cycle through ``types`` (each cycle shuffled) until ``density * n_rows`` rows are anomalous; random gaps.
    """
    target, spike = int(round(density * n_rows)), max(MIN_SPIKE, int(round(SPIKE_S * sample_rate_hz)))
    lo, hi = int(round(min_s * sample_rate_hz)), int(round(max_s * sample_rate_hz))
    kinds, lengths = [], []
    while sum(lengths) < target or len(kinds) < len(types):
        for kind in rng.permutation(types):
            kinds.append(str(kind))
            lengths.append(spike if kind == "voltage_spike" else int(rng.integers(lo, hi + 1)))
            if sum(lengths) >= target and len(kinds) >= len(types):
                break
    free = n_rows - sum(lengths) - (len(kinds) - 1)  # one normal row kept between neighbours
    cuts = np.sort(rng.integers(0, free + 1, len(kinds)))
    gaps = np.diff(cuts, prepend=0) + (np.arange(len(kinds)) > 0)
    starts = np.cumsum(gaps) + np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return [(int(s), int(s) + length, kind) for s, length, kind in zip(starts, lengths, kinds)]


def _shape(kind: str, length: int, sample_rate_hz: float, rng: np.random.Generator) -> np.ndarray:
    """(length,) anomaly shape with peak (spike, drift) or amplitude (oscillation) 1."""
    k = np.arange(length, dtype=np.float64)
    if kind == "voltage_spike":
        shape = np.sin(np.pi * (k + 1) / (length + 1))
        return shape / shape.max()
    if kind == "current_oscillation":  # OSC_HZ at any rate (0.23 cycles per row at 100 Hz)
        return np.sin(2.0 * np.pi * OSC_HZ * k / sample_rate_hz + rng.uniform(0.0, 2.0 * np.pi))
    return (k + 1) / length  # temperature_drift: a ramp to the magnitude over the range


def insert_anomalies(x: np.ndarray, plan: list[tuple[int, int, str]], magnitude: float, sample_rate_hz: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Add the planned anomalies to ``x`` (n, 3) in place; the per-row labels (n,) int64 and kinds (n,) str."""
    labels, kinds = np.zeros(len(x), dtype=np.int64), np.full(len(x), NORMAL, dtype=object)
    for start, end, kind in plan:
        shape = _shape(kind, end - start, sample_rate_hz, rng)
        sensor = AFFECTED_SENSOR[kind]
        x[start:end, SENSORS.index(sensor)] += magnitude * NOISE_STD[sensor] * shape
        labels[start:end], kinds[start:end] = 1, kind
    return labels, kinds.astype(str)


def simulate_stream(duration_s: float, sample_rate_hz: float, anomaly_density: float, anomaly_min_s: float,
                    anomaly_max_s: float, anomaly_magnitude: float, anomaly_types: list[str], seed: int,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[int, int, str]]]:
    """One labelled recording: ``(values (n, 3) float32, labels (n,) int64, kinds (n,) str, [(start, end, kind)])``."""
    rng = np.random.default_rng(seed)
    n_rows = int(round(duration_s * sample_rate_hz))
    x = simulate_normal_stream(n_rows, sample_rate_hz, rng)
    plan = plan_anomalies(n_rows, sample_rate_hz, anomaly_density, anomaly_min_s, anomaly_max_s,
                          list(anomaly_types), rng)
    labels, kinds = insert_anomalies(x, plan, anomaly_magnitude, sample_rate_hz, rng)
    return x.astype(np.float32), labels, kinds, plan


# ----- the loader -------------------------------------------------------------------------
def stream_bytes(n_rows: int, time_steps: int, stride: int, eval_stride: int) -> int:
    """Peak memory of :func:`load_converter_stream`: work arrays, the rows, then the windows at both strides."""
    # a dozen (n,) float64 work arrays, the rows in float64 and float32, the kinds; windows as float32 splits, the
    # agent's scaled copies and the float64 rows the scaler is fitted on
    windows = n_rows / stride + n_rows / eval_stride
    return int(n_rows * (12 * 8 + len(SENSORS) * (8 + 4) + 2 * 20) + windows * time_steps * len(SENSORS) * (4 * 3 + 8))


def validate_stream_params(duration_s: float, sample_rate_hz: float, anomaly_density: float, anomaly_min_s: float,
                           anomaly_max_s: float, anomaly_types: list[str], time_steps: int, eval_stride: int,
                           val_fraction: float, test_fraction: float) -> None:
    """ConfigError naming ``data.<param>`` for values that fit their types but not each other."""
    check_shared_params(anomaly_types, val_fraction, test_fraction)
    if eval_stride > time_steps:
        fail_key("eval_stride", eval_stride, f"expected at most data.time_steps={time_steps}, so the test windows "
                                             "cover every test row")
    if anomaly_density > MAX_DENSITY:
        fail_key("anomaly_density", anomaly_density, f"expected a share of anomalous rows in (0, {MAX_DENSITY}]")
    n_rows = int(round(duration_s * sample_rate_hz))
    (_, a), (_, b), (_, n) = stretch_bounds(n_rows, val_fraction, test_fraction)
    # the test stretch needs one window, the validation stretch 4 (before anomalies)
    for stretch, rows, rows_needed, share in (("test", n - b, time_steps, test_fraction),
                                              ("validation", b - a, time_steps + 3 * eval_stride, val_fraction),
                                              ("train", a, time_steps, 1.0 - val_fraction - test_fraction)):
        if rows < rows_needed:
            fail_key("duration_s", duration_s, f"gives {n_rows} rows at data.sample_rate_hz={sample_rate_hz}, so the "
                                               f"{stretch} stretch holds {rows}, fewer than the {rows_needed} it needs "
                                               f"(data.time_steps={time_steps}); need duration_s >= "
                                               f"{rows_needed / share / sample_rate_hz:.3g}")
    if anomaly_min_s * sample_rate_hz < MIN_SEGMENT - 0.5:
        fail_key("anomaly_min_s", anomaly_min_s, f"expected at least {MIN_SEGMENT} rows at data.sample_rate_hz="
                                                 f"{sample_rate_hz}: anomaly_min_s >= {MIN_SEGMENT / sample_rate_hz:g}")
    if anomaly_max_s < anomaly_min_s:
        fail_key("anomaly_max_s", anomaly_max_s, f"expected at least data.anomaly_min_s={anomaly_min_s}")
    if anomaly_max_s > test_fraction * duration_s:
        fail_key("anomaly_max_s", anomaly_max_s, f"expected at most data.test_fraction * data.duration_s = "
                                                 f"{test_fraction * duration_s:g} s, so an anomaly fits in the test "
                                                 "stretch")


@register_dataset("converter_stream")
@checked_args
def load_converter_stream(seed: int, duration_s: PositiveFloat = 1200.0,
                          sample_rate_hz: PositiveFloat = 1.0 / SAMPLE_PERIOD_S, anomaly_density: Fraction = 0.05,
                          anomaly_min_s: PositiveFloat = 0.2, anomaly_max_s: PositiveFloat = 2.0,
                          anomaly_magnitude: PositiveFloat = DEFAULT_MAGNITUDE,
                          anomaly_types: list[AnomalyType] = list(ANOMALY_TYPES),  # noqa: B006
                          time_steps: PositiveInt = 100, stride: PositiveInt | None = None,
                          eval_stride: PositiveInt | None = None, val_fraction: Fraction = 0.15,
                          test_fraction: Fraction = 0.15) -> DataSplits:
    """Simulate one converter recording cut into contiguous stretches (keys: docs/configuration.md).

    Returns:
        DataSplits with (N, time_steps, 3) windows (see :func:`datasets.stream_split.split_stream`),
        ``streams`` ``"val"`` and ``"test"``, and ``info`` holding the parameters, ``sample_period_s``,
        the split's stretches and the labelled ranges of the test stretch (recording rows).
    """
    types = list(anomaly_types)
    stride = stride or max(1, time_steps // 2)
    eval_stride = eval_stride or max(1, time_steps // 4)
    params = dict(duration_s=duration_s, sample_rate_hz=sample_rate_hz, anomaly_density=anomaly_density,
                  anomaly_min_s=anomaly_min_s, anomaly_max_s=anomaly_max_s, anomaly_magnitude=anomaly_magnitude,
                  anomaly_types=types)
    validate_stream_params(duration_s, sample_rate_hz, anomaly_density, anomaly_min_s, anomaly_max_s, types,
                           time_steps, eval_stride, val_fraction, test_fraction)
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
