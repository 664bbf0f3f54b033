"""Tests for the simulated power-converter dataset (datasets/converter.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from datasets.splits import NORMAL
from datasets.converter import (
    ANOMALY_TYPES,
    DEFAULT_MAGNITUDE,
    NOISE_STD,
    OSC_CYCLES_PER_SAMPLE,
    SENSORS,
    inject_anomalies,
    load_converter,
    segment_length,
    simulate_converter,
    simulate_normal,
    spike_length,
)
from utils.core.errors import ConfigError
from utils.core.registry import DATASETS

T = 100
SENSOR = {"voltage_spike": 0, "current_oscillation": 1, "temperature_drift": 2}


def _simulate(seed: int = 0, **overrides) -> tuple[np.ndarray, np.ndarray]:
    params = dict(n_samples=600, time_steps=T, anomaly_fraction=0.2, anomaly_magnitude=6.0,
                  anomaly_position=None, anomaly_length=0.2, anomaly_types=list(ANOMALY_TYPES))
    params.update(overrides)
    return simulate_converter(**params, seed=seed)


@pytest.fixture(scope="module")
def injected() -> dict:
    """30 normal windows, 10 each of three kinds injected at a fixed position."""
    rng = np.random.default_rng(7)
    x0 = simulate_normal(40, T, rng)
    kinds = np.array([NORMAL] * 10 + [k for k in ANOMALY_TYPES for _ in range(10)])
    x = inject_anomalies(x0, kinds, magnitude=5.0, position=0.3, length=0.2, rng=rng)
    return {"x0": x0, "x": x, "kinds": kinds, "diff": x.astype(np.float64) - x0, "start": 30}


def test_shapes_and_dtypes():
    x = simulate_normal(5, T, np.random.default_rng(0))
    assert x.shape == (5, T, 3) and x.dtype == np.float32
    x, kind = _simulate()
    assert x.shape == (600, T, 3) and x.dtype == np.float32
    assert kind.shape == (600,) and set(kind) == {NORMAL, *ANOMALY_TYPES}
    assert np.isfinite(x).all()


def test_same_seed_same_data_other_seed_differs():
    x1, k1 = _simulate(seed=3)
    x2, k2 = _simulate(seed=3)
    x3, _ = _simulate(seed=4)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(k1, k2)
    assert not np.allclose(x1, x3)


@pytest.mark.parametrize("n, fraction, types, expected", [
    (600, 0.2, list(ANOMALY_TYPES), {k: 40 for k in ANOMALY_TYPES}),
    (1000, 0.1, list(ANOMALY_TYPES), dict(zip(ANOMALY_TYPES, (34, 33, 33)))),
    (500, 0.2, ["temperature_drift", "voltage_spike"], {"temperature_drift": 50, "voltage_spike": 50}),
])
def test_anomaly_count_split_evenly(n, fraction, types, expected):
    _, kind = _simulate(n_samples=n, anomaly_fraction=fraction, anomaly_types=types)
    counts = {k: int((kind == k).sum()) for k in set(kind) - {NORMAL}}
    assert counts == expected
    assert (kind == NORMAL).sum() == n - sum(expected.values())


def test_normal_rows_untouched(injected):
    normal = injected["kinds"] == NORMAL
    assert (injected["diff"][normal] == 0).all()


@pytest.mark.parametrize("kind", ANOMALY_TYPES)
def test_anomaly_only_in_intended_sensor_and_segment(injected, kind):
    rows = injected["kinds"] == kind
    diff, start, sensor = injected["diff"][rows], injected["start"], SENSOR[kind]
    others = [s for s in range(3) if s != sensor]
    assert (diff[:, :, others] == 0).all()
    end = {"voltage_spike": start + spike_length(T),
           "current_oscillation": start + segment_length(T, 0.2),
           "temperature_drift": T}[kind]
    own = diff[:, :, sensor]
    assert (own[:, :start] == 0).all() and (own[:, end:] == 0).all()
    assert (np.abs(own[:, start:end]) > 0).mean() > 0.8


def test_spike_peak_and_shape(injected):
    own = injected["diff"][injected["kinds"] == "voltage_spike", :, 0]
    np.testing.assert_allclose(own.max(axis=1), 5.0 * NOISE_STD["voltage"], atol=1e-4)
    assert (own >= 0).all()  # over-voltage: always positive
    assert 2 <= spike_length(T) <= 0.05 * T


def test_oscillation_amplitude_and_frequency(injected):
    start, seg = injected["start"], segment_length(T, 0.2)
    own = injected["diff"][injected["kinds"] == "current_oscillation", start:start + seg, 1]
    k = np.arange(seg)
    basis = np.stack([np.sin(2 * np.pi * OSC_CYCLES_PER_SAMPLE * k),
                      np.cos(2 * np.pi * OSC_CYCLES_PER_SAMPLE * k)], axis=1)
    coef, residual, *_ = np.linalg.lstsq(basis, own.T, rcond=None)
    np.testing.assert_allclose(np.hypot(*coef), 5.0 * NOISE_STD["current"], rtol=1e-3)
    assert residual.max() < 1e-6  # a pure sinusoid at the oscillation frequency


def test_drift_ramps_then_holds(injected):
    start, seg = injected["start"], segment_length(T, 0.2)
    own = injected["diff"][injected["kinds"] == "temperature_drift", :, 2]
    peak = 5.0 * NOISE_STD["temperature"]
    np.testing.assert_allclose(own[:, start + seg - 1:], peak, atol=1e-4)
    ramp = own[:, start:start + seg]
    assert (np.diff(ramp, axis=1) > 0).all()
    np.testing.assert_allclose(np.diff(ramp, axis=1), peak / seg, atol=1e-4)


def test_random_position_keeps_segment_inside_window():
    rng = np.random.default_rng(1)
    x0 = simulate_normal(300, T, rng)
    kinds = np.repeat(np.array(ANOMALY_TYPES), 100)
    diff = inject_anomalies(x0, kinds, 4.0, None, 0.2, rng).astype(np.float64) - x0
    spikes = diff[kinds == "voltage_spike", :, 0]
    assert ((spikes > 0).sum(axis=1) == spike_length(T)).all()
    drifts = diff[kinds == "temperature_drift", :, 2]
    np.testing.assert_allclose(drifts[:, -1], 4.0 * NOISE_STD["temperature"], atol=1e-4)
    first = (np.abs(diff[kinds == "current_oscillation", :, 1]) > 0).argmax(axis=1)
    assert len(set(first.tolist())) > 10 and first.max() <= T - segment_length(T, 0.2)


def test_position_one_is_clipped_to_fit():
    rng = np.random.default_rng(2)
    x0 = simulate_normal(3, T, rng)
    diff = inject_anomalies(x0, np.array(ANOMALY_TYPES), 4.0, 1.0, 0.2, rng).astype(np.float64) - x0
    assert (diff[0, :, 0] > 0).sum() == spike_length(T) and diff[0, -1, 0] > 0
    np.testing.assert_allclose(diff[2, -1, 2], 4.0 * NOISE_STD["temperature"], atol=1e-4)


def test_unknown_kind_in_inject_raises():
    x0 = simulate_normal(1, T, np.random.default_rng(0))
    with pytest.raises(ValueError, match="voltage_spike"):
        inject_anomalies(x0, np.array(["bogus"]), 1.0, None, 0.2, np.random.default_rng(0))


def test_normal_windows_are_realistic():
    x = simulate_normal(2000, T, np.random.default_rng(0)).astype(np.float64)
    means = x.mean(axis=(0, 1))
    assert abs(means[0] - 48.0) < 0.2
    assert 9.5 < means[1] < 10.5
    assert 40.0 < means[2] < 46.0
    window_means = x.mean(axis=1)
    assert window_means[:, 1].min() > 7.0 and window_means[:, 1].max() < 13.0
    assert window_means[:, 0].std() > 0.05  # per-window variety
    assert (x[:, -1, 2] - x[:, 0, 2]).mean() > 0  # warms up slowly under load
    # high-pass residual (second difference) matches the documented noise scale
    for s, name in enumerate(SENSORS):
        rough = np.diff(x[:, :, s], n=2, axis=1).std() / np.sqrt(6)
        assert 0.8 * NOISE_STD[name] < rough < 2.5 * NOISE_STD[name], name


def test_vectorised_simulation_of_10k_windows_runs():
    x, kind = simulate_converter(10_000, T, 0.2, DEFAULT_MAGNITUDE, None, 0.2, list(ANOMALY_TYPES), 0)
    assert x.shape == (10_000, T, 3) and (kind != NORMAL).sum() == 2000


def test_load_converter_splits():
    assert DATASETS.get("converter") is load_converter
    data = load_converter(seed=0, n_samples=1000)
    assert data.feature_names == list(SENSORS)
    for split in (data.train, data.val):
        assert (split.kind == NORMAL).all() and (split.y == 0).all()
    assert (data.test.kind != NORMAL).sum() == 200
    assert data.anomaly_kinds == sorted(ANOMALY_TYPES)
    np.testing.assert_array_equal(data.test.y, (data.test.kind != NORMAL).astype(np.int64))
    rows = [w.tobytes() for s in (data.train, data.val, data.test) for w in s.x]
    assert len(rows) == len(set(rows)) == 1000
    assert data.train.x.shape[1:] == (T, 3)
    info = json.loads(json.dumps(data.info))
    assert info["anomaly_magnitude"] == DEFAULT_MAGNITUDE
    assert info["counts"]["test"]["voltage_spike"] == (data.test.kind == "voltage_spike").sum()
    assert info["counts"]["train"] == {NORMAL: len(data.train)}


def test_load_converter_is_reproducible():
    a, b = load_converter(seed=5, n_samples=300), load_converter(seed=5, n_samples=300)
    np.testing.assert_array_equal(a.test.x, b.test.x)
    np.testing.assert_array_equal(a.train.x, b.train.x)


@pytest.mark.parametrize("overrides, key", [
    ({"anomaly_types": ["voltage_spike", "arc_fault"]}, "anomaly_types"),
    ({"anomaly_types": []}, "anomaly_types"),
    ({"anomaly_types": "voltage_spike"}, "anomaly_types"),
    ({"anomaly_fraction": 0.0}, "anomaly_fraction"),
    ({"anomaly_fraction": 1.0}, "anomaly_fraction"),
    ({"val_fraction": 1.5}, "val_fraction"),
    ({"test_fraction": -0.1}, "test_fraction"),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction"),
    ({"n_samples": 0}, "n_samples"),
    ({"time_steps": -5}, "time_steps"),
    ({"time_steps": 10}, "time_steps"),
    ({"anomaly_magnitude": 0.0}, "anomaly_magnitude"),
    ({"anomaly_position": 1.2}, "anomaly_position"),
    ({"anomaly_length": 0.0}, "anomaly_length"),
    ({"n_samples": 10, "anomaly_fraction": 0.1}, "anomaly_fraction"),
])
def test_invalid_params_raise_config_error(overrides, key):
    with pytest.raises(ConfigError, match=rf"data\.{key}\b"):
        load_converter(seed=0, **overrides)


def test_unknown_type_message_lists_valid_types():
    with pytest.raises(ConfigError) as err:
        load_converter(seed=0, anomaly_types=["arc_fault"])
    assert all(name in str(err.value) for name in ANOMALY_TYPES)
