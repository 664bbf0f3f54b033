"""Simulated DC-DC converter telemetry (V, A, °C): the ``converter`` (windows) and ``converter_stream`` (one recording
cut into stretches; docs/streams.md) loaders. Anomalies go into one sensor (half-sine spike, oscillation, drift ramp),
``anomaly_magnitude`` noise stds (:data:`NOISE_STD`) high. Keys: docs/configuration.md."""
from __future__ import annotations

import logging
import typing
from itertools import accumulate
from typing import Literal

import numpy as np

from datasets.splits import (NORMAL, DataSplits, checked_args, kind_ranges, split_normal_only, split_stream,
                             stretch_bounds, warn_about_labels)
from utils.core.errors import ConfigError
from utils.core.registry import register_dataset
from utils.core.types import Fraction, PositiveFloat, PositiveFraction, PositiveInt, UnitInterval
from utils.runtime.memory import check_fits

logger = logging.getLogger("anomaly")

SENSORS = ("voltage", "current", "temperature")
AnomalyType = Literal["voltage_spike", "current_oscillation", "temperature_drift"]
ANOMALY_TYPES: tuple[str, ...] = typing.get_args(AnomalyType)
AFFECTED_SENSOR = {"voltage_spike": "voltage", "current_oscillation": "current", "temperature_drift": "temperature"}
DEFAULT_MAGNITUDE = 6.0  # in units of the affected sensor's noise std

SAMPLE_PERIOD_S = 0.01  # s between samples (100 Hz telemetry)
NOISE_STD = {"voltage": 0.05, "current": 0.2, "temperature": 0.25}  # V, A, °C
V_NOMINAL = 48.0  # V, output set point
V_OFFSET = 0.3  # V, per-window set-point error, uniform in ±V_OFFSET
V_RIPPLE = 0.2  # V, ripple amplitude
DROOP_OHM = 0.02  # V/A, output-voltage droop per ampere above LOAD_NOMINAL
LOAD_RANGE = (8.0, 12.0)  # A, per-window load level, uniform
LOAD_NOMINAL = 10.0  # A
LOAD_SLEW = 1.0  # A/s, per-window load slew, uniform in ±LOAD_SLEW
I_RIPPLE = 0.4  # A, inductor ripple amplitude (90° behind the voltage ripple)
RIPPLE_CYCLES_PER_SAMPLE = 0.1  # cycles/sample: switching ripple as aliased by sampling
RIPPLE_JITTER = 0.02  # relative, per-window ripple frequency spread, uniform in ±
AMBIENT_RANGE = (40.0, 45.0)  # °C, per-window starting temperature, uniform
HEATING_RATE = 0.01  # °C/s per A², heat-sink warming rate ∝ load²
OSC_CYCLES_PER_SAMPLE = 0.23  # cycles/sample, faulty-control-loop oscillation
SPIKE_FRACTION = 0.05  # spike length as a share of the window (>= MIN_SPIKE samples)
MIN_SPIKE = 2  # samples
MIN_SEGMENT = 5  # samples; a segment shorter than this is no oscillation/drift


def spike_length(time_steps: int) -> int:
    """Samples in a voltage spike: ``SPIKE_FRACTION`` of the window, at least ``MIN_SPIKE``."""
    return max(MIN_SPIKE, int(round(SPIKE_FRACTION * time_steps)))


def segment_length(time_steps: int, length: float) -> int:
    """Samples in an oscillation/drift segment: ``length`` of the window, at least 1."""
    return min(time_steps, max(1, int(round(length * time_steps))))


def simulate_normal(n: int, time_steps: int, rng: np.random.Generator) -> np.ndarray:
    """Simulate ``n`` normal windows: (n, time_steps, 3) float32 voltage (V), current (A), temperature (°C)."""
    t = np.arange(time_steps, dtype=np.float64)[None, :]  # (1, T) samples
    seconds = t * SAMPLE_PERIOD_S
    freq = RIPPLE_CYCLES_PER_SAMPLE * (1.0 + rng.uniform(-RIPPLE_JITTER, RIPPLE_JITTER, (n, 1)))
    angle = 2.0 * np.pi * freq * t + rng.uniform(0.0, 2.0 * np.pi, (n, 1))  # (n, T)
    level = rng.uniform(*LOAD_RANGE, (n, 1))
    load = level + rng.uniform(-LOAD_SLEW, LOAD_SLEW, (n, 1)) * seconds  # (n, T) A
    offset = rng.uniform(-V_OFFSET, V_OFFSET, (n, 1))
    temperature = rng.uniform(*AMBIENT_RANGE, (n, 1)) + HEATING_RATE * level**2 * seconds
    return sensor_readings(load, angle, offset, temperature, rng).astype(np.float32)


