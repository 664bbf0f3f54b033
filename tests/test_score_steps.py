"""--mode score --per-step: one row per time step, the same bytes from a file and a pipe; --baselines."""
from __future__ import annotations

import csv
import io
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import main
from agents.detector.detector import Detector
from agents.score_files import live_score
from agents.score_loop import Scoring
from tests.helpers import REPO_ROOT
from tests.test_score_incidents import (
    CSV_RUN,
    EXAMPLE,
    FAULTS,
    T,
    fault_rows,
    read_csv,
    write_csv,
)
from agents.detector.thresholds import conformal_p_values

N_ROWS = 200


@pytest.fixture(scope="module")
def run(tiny_runs):
    run_dir = tiny_runs.of_config(*CSV_RUN)
    return {"dir": run_dir, "argv": [str(run_dir / "config.json"), "--mode", "score"],
            "detector": Detector.load(run_dir, device="cpu")}


def score(run, src, out, *extra):
    assert main.main([*run["argv"], "--input", str(src), "--output", str(out), *extra]) == 0
    return read_csv(out)


def test_one_row_per_time_step_the_max_of_the_windows_covering_it(run, tmp_path, capsys):
    rows = fault_rows(N_ROWS, faults=((100, 110),))
    src = write_csv(tmp_path / "in.csv", rows)
    steps = score(run, src, tmp_path / "steps.csv", "--per-step")
    windows = score(run, src, tmp_path / "windows.csv", "--stride", "1")
    detector = run["detector"]
    names, features = detector.score_names, detector.feature_names
    assert list(steps[0]) == ["row", "time", *[f"score_{n}" for n in names], *[f"alarm_{n}" for n in names],
                              *[f"pvalue_{n}" for n in names], "top_feature"]
    assert [int(s["row"]) for s in steps] == list(range(N_ROWS))
    assert [s["time"] for s in steps] == [r[0] for r in rows[1:]]
    assert [int(w["start_row"]) for w in windows] == list(range(N_ROWS - T + 1))
    for name in names:  # by plain loops over the per-window output: each row's covering windows
        brute = [max(float(w[f"score_{name}"]) for w in windows[max(0, r - T + 1): r + 1]) for r in range(N_ROWS)]
        got = np.array([float(s[f"score_{name}"]) for s in steps])
        np.testing.assert_allclose(got, brute, rtol=2e-5)
        threshold = detector.thresholds[name]
        assert [int(s[f"alarm_{name}"]) for s in steps] == [int(v > threshold) for v in got]
        np.testing.assert_allclose([float(s[f"pvalue_{name}"]) for s in steps],
                                   conformal_p_values(detector.calibration[name], got), rtol=1e-5)
    contrib = np.array([[float(w[f"contrib_{f}"]) for f in features] for w in windows])
    top = [features[int(np.max(contrib[max(0, r - T + 1): r + 1], axis=0).argmax())] for r in range(N_ROWS)]
    assert [s["top_feature"] for s in steps] == top
    assert steps[105]["alarm_reconstruction"] == "1" and steps[105]["top_feature"] == "current"
    assert read_csv(tmp_path / "steps.incidents.csv")  # the fault is an incident
    assert f"one row per time step: {N_ROWS} time steps, each the max" in capsys.readouterr().out


class Reads(io.BytesIO):
    """Standard input that hands out ``chunks`` one per read and records how many lines were written before each."""

    def __init__(self, chunks: list[bytes], out: io.StringIO) -> None:
        super().__init__(b"".join(chunks))
        self.sizes, self.out, self.lines_before = [len(c) for c in chunks], out, []

    def read1(self, n=-1):
        self.lines_before.append(self.out.getvalue().count("\n"))
        return super().read1(self.sizes.pop(0) if self.sizes else 0)


