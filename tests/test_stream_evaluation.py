"""A stream run end to end: per-time-step scores, stream metrics and incidents agree with brute force from its files."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import main
from agents.detector.detector import Detector
from agents.detector.thresholds import AdaptiveThreshold
from utils.metrics.stream_metrics import stream_metrics

STREAM_RUN = {
    "exp_name": "stream", "agent": "vae", "seed": 3,
    "data": {"name": "converter_stream", "duration_s": 240, "time_steps": 40, "stride": 20, "eval_stride": 10,
             "anomaly_density": 0.08, "val_fraction": 0.2, "test_fraction": 0.3},
    "model": {"name": "vae", "hidden_sizes": [16], "latent_dim": 4},
    "loss": {"name": "vae", "beta": 1e-05},
    "trainer": {"epochs": 2, "batch_size": 64, "progress_bar": False},
    "evaluation": {"false_alarm_rate": 0.05, "baselines": ["pca"], "incident_merge_gap": 15},
}


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def stream_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stream")
    config = root / "stream.json"
    config.write_text(json.dumps({**STREAM_RUN, "experiments_dir": str(root)}))
    assert main.main([str(config)]) == 0
    return root / "stream"


def _brute_point_scores(window_scores: np.ndarray, starts: np.ndarray, window_length: int, n: int) -> np.ndarray:
    out = np.full(n, -np.inf)
    for s, v in zip(starts, window_scores):
        out[s:s + window_length] = np.maximum(out[s:s + window_length], v)
    return out


def test_point_scores_are_the_max_of_the_covering_windows(stream_run):
    metrics = json.loads((stream_run / "out" / "metrics.json").read_text())
    stream, info = metrics["stream"], metrics["data"]
    points = _rows(stream_run / "out" / "stream_scores.csv")
    windows = _rows(stream_run / "out" / "scores.csv")
    assert len(points) == stream["rows"] and int(points[0]["row"]) == stream["first_row"]
    first, t = stream["first_row"], info["window_length"]
    test_rows = info["stretches"]["test"]
    assert first == test_rows[0] and stream["rows"] == test_rows[1] - test_rows[0]
    # the test windows start every eval_stride rows, plus one ending at the last row (every row covered)
    starts = np.arange(0, stream["rows"] - t + 1, info["eval_stride"])
    if starts[-1] != stream["rows"] - t:
        starts = np.append(starts, stream["rows"] - t)
    assert len(windows) == len(starts)
    for name in metrics["scores"]:
        window_scores = np.array([float(r[f"score_{name}"]) for r in windows])
        expected = _brute_point_scores(window_scores, starts, t, stream["rows"])
        got = np.array([float(r[f"score_{name}"]) for r in points])
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        alarms = np.array([int(r[f"alarm_{name}"]) for r in points])
        assert (alarms == (got > metrics["threshold"]["values"][name])).all()


def test_stream_metrics_recomputed_from_the_per_time_step_file(stream_run):
    metrics = json.loads((stream_run / "out" / "metrics.json").read_text())
    stream = metrics["stream"]
    points = _rows(stream_run / "out" / "stream_scores.csv")
    labels = np.array([int(r["label"]) for r in points])
    assert labels.sum() > 0, "the test stretch holds labelled anomalies"
    for name, result in stream["scores"].items():
        scores = np.array([float(r[f"score_{name}"]) for r in points])
        again = stream_metrics(labels, scores, metrics["threshold"]["values"][name], vus_buffer=stream["vus_buffer"],
                               merge_gap=stream["incident_merge_gap"], sample_period_s=stream["sample_period_s"])
        for key in ("vus_pr", "vus_roc", "roc_auc", "event_recall", "false_alarms"):
            assert again[key] == pytest.approx(result[key], rel=1e-6), (name, key)
    assert stream["vus_buffer"] == metrics["data"]["window_length"]  # null: the window length
    assert set(stream["baselines"]) == set(metrics["baselines"])


def test_incidents_are_the_merged_alarm_runs_of_the_primary_score(stream_run):
    metrics = json.loads((stream_run / "out" / "metrics.json").read_text())
    stream = metrics["stream"]
    primary, gap = stream["incidents"]["score"], stream["incident_merge_gap"]
    assert primary == next(iter(metrics["scores"])) and gap == 15
    points = _rows(stream_run / "out" / "stream_scores.csv")
    rows = np.array([int(r["row"]) for r in points])
    alarmed = rows[np.array([r[f"alarm_{primary}"] == "1" for r in points])]
    runs: list[list[int]] = []
    for row in alarmed:
        if runs and row - runs[-1][1] - 1 <= gap:
            runs[-1][1] = row
        else:
            runs.append([row, row])
    listed = _rows(stream_run / "out" / "incidents.csv")
    found = [r for r in listed if r["outcome"] != "missed"]
    assert [[int(r["start_row"]), int(r["end_row"])] for r in found] == runs
    assert stream["incidents"]["n"] == len(runs)
    labels = {int(r["row"]): int(r["label"]) for r in points}
    for r in found:
        touches = any(labels[i] for i in range(int(r["start_row"]), int(r["end_row"]) + 1))
        assert r["outcome"] == ("hit" if touches else "false_alarm")
        assert float(r["duration_s"]) == pytest.approx((int(r["end_row"]) - int(r["start_row"])) * 0.01)
    missed = [r for r in listed if r["outcome"] == "missed"]
    assert stream["incidents"]["missed"] == len(missed)
    assert stream["incidents"]["detected"] + len(missed) == stream["incidents"]["labelled_ranges"]


def test_the_report_and_figures_show_the_stream(stream_run):
    report = (stream_run / "out" / "report.md").read_text()
    assert "## Results on the test stream (per time step)" in report and "VUS-PR" in report
    assert "### Test incidents" in report
    assert (stream_run / "out" / "timeline.png").stat().st_size > 10_000
    log = (stream_run / "logs" / "train.log").read_text()
    assert "Test stream:" in log and "Model vs baselines on the test stream" in log


def test_a_stream_without_timestamps_names_incident_times_from_its_start():
    from utils.metrics.ranges import clock_text

    assert clock_text(np.array([0.0, 59.999, 1028.75, 7261.5])).tolist() == [
        "0:00:00.00", "0:01:00.00", "0:17:08.75", "2:01:01.50"]
    assert clock_text([1106.0, 59.96, 3599.5], 1).tolist() == ["0:18:26.0", "0:01:00.0", "0:59:59.5"]


def test_incident_times_are_the_recording_clock(stream_run):
    from utils.metrics.ranges import clock_text

    found = [r for r in _rows(stream_run / "out" / "incidents.csv") if r["outcome"] != "missed"]
    assert found, "the tiny run raised no incident"
    for r in found:  # converter_stream: 100 rows a second from row 0
        assert r["start_time"] == clock_text(np.array([int(r["start_row"]) * 0.01]))[0]
        assert r["end_time"] == clock_text(np.array([int(r["end_row"]) * 0.01]))[0]


@pytest.mark.parametrize("override, fragment", [
    ("evaluation.vus_buffer=5000", "evaluation.vus_buffer: Input should be less than or equal to 2000"),
    ("evaluation.point_aggregation=median", "evaluation.point_aggregation: Input should be 'max', 'mean' or 'min'"),
    ("evaluation.incident_merge_gap=-1", "evaluation.incident_merge_gap"),
])
def test_bad_stream_settings_exit_2_naming_the_key(tmp_path, capsys, override, fragment):
    config = tmp_path / "stream.json"
    config.write_text(json.dumps({**STREAM_RUN, "experiments_dir": str(tmp_path)}))
    assert main.main([str(config), "--set", override]) == 2
    assert fragment in capsys.readouterr().err and not (tmp_path / "stream").exists()


def test_an_incident_in_words():
    from agents.detector.streaming import Incident

    timed = Incident(1200, 1450, 8.1, 1300, 4.0, "current", "09:40:12", "09:41:05", 53.0)
    assert timed.text(2.3) == ("current, rows 1200-1450, from 09:40:12 to 09:41:05 (53 s), peak score 8.1 at row 1300 "
                               "(threshold 2.3)")
    assert Incident(5, 9, 1.5, 7, 1.2).text(1.0) == "?, rows 5-9 (5 rows), peak score 1.5 at row 7 (threshold 1)"


def test_adaptive_thresholds_decide_the_time_step_alarms_and_incidents(tmp_path):
    """evaluation.threshold_adapt_rate: each score's time steps alarm above its adaptive threshold run over that
    score's calibration scores; the incidents are the merged runs of those alarms."""
    gamma = 0.05
    config = tmp_path / "adaptive.json"
    config.write_text(json.dumps({**STREAM_RUN, "exp_name": "adaptive", "experiments_dir": str(tmp_path),
                                  "evaluation": {**STREAM_RUN["evaluation"], "threshold_adapt_rate": gamma}}))
    assert main.main([str(config)]) == 0
    run = tmp_path / "adaptive"
    metrics = json.loads((run / "out" / "metrics.json").read_text())
    assert metrics["stream"]["threshold_adapt_rate"] == gamma
    detector = Detector.load(run, device="cpu")
    points = _rows(run / "out" / "stream_scores.csv")
    for name in metrics["scores"]:
        scores = np.array([float(r[f"score_{name}"]) for r in points])
        limits = AdaptiveThreshold(detector.calibration[name], detector.false_alarm_rate, gamma).thresholds(scores)
        alarms = np.array([int(r[f"alarm_{name}"]) for r in points])
        assert (alarms == (scores > limits)).all(), name
        assert (alarms != (scores > metrics["threshold"]["values"][name])).any(), name
    primary = metrics["stream"]["incidents"]["score"]
    alarmed = np.flatnonzero([r[f"alarm_{primary}"] == "1" for r in points])
    found = [r for r in _rows(run / "out" / "incidents.csv") if r["outcome"] != "missed"]
    first = int(points[0]["row"])
    assert int(found[0]["start_row"]) == first + alarmed[0] and int(found[-1]["end_row"]) == first + alarmed[-1]