def sensor_readings(load: np.ndarray, angle: np.ndarray, offset: float | np.ndarray, temperature: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Noisy (..., 3) float64 voltage (V), current (A), temperature (°C) from ``load`` (A), the ripple's phase
    ``angle`` (rad), the set-point error ``offset`` (V) and ``temperature`` (°C), broadcast to one shape."""
    voltage = V_NOMINAL + offset - DROOP_OHM * (load - LOAD_NOMINAL) + V_RIPPLE * np.sin(angle)
    current = load + I_RIPPLE * np.sin(angle - np.pi / 2)
    x = np.stack([voltage, current, temperature], axis=-1)
    x += rng.standard_normal(x.shape) * np.array([NOISE_STD[s] for s in SENSORS])
    return x


def _shapes(kind: str, count: int, time_steps: int, seg: int, position: float | None,
            rng: np.random.Generator) -> np.ndarray:
    """(count, time_steps) shapes of ``kind``, peak or amplitude 1, from ``position`` (clipped to fit; None: random)."""
    if kind == "voltage_spike":
        seg = spike_length(time_steps)
    last = time_steps - seg
    starts = (rng.integers(0, last + 1, size=count) if position is None
              else np.full(count, min(int(round(position * time_steps)), last)))
    k = np.arange(time_steps)[None, :] - starts[:, None]  # steps since the segment start
    if kind == "voltage_spike":
        shape = np.sin(np.pi * (k + 1) / (seg + 1)) * ((k >= 0) & (k < seg))
        return shape / np.sin(np.pi * ((seg - 1) // 2 + 1) / (seg + 1))  # exact peak of 1
    if kind == "current_oscillation":
        phase = rng.uniform(0.0, 2.0 * np.pi, (count, 1))
        return np.sin(2.0 * np.pi * OSC_CYCLES_PER_SAMPLE * k + phase) * ((k >= 0) & (k < seg))
    return np.clip((k + 1) / seg, 0.0, 1.0)


def inject_anomalies(x_normal: np.ndarray, kinds: np.ndarray, magnitude: float,
                     position: float | None, length: float, rng: np.random.Generator) -> np.ndarray:
    """Add anomalies to a float32 copy of ``x_normal`` (N, T, 3), per ``kinds`` (N,) (``"normal"`` or a type):
    ``magnitude`` noise stds of the affected sensor (peak or amplitude), starting at ``position`` (share of the
    window, clipped so the segment fits; None: random), oscillations and drifts ``length`` of the window long."""
    kinds = np.asarray(kinds, dtype=str)
    if unknown := set(kinds.tolist()) - set(ANOMALY_TYPES) - {NORMAL}:
        raise ValueError(f"unknown kinds {sorted(unknown)}; valid: {NORMAL}, {', '.join(ANOMALY_TYPES)}")
    x = np.array(x_normal, dtype=np.float32, copy=True)
    time_steps = x.shape[1]
    seg = segment_length(time_steps, length)
    for kind, sensor in AFFECTED_SENSOR.items():
        rows = np.flatnonzero(kinds == kind)
        if len(rows):
            bump = magnitude * NOISE_STD[sensor] * _shapes(kind, len(rows), time_steps, seg, position, rng)
            x[rows, :, SENSORS.index(sensor)] += bump.astype(np.float32)
    return x


def simulate_converter(n_samples: int, time_steps: int, anomaly_fraction: float, anomaly_magnitude: float,
                       anomaly_position: float | None, anomaly_length: float, anomaly_types: list[str],
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A shuffled mix of normal and anomalous windows: (n_samples, time_steps, 3) float32 and (n_samples,) kinds."""
    rng = np.random.default_rng(seed)
    base, extra = divmod(int(round(anomaly_fraction * n_samples)), len(anomaly_types))  # the first types take the rest
    counts = {kind: base + (i < extra) for i, kind in enumerate(anomaly_types)}
    names = np.array([NORMAL, *counts])
    repeats = [n_samples - sum(counts.values()), *counts.values()]
    kind = np.repeat(names, repeats)[rng.permutation(n_samples)]
    x = simulate_normal(n_samples, time_steps, rng)
    x = inject_anomalies(x, kind, anomaly_magnitude, anomaly_position, anomaly_length, rng)
    return x, kind


def fail_key(name: str, value: object, valid: str) -> None:
    """Raise the ConfigError of a bad ``data.<name>``, saying what is valid."""
    raise ConfigError(f"data.{name}: invalid value {value!r}; {valid}")


def check_shared_params(anomaly_types: list[str], val_fraction: float, test_fraction: float) -> None:
    """What the types of both converter loaders cannot say: distinct anomaly types, shares leaving training data."""
    if not anomaly_types or len(set(anomaly_types)) != len(anomaly_types):
        fail_key("anomaly_types", list(anomaly_types), f"expected a non-empty list of distinct names from: "
                                                       f"{', '.join(ANOMALY_TYPES)}")
    if val_fraction + test_fraction >= 1.0:
        fail_key("val_fraction", val_fraction, "val_fraction + test_fraction must be below 1")


@register_dataset("converter")
@checked_args
def load_converter(seed: int, n_samples: PositiveInt = 3000, time_steps: PositiveInt = 100,
                   anomaly_fraction: Fraction = 0.2, anomaly_magnitude: PositiveFloat = DEFAULT_MAGNITUDE,
                   anomaly_position: UnitInterval | None = None, anomaly_length: PositiveFraction = 0.2,
                   anomaly_types: list[AnomalyType] = list(ANOMALY_TYPES), val_fraction: Fraction = 0.15,  # noqa: B006
                   test_fraction: Fraction = 0.15) -> DataSplits:
    """Simulated (N, time_steps, 3) windows, split normal-only (keys: docs/configuration.md, ``data.converter``)."""
    types = list(anomaly_types)
    params = dict(n_samples=n_samples, time_steps=time_steps, anomaly_fraction=anomaly_fraction,
                  anomaly_magnitude=anomaly_magnitude, anomaly_position=anomaly_position,
                  anomaly_length=anomaly_length, anomaly_types=types)
    check_shared_params(types, val_fraction, test_fraction)
    if segment_length(time_steps, anomaly_length) < MIN_SEGMENT:
        shortest = next(t for t in range(MIN_SEGMENT, 10**6) if segment_length(t, anomaly_length) >= MIN_SEGMENT)
        fail_key("time_steps", time_steps,
                 f"anomaly_length * time_steps must give at least {MIN_SEGMENT} samples; "
                 f"need time_steps >= {shortest} for anomaly_length={anomaly_length}")
    if (n_anomalies := int(round(anomaly_fraction * n_samples))) < len(types):
        fail_key("anomaly_fraction", anomaly_fraction,
                 f"gives {n_anomalies} anomalies for {len(types)} types; "
                 "raise it or data.n_samples so every type gets at least one")
    # peak memory: eight (N, T) float64 work arrays; (N, T, 3) float32 windows, split copies, the agent's scaled
    # copies and the float64 rows the scaler is fitted on; the kinds
    per_step = 8 * 8 + len(SENSORS) * (4 * 3 + 8)
    check_fits(n_samples * (time_steps * per_step + 4 * 20), "the simulated windows",
               f"data.n_samples={n_samples}, data.time_steps={time_steps}")
    x, kind = simulate_converter(**params, seed=seed)
    train, val, test = split_normal_only(x, kind, val_fraction, test_fraction, seed)
    info = {"dataset": "converter", **params, "seed": int(seed), "val_fraction": val_fraction,
            "test_fraction": test_fraction, "noise_std": dict(NOISE_STD), "sample_period_s": SAMPLE_PERIOD_S}
    return DataSplits(train=train, val=val, test=test, feature_names=list(SENSORS), info=info)


# ----- one long recording: converter_stream -------------------------------------------------------
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


def simulate_load(seconds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Load current (n,) A: random levels held for :data:`HOLD_RANGE_S`, joined by ramps at up to LOAD_SLEW."""
    count = int(float(seconds[-1]) / HOLD_RANGE_S[0]) + 2  # enough levels to outlast the recording
    levels = rng.uniform(*LOAD_RANGE, count)
    holds = rng.uniform(*HOLD_RANGE_S, count)
    ramps = np.abs(np.diff(levels, append=levels[-1])) / (LOAD_SLEW * rng.uniform(*RAMP_SLEW_RANGE, count))
    knot_t = np.concatenate([[0.0], np.cumsum(np.stack([holds, ramps], axis=1).reshape(-1))])  # hold_0, ramp_0, ...
    knot_v = np.append(np.repeat(levels, 2), levels[-1])  # L0, L0, L1, L1, ...: held, then ramped
    return np.interp(seconds, knot_t, knot_v)


def first_order_lag(x: np.ndarray, alpha: float) -> np.ndarray:
    """``y[n] = alpha * x[n] + (1 - alpha) * y[n-1]`` over (n,) float64 ``x``, starting settled at ``x[0]``; scipy's
    ``lfilter`` bit for bit (tested), written out because importing scipy.signal takes a third of a run's start-up."""
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


def plan_anomalies(n_rows: int, sample_rate_hz: float, density: float, min_s: float, max_s: float,
                   types: list[str], rng: np.random.Generator) -> list[tuple[int, int, str]]:
    """Where the anomalies go: ``[(start, end, kind), ...]`` rows, in order, at least one normal row apart; kinds
    cycle through ``types`` (each cycle shuffled) until ``density * n_rows`` rows are anomalous; random gaps."""
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
    if free < 0:
        fail_key("anomaly_max_s", max_s, f"the {len(kinds)} anomalies drawn for data.anomaly_density={density} (every "
                                         f"type at least once) take {sum(lengths)} rows, more than the recording's "
                                         f"{n_rows} rows hold with a normal row between them; lower "
                                         "data.anomaly_min_s and data.anomaly_max_s, or raise data.duration_s")
    cuts = np.sort(rng.integers(0, free + 1, len(kinds)))
    gaps = np.diff(cuts, prepend=0) + (np.arange(len(kinds)) > 0)
    starts = np.cumsum(gaps) + np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return [(int(s), int(s) + length, kind) for s, length, kind in zip(starts, lengths, kinds)]


def insert_anomalies(x: np.ndarray, plan: list[tuple[int, int, str]], magnitude: float, sample_rate_hz: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Add the planned anomalies to ``x`` (n, 3) in place, each with peak (spike, drift) or amplitude (oscillation)
    ``magnitude`` noise stds; the per-row labels (n,) int64 and kinds (n,) str."""
    labels, kinds = np.zeros(len(x), dtype=np.int64), np.full(len(x), NORMAL, dtype=object)
    for start, end, kind in plan:
        length, sensor = end - start, AFFECTED_SENSOR[kind]
        k = np.arange(length, dtype=np.float64)
        if kind == "voltage_spike":
            shape = np.sin(np.pi * (k + 1) / (length + 1))
            shape = shape / shape.max()
        elif kind == "current_oscillation":  # OSC_HZ at any rate (0.23 cycles per row at 100 Hz)
            shape = np.sin(2.0 * np.pi * OSC_HZ * k / sample_rate_hz + rng.uniform(0.0, 2.0 * np.pi))
        else:  # temperature_drift: a ramp to the magnitude over the range
            shape = (k + 1) / length
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
    """One simulated recording cut into contiguous stretches (keys: docs/configuration.md; see :func:`split_stream`);
    ``info`` holds the parameters, the split's stretches and the test stretch's labelled ranges (recording rows)."""
    types = list(anomaly_types)
    stride = stride or max(1, time_steps // 2)
    eval_stride = eval_stride or max(1, time_steps // 4)
    params = dict(duration_s=duration_s, sample_rate_hz=sample_rate_hz, anomaly_density=anomaly_density,
                  anomaly_min_s=anomaly_min_s, anomaly_max_s=anomaly_max_s, anomaly_magnitude=anomaly_magnitude,
                  anomaly_types=types)
    check_shared_params(types, val_fraction, test_fraction)
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
    # peak memory: a dozen (n,) float64 work arrays, the rows in float64 and float32, the kinds; windows at both
    # strides as float32 splits, the agent's scaled copies and the float64 rows the scaler is fitted on
    windows = n_rows / stride + n_rows / eval_stride
    peak = int(n_rows * (12 * 8 + len(SENSORS) * (8 + 4) + 2 * 20) + windows * time_steps * len(SENSORS) * (4 * 3 + 8))
    check_fits(peak, "the simulated recording and its windows",
               f"data.duration_s={duration_s}, data.sample_rate_hz={sample_rate_hz}, data.time_steps={time_steps}, "
               f"data.stride={stride}, data.eval_stride={eval_stride}")
    values, labels, kinds, _ = simulate_stream(**params, seed=seed)
    period = 1.0 / sample_rate_hz
    train, val, test, streams, split_info = split_stream(
        values, labels, kinds, time_steps, stride, eval_stride, val_fraction, test_fraction,
        times=np.arange(n_rows, dtype=np.float64) * period, sample_period_s=period, length_key="time_steps",
        size_hint="a longer data.duration_s")
    warn_about_labels([{"name": "the simulated recording", **split_info}])
    test_part = streams["test"]
    test_ranges = kind_ranges(test_part.labels, test_part.kinds, offset=test_part.first_row)
    if missing := sorted(set(types) - {r["kind"] for r in test_ranges}):
        logger.warning("data: the test stretch holds no %s range; raise data.anomaly_density or data.duration_s",
                       ", ".join(missing))
    info = {"dataset": "converter_stream", **params, "seed": int(seed), "time_steps": time_steps,
            "val_fraction": val_fraction, "test_fraction": test_fraction, "noise_std": dict(NOISE_STD),
            "sample_period_s": period, **split_info, "anomalous_share": float(labels.mean()),
            "test_ranges": test_ranges}
    return DataSplits(train=train, val=val, test=test, feature_names=list(SENSORS), info=info, streams=streams)
