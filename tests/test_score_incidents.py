"""--mode score writes incidents beside the scores: checked against a brute force over the scores CSV."""
from __future__ import annotations

import csv
import re

import numpy as np
import pytest

import main
from agents.detector.detector import Detector
from tests.helpers import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "converter_telemetry.csv"
#: A tiny run on the example CSV (window length 30, ISO timestamps at 1 Hz): its config names the timestamp column.
CSV_RUN = ("example_csv.json", f"data.path={EXAMPLE}", "trainer.epochs=2", "trainer.progress_bar=false",
           "model.hidden_sizes=[8]", "model.latent_dim=2", "evaluation.make_plots=false", "exp_name=csv_tiny")
T = 30
FAULTS = ((400, 460), (520, 530))  # [start, end) rows of +20 A on the current sensor (~100 noise stds)


@pytest.fixture(scope="module")
def run(tiny_runs):
    """The tiny CSV run: its folder, argv prefix for --mode score, and its detector."""
    run_dir = tiny_runs.of_config(*CSV_RUN)
    return {"dir": run_dir, "argv": [str(run_dir / "config.json"), "--mode", "score"],
            "detector": Detector.load(run_dir, device="cpu")}


def example_rows(n: int) -> list[list[str]]:
    """The example CSV's header and first ``n`` rows as text."""
    with open(EXAMPLE, newline="") as handle:
        return [row for _, row in zip(range(n + 1), csv.reader(handle))]


def fault_rows(n: int = 1000, faults=FAULTS) -> list[list[str]]:
    """Header and ``n`` rows of the example with +20 on ``current`` in the ``faults`` row ranges."""
    rows = example_rows(n)
    col = rows[0].index("current")
    for start, end in faults:
        for r in rows[1 + start: 1 + end]:
            r[col] = f"{float(r[col]) + 20.0:.3f}"
    return rows


def write_csv(path, rows):
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def brute_force(scores_csv, features, n_rows, threshold, gap, name="reconstruction"):
    """Incidents from the scores CSV by plain loops: per-time-step max over covering windows, runs over the
    threshold, merged where at most ``gap`` quiet rows part them. Returns dicts of rows, peak, mean, top."""
    table = read_csv(scores_csv)
    point = np.full(n_rows, -np.inf)
    contrib = np.full((n_rows, len(features)), -np.inf)
    for w in table:
        s = int(w["start_row"])
        point[s: s + T] = np.maximum(point[s: s + T], float(w[f"score_{name}"]))
        contrib[s: s + T] = np.maximum(contrib[s: s + T], [float(w[f"contrib_{f}"]) for f in features])
    point[np.isinf(point)] = np.nan
    runs = []
    for r in range(n_rows):
        if point[r] > threshold:  # NaN (no window) is quiet
            if runs and r - runs[-1][1] - 1 <= gap:
                runs[-1][1] = r
            else:
                runs.append([r, r])
    out = []
    for a, b in runs:
        seg = point[a: b + 1]
        out.append({"start_row": a, "end_row": b, "peak_score": np.nanmax(seg), "peak_row": a + int(np.nanargmax(seg)),
                    "mean_score": np.nanmean(seg),
                    "top_feature": features[int(np.nansum(np.where(np.isinf(contrib[a: b + 1]), np.nan,
                                                                   contrib[a: b + 1]), axis=0).argmax())]})
    return out


