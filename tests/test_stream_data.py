"""Stream datasets: the converter_stream simulator and loader, the csv loader's contiguous split, and a tiny
run of every model on converter_stream (split_stream itself: tests/test_stream_split.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from datasets.converter import ANOMALY_TYPES, NOISE_STD, SENSORS
from datasets.converter import THERMAL_GAIN, first_order_lag, load_converter_stream, simulate_stream
from datasets.csv_recordings import load_csv
from tests.helpers import REPO_ROOT, brute_ranges, run_main
from utils.core.config import load_config
from utils.core.errors import ConfigError, DataError

#: a short stream: 20 s at 50 Hz, windows of 25 rows
SMALL = dict(duration_s=20.0, sample_rate_hz=50.0, time_steps=25, anomaly_density=0.05, anomaly_min_s=0.1,
             anomaly_max_s=0.5)


# ----- converter_stream ------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [1.0, 0.5, 1.6666e-4])
def test_the_thermal_lag_is_scipy_lfilter_bit_for_bit(alpha):
    from scipy.signal import lfilter

    x = 40.0 + np.random.default_rng(0).standard_normal(5000).cumsum()
    expected, _ = lfilter([alpha], [1.0, alpha - 1.0], x, zi=[(1.0 - alpha) * x[0]])
    np.testing.assert_array_equal(first_order_lag(x, alpha), expected)


def test_converter_stream_labels_are_the_generator_ranges():
    data = load_converter_stream(seed=3, **SMALL)
    values, labels, kinds, plan = simulate_stream(seed=3, anomaly_magnitude=6.0, anomaly_types=list(ANOMALY_TYPES),
                                                  **{k: v for k, v in SMALL.items() if k != "time_steps"})
    assert [(s, e, k) for s, e, k in plan] == brute_ranges(labels, kinds)  # the planned ranges, nothing else
    assert all(plan[i][1] < plan[i + 1][0] for i in range(len(plan) - 1))  # separated by normal rows
    for name in ("val", "test"):
        part = data.streams[name]
        lo, hi = data.info["stretches"][name]
        assert part.first_row == lo and len(part) == hi - lo and part.sample_period_s == pytest.approx(0.02)
        np.testing.assert_array_equal(part.values, values[lo:hi])
        np.testing.assert_array_equal(part.labels, labels[lo:hi])
        np.testing.assert_array_equal(part.kinds, kinds[lo:hi])
        np.testing.assert_allclose(part.times, np.arange(lo, hi) * 0.02)
    test_lo = data.info["stretches"]["test"][0]
    inside = [(max(s, test_lo), e, k) for s, e, k in plan if e > test_lo]
    assert [(r["start"], r["end"], r["kind"]) for r in data.info["test_ranges"]] == inside


def test_anomalies_sit_in_the_affected_sensor_with_the_asked_magnitude():
    params = dict(duration_s=60.0, sample_rate_hz=100.0, anomaly_density=0.1, anomaly_min_s=0.5, anomaly_max_s=1.0,
                  anomaly_types=list(ANOMALY_TYPES), seed=5)
    plain, *_ = simulate_stream(anomaly_magnitude=1e-9, **params)
    bumped, labels, _, plan = simulate_stream(anomaly_magnitude=6.0, **params)
    diff = bumped.astype(np.float64) - plain
    assert np.abs(diff[labels == 0]).max() < 1e-5  # normal rows untouched
    for start, end, kind in plan:
        sensor = {"voltage_spike": 0, "current_oscillation": 1, "temperature_drift": 2}[kind]
        others = [c for c in range(3) if c != sensor]
        assert np.abs(diff[start:end, others]).max() < 1e-5
        assert np.abs(diff[start:end, sensor]).max() == pytest.approx(6.0 * NOISE_STD[SENSORS[sensor]], rel=0.02)


def test_the_normal_process_is_continuous():
    values, labels, _, _ = simulate_stream(120.0, 100.0, 0.01, 0.2, 0.5, 6.0, ["current_oscillation"], seed=1)
    normal = values[labels == 0].astype(np.float64)
    steps = np.abs(np.diff(values.astype(np.float64), axis=0))[(labels[1:] == 0) & (labels[:-1] == 0)]
    # row-to-row changes stay within the ripple and noise (no jumps between windows as the window simulator has)
    assert steps[:, 0].max() < 2 * 0.2 * 2 * np.pi * 0.1 + 8 * 0.05
    assert steps[:, 2].max() < 8 * 0.25 * np.sqrt(2)
    assert 40.0 + THERMAL_GAIN * 8.0**2 - 2.0 < normal[:, 2].min()
    assert normal[:, 2].max() < 45.0 + THERMAL_GAIN * 12.0**2 + 2.0
    assert 8.0 - 2.0 < normal[:, 1].min() and normal[:, 1].max() < 12.0 + 2.0


def test_the_seed_fixes_the_stream():
    a, b, c = (load_converter_stream(seed=s, **SMALL) for s in (7, 7, 8))
    for name in ("val", "test"):
        np.testing.assert_array_equal(a.streams[name].values, b.streams[name].values)
        np.testing.assert_array_equal(a.streams[name].labels, b.streams[name].labels)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    assert a.info == b.info
    assert not np.array_equal(a.streams["test"].values, c.streams["test"].values)
    sim = {k: v for k, v in SMALL.items() if k != "time_steps"}
    plans = [simulate_stream(seed=s, anomaly_magnitude=6.0, anomaly_types=list(ANOMALY_TYPES), **sim)[3]
             for s in (7, 8)]
    assert plans[0] and plans[1] and plans[0] != plans[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_test_stretch_holds_every_type(seed):
    data = load_converter_stream(seed=seed)
    assert {r["kind"] for r in data.info["test_ranges"]} == set(ANOMALY_TYPES)
    assert set(data.anomaly_kinds) == set(ANOMALY_TYPES)
    assert data.info["rows"] == 120000 and data.info["stride"] == 50 and data.info["eval_stride"] == 25


@pytest.mark.parametrize("density", [0.02, 0.1, 0.3])
def test_density_gives_about_the_asked_share(density):
    _, labels, _, plan = simulate_stream(600.0, 100.0, density, 0.2, 2.0, 6.0, list(ANOMALY_TYPES), seed=4)
    # lengths are drawn until the share is reached: at most one anomaly (2 s = 200 rows) more
    assert density <= labels.mean() < density + 200 / len(labels)
    assert labels.sum() == sum(e - s for s, e, _ in plan)


@pytest.mark.parametrize("overrides, fragment", [
    ({"eval_stride": 30}, "data.eval_stride: invalid value 30; expected at most data.time_steps=25"),
    ({"duration_s": 2.0}, "data.duration_s: invalid value 2.0; gives 100 rows at data.sample_rate_hz=50.0, so the "
                          "test stretch holds 15, fewer than the 25 it needs"),
    ({"test_fraction": 1.2}, "data.test_fraction: invalid value 1.2; expected a number strictly between 0 and 1"),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, "data.val_fraction: invalid value 0.5; val_fraction + "
                                                  "test_fraction must be below 1"),
    ({"anomaly_density": 0.6}, "data.anomaly_density: invalid value 0.6; expected a share of anomalous rows in"),
    ({"anomaly_max_s": 0.05}, "data.anomaly_max_s: invalid value 0.05; expected at least data.anomaly_min_s=0.1"),
    ({"anomaly_min_s": 0.05}, "data.anomaly_min_s: invalid value 0.05; expected at least 5 rows"),
    ({"anomaly_types": ["spike"]}, "data.anomaly_types: invalid value ['spike']"),
])
def test_converter_stream_refusals_name_the_key(overrides, fragment):
    with pytest.raises(ConfigError) as err:
        load_converter_stream(seed=0, **{**SMALL, **overrides})
    assert fragment in str(err.value), str(err.value)


def test_a_too_short_duration_exits_2_through_the_config(tmp_path, capsys):
    code = run_main("vae_converter_stream.json", tmp_path, "exp_name=x", "data.duration_s=1")
    err = capsys.readouterr().err
    assert code == 2 and "data.duration_s: invalid value 1.0; gives 100 rows" in err and "Traceback" not in err, err
    assert not any(tmp_path.iterdir())


def test_memory_is_checked_before_the_simulation(monkeypatch):
    from utils.runtime import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 10**5)
    with pytest.raises(ConfigError, match=r"data.duration_s=20.0, data.sample_rate_hz=50.0, data.time_steps=25, "
                                          r"data.stride=12, data.eval_stride=6: the simulated recording"):
        load_converter_stream(seed=0, **SMALL)


# ----- the csv loader's contiguous split --------------------------------------------------------------
def write_stream_csv(path, n=300, iso=True):
    """A CSV with a timestamp (ISO every 2 s, or numbers from 100 in steps of 0.5) and a label column."""
    rng = np.random.default_rng(0)
    labels = np.full(n, "0", dtype=object)
    for rows, text in ((slice(40, 45), "spike"), (slice(120, 124), "1"), (slice(260, 263), "drift"),
                       (slice(280, 281), "normal")):
        labels[rows] = text
    stamps = ([f"2024-05-01T08:{(2 * i) // 60:02d}:{(2 * i) % 60:02d}" for i in range(n)] if iso
              else [f"{100 + 0.5 * i}" for i in range(n)])
    lines = ["timestamp,a,b,label"] + [f"{stamps[i]},{i},{rng.normal():.4f},{labels[i]}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path, labels


@pytest.mark.parametrize("iso", [True, False])
def test_csv_contiguous_split_from_a_file(tmp_path, iso):
    path, text_labels = write_stream_csv(tmp_path / "s.csv", iso=iso)
    data = load_csv(seed=0, path=str(path), window_length=10, stride=5, label_column="label",
                    timestamp_column="timestamp", val_fraction=0.2, test_fraction=0.2)
    assert data.feature_names == ["a", "b"] and data.info["split"] == "contiguous"
    assert data.info["stretches"] == {"train": [0, 180], "val": [180, 240], "test": [240, 300]}
    assert data.info["eval_stride"] == 5  # stride, capped at the window length
    part = data.streams["test"]
    expected = np.isin(text_labels[240:], ["spike", "1", "drift"]).astype(int)  # "normal" is a normal label
    np.testing.assert_array_equal(part.labels, expected)
    assert set(part.kinds[part.labels == 1]) == {"drift"}
    period = 2.0 if iso else 0.5
    assert part.sample_period_s == period
    np.testing.assert_allclose(part.times, np.arange(240, 300) * period)
    assert part.time_text[0] == ("2024-05-01T08:08:00" if iso else "220.0")
    np.testing.assert_array_equal(data.test.x[:, :, 0], part.starts[:, None] + 240 + np.arange(10))
    train_rows = data.train.x[:, :, 0].astype(int)
    assert not np.isin(train_rows, [*range(40, 45), *range(120, 124)]).any() and train_rows.max() < 180
    val_rows = data.val.x[:, :, 0]
    assert val_rows.min() >= 180 and val_rows.max() < 240 and data.test.x[:, :, 0].min() >= 240
    assert data.test.kind[data.test.y == 1].tolist() and set(data.test.kind[data.test.y == 1]) == {"drift"}


def test_csv_contiguous_without_labels_or_timestamps(tmp_path):
    path, _ = write_stream_csv(tmp_path / "s.csv")
    data = load_csv(seed=0, path=str(path), window_length=10, feature_columns=["a", "b"], eval_stride=4)
    assert data.test.y.sum() == 0 and data.streams["test"].labels.sum() == 0
    assert data.streams["test"].times is None and data.streams["test"].sample_period_s is None
    assert data.info["eval_stride"] == 4 and "no label column" in data.info["note"]


def test_csv_contiguous_refusals(tmp_path):
    path, _ = write_stream_csv(tmp_path / "s.csv", n=60)
    with pytest.raises(DataError, match=r"the test stretch \(rows 51..59, 9 rows\) is shorter than one window of "
                                        r"data.window_length=10; raise data.test_fraction"):
        load_csv(seed=0, path=str(path), window_length=10, label_column="label", timestamp_column="timestamp",
                 val_fraction=0.5, test_fraction=0.15)
    with pytest.raises(ConfigError, match=r"data.eval_stride: invalid value 12; it must be at most "
                                          r"data.window_length=10"):
        load_csv(seed=0, path=str(path), window_length=10, eval_stride=12, label_column="label",
                 timestamp_column="timestamp")


def test_the_example_csv_config_splits_contiguously():
    config = load_config(REPO_ROOT / "configs" / "example_csv.json")
    data = load_csv(seed=0, **{k: v for k, v in config.data.items() if k != "name"}
                    | {"path": str(REPO_ROOT / "examples" / "converter_telemetry.csv")})
    assert data.info["stretches"]["test"] == [6120, 7200]
    assert set(data.anomaly_kinds) == {"voltage_spike", "current_oscillation", "temperature_drift"}


# ----- every model trains on converter_stream -----------------------------------------------------------
@pytest.mark.parametrize("config", ["vae_converter_stream.json", "conv_ae_converter_stream.json",
                                    "lstm_converter_stream.json"])
def test_every_model_runs_on_the_stream(tmp_path, config):
    tiny = ["data.duration_s=40", "data.sample_rate_hz=50", "data.time_steps=20", "data.stride=10",
            "data.eval_stride=5", "data.anomaly_max_s=0.6", "trainer.epochs=1", "trainer.progress_bar=false",
            "evaluation.make_plots=false", "exp_name=s"]
    assert run_main(config, tmp_path, *tiny) == 0
    metrics = json.loads((tmp_path / "s" / "out" / "metrics.json").read_text())
    assert metrics["data"]["dataset"] == "converter_stream" and metrics["data"]["split"] == "contiguous"
    assert metrics["splits"]["test"]["n"] == metrics["data"]["windows"]["test"]
    assert metrics["splits"]["train"]["n_anomalies"] == metrics["splits"]["val"]["n_anomalies"] == 0


@pytest.mark.parametrize("stamps, period", [
    (lambda i: f"{i // 10}", 0.1),  # logged at 1 s resolution, 10 rows a second: the mean step
    (lambda i: "5", None),  # never advances: no rate per hour (and no division by zero downstream)
    (lambda i: f"{i * 2 + (100 if i > 1000 else 0)}", 2.0),  # one gap: the median step
])
def test_the_csv_sample_period_survives_repeated_and_frozen_timestamps(tmp_path, stamps, period):
    rows = ["timestamp,a,label"] + [f"{stamps(i)},{np.sin(i / 5):.4f},{int(i % 197 > 190)}" for i in range(2000)]
    path = tmp_path / "s.csv"
    path.write_text("\n".join(rows) + "\n")
    data = load_csv(seed=0, path=str(path), window_length=20, label_column="label", timestamp_column="timestamp")
    got = data.streams["test"].sample_period_s
    assert (got is None) if period is None else got == pytest.approx(period, rel=1e-2)