@pytest.mark.parametrize("stride", [None, 7])
def test_a_pipe_writes_each_time_step_once_final_and_the_bytes_of_the_file(run, tmp_path, stride):
    """Rows piped 13 at a time: before each read, every time step no later window can cover is written; at the end
    the same bytes as the file (stride 7 over 200 rows: a last window at row 170 covers the end)."""
    rows = fault_rows(N_ROWS)
    src = write_csv(tmp_path / "in.csv", rows)
    extra = ["--stride", str(stride)] if stride else ["--baselines"]
    score(run, src, tmp_path / "file.csv", "--per-step", *extra)
    lines = src.read_bytes().splitlines(keepends=True)
    chunks = [lines[0], *[b"".join(lines[i: i + 13]) for i in range(1, len(lines), 13)]]
    out = io.StringIO(newline="")
    stdin = Reads(chunks, out)
    summary = live_score(run["detector"], "-", "-", stride=stride, stdin=stdin, stdout=out, stderr=io.StringIO(),
                         per_step=True, incidents_path=str(tmp_path / "live.incidents.csv"), baselines=not stride)
    assert out.getvalue().encode() == (tmp_path / "file.csv").read_bytes()
    assert (tmp_path / "live.incidents.csv").read_bytes() == (tmp_path / "file.incidents.csv").read_bytes()
    step = stride or 1
    read = [min(13 * k, N_ROWS) for k in range(len(chunks))]  # rows read before the (k+1)-th data read
    final = [0 if r < T else (r - T) // step * step + 1 for r in read]  # rows before the last window's next start
    assert stdin.lines_before[1: len(chunks) + 1] == [1 + f for f in final]  # 1: the header
    assert summary["windows"] == len(range(0, N_ROWS - T + 1, step)) + (stride == 7)


@pytest.mark.slow  # a python + torch start (10-20 s on a busy machine); the same loop in-process is tested above
def test_cat_into_the_pipe_gives_the_bytes_of_the_file(run, tmp_path):
    src = write_csv(tmp_path / "in.csv", fault_rows(N_ROWS, faults=((100, 110),)))
    score(run, src, tmp_path / "file.csv", "--per-step", "--baselines")
    command = (f"cat {shlex.quote(str(src))} | {shlex.quote(sys.executable)} main.py {shlex.quote(run['argv'][0])} "
               f"--mode score --input - --output {shlex.quote(str(tmp_path / 'pipe.csv'))} --per-step --baselines")
    done = subprocess.run(["bash", "-c", command], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pipe.csv").read_bytes() == (tmp_path / "file.csv").read_bytes()
    assert (tmp_path / "pipe.incidents.csv").read_bytes() == (tmp_path / "file.incidents.csv").read_bytes()


def test_baselines_score_the_test_stream_as_the_run_did(run, tmp_path):
    """The run's test stretch scored per step with the run's windows (stride 30, a last window at the end) gives
    back out/stream_scores.csv: the model's and the baselines' scores and alarms, the timestamps."""
    expected = read_csv(run["dir"] / "out" / "stream_scores.csv")
    first, last = int(expected[0]["row"]), int(expected[-1]["row"])
    with open(EXAMPLE, newline="") as handle:
        rows = list(csv.reader(handle))
    src = write_csv(tmp_path / "stretch.csv", [rows[0], *rows[1 + first: 2 + last]])
    got = score(run, src, tmp_path / "steps.csv", "--per-step", "--stride", str(T), "--baselines")
    assert len(got) == len(expected) == last - first + 1
    score_columns = [k for k in expected[0] if k.startswith("score_")]
    assert len(score_columns) == len(run["detector"].score_names) + 3 and "score_kNN distance (k=5)" in score_columns
    assert [k for k in got[0] if k.startswith(("score_", "alarm_"))] == [k for k in expected[0]
                                                                        if k.startswith(("score_", "alarm_"))]
    for key in score_columns:  # the run scored float32-scaled windows, --mode score float64 ones
        np.testing.assert_allclose([float(g[key]) for g in got], [float(e[key]) for e in expected], rtol=1e-4)
        alarm = key.replace("score_", "alarm_", 1)
        assert [g[alarm] for g in got] == [e[alarm] for e in expected], alarm
    assert [g["time"] for g in got] == [e["time"] for e in expected]
    best = torch.load(run["dir"] / "checkpoints" / "best.pt", weights_only=True)
    assert len(best["baselines"]["knn"]["reference"]) <= 5000
    for name, fields in best["baselines"].items():
        assert all(isinstance(v, (torch.Tensor, int, float, list)) for v in fields.values()), name


def test_baselines_of_a_run_that_predates_them_exit_2(run, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(run["dir"], old)
    best = torch.load(old / "checkpoints" / "best.pt", weights_only=True)
    del best["baselines"]
    torch.save(best, old / "checkpoints" / "best.pt")
    src = write_csv(tmp_path / "in.csv", fault_rows(60))
    argv = [str(run["dir"] / "config.json"), "--set", f"experiments_dir={tmp_path}", "--set", "exp_name=old",
            "--mode", "score", "--input", str(src)]
    for output in (str(tmp_path / "s.csv"), "-"):
        assert main.main([*argv, "--output", output, "--baselines"]) == 2
        err = capsys.readouterr().err
        assert "error: --baselines: this run's best.pt holds no fitted baselines: the run predates --baselines" in err
    assert not (tmp_path / "s.csv").exists()
    assert main.main([*argv, "--output", str(tmp_path / "s.csv")]) == 0  # without the flag it scores as before


@pytest.mark.parametrize("make,message", [
    (lambda d: np.save(d / "w.npy", np.zeros((3, T, 3))) or d / "w.npy",
     "holds ready windows (N, T, F), which have no time steps; --per-step scores (rows, F) time steps or a CSV"),
    (lambda d: write_csv(d / "in.csv", fault_rows(60)),
     f"--stride {T + 1} with --per-step: windows {T + 1} rows apart leave rows between them without a score"),
])
def test_per_step_refuses_what_has_no_score_per_time_step(run, tmp_path, capsys, make, message):
    src = make(tmp_path)
    extra = ["--stride", str(T + 1)] if src.suffix == ".csv" else []
    assert main.main([*run["argv"], "--input", str(src), "--output", str(tmp_path / "o.csv"), "--per-step",
                      *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_the_fault_rows_are_alarmed_per_step(run, tmp_path):
    """The +20 A fault of rows 400-459: its time steps alarm on the reconstruction score and name the sensor."""
    steps = score(run, write_csv(tmp_path / "in.csv", fault_rows(600)), tmp_path / "s.csv", "--per-step")
    start, end = FAULTS[0]
    inside = steps[start: end]
    assert all(s["alarm_reconstruction"] == "1" and s["top_feature"] == "current" for s in inside)


def test_adaptive_thresholds_alarm_where_the_p_value_is_at_most_the_level_from_file_and_pipe(run, tmp_path):
    """evaluation.threshold_adapt_rate set at scoring: each alarm is Gibbs & Candes' rule on the written p-values
    (p <= level, then level += gamma (alpha - alarm)), and a pipe writes the bytes of the file."""
    gamma = 0.2
    src = write_csv(tmp_path / "in.csv", fault_rows(N_ROWS, faults=((60, 140),)))
    steps = score(run, src, tmp_path / "file.csv", "--per-step", "--baselines",
                  "--set", f"evaluation.threshold_adapt_rate={gamma}")
    detector = Detector.load(run["dir"], device="cpu")
    detector.config["evaluation"]["threshold_adapt_rate"] = gamma
    alpha = detector.false_alarm_rate
    scoring = Scoring(detector, baselines=True)
    thresholds = scoring.thresholds
    differ = 0
    for name in [c[len("pvalue_"):] for c in steps[0] if c.startswith("pvalue_")]:
        # the level starts at the calibrated threshold's: alpha, or 1/(n+1) for too few calibration scores
        level, expected = max(alpha, 1.0 / (len(scoring.calibration[name]) + 1)), []
        for s in steps:
            expected.append(int(float(s[f"pvalue_{name}"]) <= level))
            level += gamma * (alpha - expected[-1])
        assert [int(s[f"alarm_{name}"]) for s in steps] == expected, name
        differ += sum(int(s[f"alarm_{name}"]) != (float(s[f"score_{name}"]) > thresholds[name]) for s in steps)
    assert differ > 0  # it did not keep the calibrated thresholds
    out = io.StringIO(newline="")
    live_score(detector, "-", "-", stdin=io.BytesIO(src.read_bytes()), stdout=out, stderr=io.StringIO(),
               per_step=True, incidents_path=str(tmp_path / "live.incidents.csv"), baselines=True)
    assert out.getvalue().encode() == (tmp_path / "file.csv").read_bytes()
    assert (tmp_path / "live.incidents.csv").read_bytes() == (tmp_path / "file.incidents.csv").read_bytes()


def test_per_step_on_fewer_rows_than_a_window_exits_2_from_file_and_pipe(run, tmp_path, capsys):
    """No window fits: nothing is scored (no partial window), as in window mode."""
    src = write_csv(tmp_path / "in.csv", fault_rows(T - 1))
    assert main.main([*run["argv"], "--input", str(src), "--output", str(tmp_path / "o.csv"), "--per-step"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{T - 1} row" in err and not (tmp_path / "o.csv").exists()
    piped = subprocess.run([sys.executable, "main.py", *run["argv"], "--input", "-", "--output", "-", "--per-step"],
                           input=src.read_bytes(), capture_output=True, cwd=REPO_ROOT, timeout=120)
    assert piped.returncode == 2 and b"Traceback" not in piped.stderr and f"{T - 1} rows".encode() in piped.stderr
    assert piped.stdout.count(b"\n") <= 1  # the live header at most, no scored row


def test_point_aggregation_and_merge_gap_set_at_scoring_time_are_applied(run, tmp_path, capsys):
    rows = fault_rows(N_ROWS, faults=((100, 110),))
    src = write_csv(tmp_path / "in.csv", rows)
    windows = score(run, src, tmp_path / "windows.csv", "--stride", "1")
    steps = score(run, src, tmp_path / "steps.csv", "--per-step", "--set", "evaluation.point_aggregation=min",
                  "--set", "evaluation.incident_merge_gap=0")
    name = run["detector"].score_names[0]
    by_start = np.array([float(w[f"score_{name}"]) for w in windows])
    got = np.array([float(s[f"score_{name}"]) for s in steps])
    brute = [by_start[max(0, i - T + 1): i + 1].min() for i in range(N_ROWS)]  # the windows covering row i
    np.testing.assert_allclose(got, brute, rtol=2e-5)
    assert "time steps take the min of their windows; merged over gaps of up to 0 rows" in capsys.readouterr().out


@pytest.mark.parametrize("setting", ["evaluation.baselines=[]", "evaluation.scores=[\"reconstruction\"]",
                                     "evaluation.scaler=none"])
def test_a_set_of_what_the_run_calibrated_is_refused_at_scoring_time(run, tmp_path, capsys, setting):
    src = write_csv(tmp_path / "in.csv", fault_rows(N_ROWS))
    assert main.main([*run["argv"], "--input", str(src), "--output", str(tmp_path / "o.csv"), "--set", setting]) == 2
    err = capsys.readouterr().err
    assert f"--set {setting.partition('=')[0]}=" in err and "drop this --set, or train a new run" in err
    assert not (tmp_path / "o.csv").exists()
