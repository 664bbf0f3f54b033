"""Simulated DC-DC power-converter telemetry (voltage V, current A, temperature °C) and the ``converter`` loader.

Anomalies are added to one sensor of a normal window, in one segment: a half-sine ``voltage_spike``, a
``current_oscillation`` at :data:`OSC_CYCLES_PER_SAMPLE`, a ``temperature_drift`` ramp held to the window's end;
``anomaly_magnitude`` noise stds (:data:`NOISE_STD`) high. Keys: docs/configuration.md.
"""
from __future__ import annotations

import typing
from typing import Literal

import numpy as np

from datasets.splits import NORMAL, DataSplits, checked_args, split_normal_only
from utils.core.errors import ConfigError
from utils.core.registry import register_dataset
from utils.core.types import Fraction, PositiveFloat, PositiveFraction, PositiveInt, UnitInterval
from utils.runtime.memory import check_fits

SENSORS = ("voltage", "current", "temperature")
AnomalyType = Literal["voltage_spike", "current_oscillation", "temperature_drift"]
ANOMALY_TYPES: tuple[str, ...] = typing.get_args(AnomalyType)
AFFECTED_SENSOR = {"voltage_spike": "voltage", "current_oscillation": "current",
                   "temperature_drift": "temperature"}
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
    """Noisy (..., 3) float64 voltage (V), current (A), temperature (°C): the physics all simulators share.

    ``load`` (A), the ripple's phase ``angle`` (rad), the set-point error ``offset`` (V) and ``temperature`` (°C)
    broadcast to one shape.
    """
    voltage = V_NOMINAL + offset - DROOP_OHM * (load - LOAD_NOMINAL) + V_RIPPLE * np.sin(angle)
    current = load + I_RIPPLE * np.sin(angle - np.pi / 2)
    x = np.stack([voltage, current, temperature], axis=-1)
    x += rng.standard_normal(x.shape) * np.array([NOISE_STD[s] for s in SENSORS])
    return x


def _shapes(kind: str, count: int, time_steps: int, seg: int, position: float | None,
            rng: np.random.Generator) -> np.ndarray:
    """(count, time_steps) shapes of ``kind``: peak (spike, drift) or amplitude (oscillation) 1.

    The segment starts at ``position`` (clipped so it fits) or, for None, uniformly at random per window.
    """
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
    """Add anomalies to a float32 copy of normal windows.

    Args:
        x_normal: (N, T, 3) normal windows, physical units.
        kinds: (N,) ``"normal"`` or a name from :data:`ANOMALY_TYPES`.
        magnitude: peak (spike, drift) or amplitude (oscillation) in noise stds of the affected sensor.
        position: segment start as a fraction of the window (clipped so the segment fits), None: random.
        length: oscillation/drift segment length as a fraction of the window.
    """
    kinds = np.asarray(kinds, dtype=str)
    unknown = set(kinds.tolist()) - set(ANOMALY_TYPES) - {NORMAL}
    if unknown:
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


def simulate_converter(n_samples: int, time_steps: int, anomaly_fraction: float,
                       anomaly_magnitude: float, anomaly_position: float | None,
                       anomaly_length: float, anomaly_types: list[str],
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


def simulation_bytes(n_samples: int, time_steps: int) -> int:
    """Peak memory of :func:`load_converter`: the simulation's work arrays, the windows and their copies, the kinds."""
    # eight (N, T) float64 work arrays; (N, T, 3) float32 windows, split copies, the agent's scaled copies and the
    # float64 rows the scaler is fitted on
    per_step = 8 * 8 + len(SENSORS) * (4 * 3 + 8)
    return n_samples * (time_steps * per_step + 4 * 20)


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


def validate_params(n_samples: int, time_steps: int, anomaly_fraction: float, anomaly_length: float,
                    anomaly_types: list[str], val_fraction: float, test_fraction: float) -> None:
    """ConfigError naming ``data.<param>`` for values that fit their types but not each other."""
    check_shared_params(anomaly_types, val_fraction, test_fraction)
    if segment_length(time_steps, anomaly_length) < MIN_SEGMENT:
        shortest = next(t for t in range(MIN_SEGMENT, 10**6) if segment_length(t, anomaly_length) >= MIN_SEGMENT)
        fail_key("time_steps", time_steps,
                 f"anomaly_length * time_steps must give at least {MIN_SEGMENT} samples; "
                 f"need time_steps >= {shortest} for anomaly_length={anomaly_length}")
    n_anomalies = int(round(anomaly_fraction * n_samples))
    if n_anomalies < len(anomaly_types):
        fail_key("anomaly_fraction", anomaly_fraction,
                 f"gives {n_anomalies} anomalies for {len(anomaly_types)} types; "
                 "raise it or data.n_samples so every type gets at least one")


@register_dataset("converter")
@checked_args
def load_converter(seed: int, n_samples: PositiveInt = 3000, time_steps: PositiveInt = 100,
                   anomaly_fraction: Fraction = 0.2, anomaly_magnitude: PositiveFloat = DEFAULT_MAGNITUDE,
                   anomaly_position: UnitInterval | None = None, anomaly_length: PositiveFraction = 0.2,
                   anomaly_types: list[AnomalyType] = list(ANOMALY_TYPES), val_fraction: Fraction = 0.15,  # noqa: B006
                   test_fraction: Fraction = 0.15) -> DataSplits:
    """Simulate converter windows, split normal-only (keys: docs/configuration.md, ``data.converter``).

    Returns:
        DataSplits with (N, time_steps, 3) windows, feature names :data:`SENSORS` and ``info`` holding the
        generator parameters.
    """
    types = list(anomaly_types)
    params = dict(n_samples=n_samples, time_steps=time_steps, anomaly_fraction=anomaly_fraction,
                  anomaly_magnitude=anomaly_magnitude, anomaly_position=anomaly_position,
                  anomaly_length=anomaly_length, anomaly_types=types)
    validate_params(n_samples, time_steps, anomaly_fraction, anomaly_length, types, val_fraction, test_fraction)
    check_fits(simulation_bytes(n_samples, time_steps), "the simulated windows",
               f"data.n_samples={n_samples}, data.time_steps={time_steps}")
    x, kind = simulate_converter(**params, seed=seed)
    train, val, test = split_normal_only(x, kind, val_fraction, test_fraction, seed)
    info = {"dataset": "converter", **params, "seed": int(seed), "val_fraction": val_fraction,
            "test_fraction": test_fraction, "noise_std": dict(NOISE_STD), "sample_period_s": SAMPLE_PERIOD_S}
    return DataSplits(train=train, val=val, test=test, feature_names=list(SENSORS), info=info)