@pytest.mark.parametrize("stride,gap", [(7, None), (7, 0), (40, None), (30, 200)])
def test_incidents_agree_with_a_brute_force_over_the_scores(run, tmp_path, capsys, stride, gap):
    rows = fault_rows()
    src = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "scores.csv"
    extra = [] if gap is None else ["--merge-gap", str(gap)]
    assert main.main([*run["argv"], "--input", str(src), "--output", str(out), "--stride", str(stride), *extra]) == 0
    printed = capsys.readouterr().out
    detector = run["detector"]
    threshold = detector.thresholds["reconstruction"]
    assert detector.score_names[0] == "reconstruction"
    gap = T if gap is None else gap  # the run's evaluation.incident_merge_gap is null: the window length
    expected = brute_force(out, detector.feature_names, len(rows) - 1, threshold, gap)
    found = read_csv(tmp_path / "scores.incidents.csv")
    assert expected and len(found) == len(expected)
    times = np.array([r[0] for r in rows[1:]], dtype="datetime64[s]")
    for number, (got, want) in enumerate(zip(found, expected, strict=True), start=1):
        assert int(got["incident"]) == number and got["score"] == "reconstruction"
        assert float(got["threshold"]) == pytest.approx(threshold, rel=1e-7)
        for key in ("start_row", "end_row", "peak_row"):
            assert int(got[key]) == want[key], key
        assert int(got["rows"]) == want["end_row"] - want["start_row"] + 1
        assert float(got["peak_score"]) == pytest.approx(want["peak_score"], rel=1e-7)
        assert float(got["mean_score"]) == pytest.approx(want["mean_score"], rel=1e-6)
        assert got["top_feature"] == want["top_feature"]
        assert got["start_time"] == rows[1 + want["start_row"]][0] and got["end_time"] == rows[1 + want["end_row"]][0]
        seconds = (times[want["end_row"]] - times[want["start_row"]]) / np.timedelta64(1, "s")
        assert float(got["duration_s"]) == pytest.approx(seconds)
    # the large one-sensor fault: an incident covers it, and names the sensor
    first = next(i for i in found if int(i["start_row"]) <= FAULTS[0][0] + 10 <= int(i["end_row"]))
    assert first["top_feature"] == "current"
    assert f"{len(found)} incident" in printed and str(tmp_path / "scores.incidents.csv") in printed
    unscored = ((len(rows) - 1 - T) // stride) * (stride - T)  # between consecutive windows, when stride > T
    assert (f"{unscored} rows between windows have no score" in printed) == (stride > T)


def test_the_default_merge_gap_is_the_window_length(run, tmp_path, capsys):
    """Faults in windows 10 and 12 (stride T): the alarmed rows 300-329 and 360-389 part by exactly T quiet rows."""
    src = write_csv(tmp_path / "in.csv", fault_rows(600, faults=((305, 315), (365, 375))))
    found = {}
    for gap in (None, T, T - 1):
        out = tmp_path / f"g{gap}.csv"
        extra = [] if gap is None else ["--merge-gap", str(gap)]
        assert main.main([*run["argv"], "--input", str(src), "--output", str(out), *extra]) == 0
        found[gap] = [(int(i["start_row"]), int(i["end_row"])) for i in read_csv(tmp_path / f"g{gap}.incidents.csv")]
        assert [int(w["alarm_reconstruction"]) for w in read_csv(out)][10:13] == [1, 0, 1]
        assert f"merged over gaps of up to {T if gap is None else gap} rows" in capsys.readouterr().out
    assert found[None] == found[T] and (300, 389) in found[T]
    assert (300, 329) in found[T - 1] and (360, 389) in found[T - 1]


def test_npy_rows_give_the_same_incidents_without_times(run, tmp_path):
    rows = fault_rows()
    src = write_csv(tmp_path / "in.csv", rows)
    assert main.main([*run["argv"], "--input", str(src), "--output", str(tmp_path / "c.csv")]) == 0
    header = rows[0]
    values = np.array([[float(r[header.index(f)]) for f in run["detector"].feature_names] for r in rows[1:]])
    np.save(tmp_path / "in.npy", values)
    assert main.main([*run["argv"], "--input", str(tmp_path / "in.npy"), "--output", str(tmp_path / "n.csv")]) == 0
    from_csv, from_npy = read_csv(tmp_path / "c.incidents.csv"), read_csv(tmp_path / "n.incidents.csv")
    assert from_csv and len(from_npy) == len(from_csv)
    for a, b in zip(from_csv, from_npy, strict=True):
        assert (a["start_row"], a["end_row"], a["top_feature"]) == (b["start_row"], b["end_row"], b["top_feature"])
        assert b["start_time"] == b["end_time"] == b["duration_s"] == "" and a["start_time"]


def test_an_existing_incidents_file_needs_overwrite(run, tmp_path, capsys):
    src = write_csv(tmp_path / "in.csv", fault_rows())
    out, incidents = tmp_path / "scores.csv", tmp_path / "scores.incidents.csv"
    incidents.write_text("mine\n")
    assert main.main([*run["argv"], "--input", str(src), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert re.search(r"scores\.incidents\.csv: exists; add --overwrite", err), err
    assert not out.exists() and incidents.read_text() == "mine\n"  # both checked before anything is written
    assert main.main([*run["argv"], "--input", str(src), "--output", str(out), "--overwrite"]) == 0
    assert out.exists() and incidents.read_text().startswith("incident,start_row,end_row")


def test_ready_windows_have_no_incidents_and_say_so(run, tmp_path, capsys):
    rows = fault_rows(300)
    header = rows[0]
    values = np.array([[float(r[header.index(f)]) for f in run["detector"].feature_names] for r in rows[1:]])
    np.save(tmp_path / "w.npy", values.reshape(-1, T, values.shape[1]))
    out = tmp_path / "w.csv"
    assert main.main([*run["argv"], "--input", str(tmp_path / "w.npy"), "--output", str(out)]) == 0
    assert "No incidents: ready windows (N, T, F) have no time axis" in capsys.readouterr().out
    assert out.exists() and not (tmp_path / "w.incidents.csv").exists()
    assert len(read_csv(out)) == len(values) // T


def test_a_negative_merge_gap_is_refused(run, tmp_path, capsys):
    src = write_csv(tmp_path / "in.csv", fault_rows(100))
    out = tmp_path / "s.csv"
    assert main.main([*run["argv"], "--input", str(src), "--output", str(out), "--merge-gap", "-1"]) == 2
    assert "--merge-gap: expected a number of rows >= 0, got -1" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("gap", [True, 2.5, "3", -1])
def test_a_merge_gap_from_python_that_is_no_row_count_is_refused(run, gap):
    """score_file and live_score take merge_gap from Python callers too: only a whole number >= 0 passes."""
    from agents.score_loop import IncidentStream
    from utils.core.errors import DataError

    with pytest.raises(DataError, match=re.escape(f"--merge-gap: expected a number of rows >= 0, got {gap!r}")):
        IncidentStream(run["detector"], gap)
