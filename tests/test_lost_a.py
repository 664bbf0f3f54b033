"""Issue "Nothing lost": values beyond float32 arithmetic, missing labels, exact p-values, misnamed checkpoint files,
output names, the report CLI, wide headers on a pipe and the memory guard under ``ulimit -v``."""
from __future__ import annotations

import csv
import io
import json
import logging
import re
import resource
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import main
from agents.detector.detector import Detector
from datasets.csv_reading import CsvStream
from datasets.csv_recordings import row_flags
from utils.core.errors import CheckpointError, DataError
from utils.runs.outputs import OutputError, check_output
from agents.detector.thresholds import conformal_p_values
from agents.detector.scaler import SCALED_LIMIT, Scaler

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tiny_runs) -> Path:
    return tiny_runs.of_model("vae")


@pytest.fixture(scope="module")
def scorer(run_dir):
    return [str(run_dir.parent / "tiny_vae.json"), "--mode", "score"]


def rows_csv(tmp_path: Path, cell: str | None = None) -> Path:
    """100 rows of the tiny run's three features; ``cell`` replaces 'current' in row 28 (line 30)."""
    rng = np.random.default_rng(0)
    rows = [[f"{48 + rng.normal():.3f}", f"{10 + rng.normal():.3f}", f"{42 + rng.normal():.3f}"] for _ in range(100)]
    if cell is not None:
        rows[28][1] = cell
    path = tmp_path / "new.csv"
    path.write_text("voltage,current,temperature\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


def refused(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1, err
    return err


# ----- 1. values beyond the model's float32 arithmetic --------------------------------------------------------
@pytest.mark.parametrize("value", ["1e30", "1e20", "-1e30"])
def test_score_file_refuses_overflowing_values_naming_the_cell(scorer, tmp_path, capsys, value):
    out = tmp_path / "scores.csv"
    err = refused(capsys, main.main([*scorer, "--input", str(rows_csv(tmp_path, value)), "--output", str(out)]))
    assert f"new.csv: row 28 (line 30), column 'current': value {float(value):.6g}, scaled" in err
    assert f"beyond +-{SCALED_LIMIT:.0e}" in err
    assert not out.exists() and not list(tmp_path.glob(".scores.csv.*"))


def test_score_npy_rows_refuses_overflowing_values(scorer, tmp_path, capsys):
    array = np.ones((60, 3)) * 10
    array[41, 2] = -1e30
    np.save(tmp_path / "new.npy", array)
    err = refused(capsys, main.main([*scorer, "--input", str(tmp_path / "new.npy"), "--output",
                                     str(tmp_path / "s.csv")]))
    assert "new.npy: row 41, column 'temperature': value -1e+30, scaled" in err


def test_detector_score_refuses_instead_of_inf(run_dir):
    detector = Detector.load(run_dir)
    windows = np.full((2, detector.window_length, 3), 10.0)
    assert np.isfinite(detector.score(windows)["reconstruction"]).all()
    for value in (1e30, 1e20, -1e30):
        windows[1, 3, 1] = value
        with pytest.raises(DataError, match=r"window 1, time step 3, feature 'current': .*float32"):
            detector.score(windows)


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_scaler_warns_when_one_value_collapses_a_feature():
    kept, logger = _Kept(), logging.getLogger("anomaly")
    logger.addHandler(kept)
    try:
        x = np.random.default_rng(0).normal(size=(40, 10, 2))
        Scaler("minmax").fit(x, ["voltage", "current"])
        assert kept.messages == []
        x[5, 3, 1] = 1e14
        Scaler("minmax").fit(x, ["voltage", "current"])
    finally:
        logger.removeHandler(kept)
    assert len(kept.messages) == 1 and "feature 'current': a value of 1e+14" in kept.messages[0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("value", [1e30, -1e30, 1e20, 3e38])
def test_a_training_value_too_far_out_for_any_scale_is_refused_naming_the_sensor(value, dtype):
    """float32 windows too (the loaders' own): their spread is measured without float32 arithmetic overflowing."""
    x = np.random.default_rng(0).normal(size=(40, 10, 2)).astype(dtype)
    x[5, 3, 1] = value
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow on the way
        with pytest.raises(DataError, match=re.escape(f"training data, feature 'current': a value of {value:.6g} "
                                                      "lies ") + ".* times the spread of the other values"):
            Scaler("minmax").fit(x, ["voltage", "current"])


def test_a_sensor_at_float32s_extremes_is_scaled_without_overflow():
    """A two-level sensor written as 3e38, and -3e38 in 1 % of its rows (float32 windows, as the loaders give): its
    central spread straddles both levels and is measured without float32 arithmetic, so no overflow warning
    reaches the user, and its scale spans both levels."""
    x = np.random.default_rng(0).normal(size=(40, 10, 2)).astype(np.float32)
    x[:, :, 1] = np.where(np.arange(400).reshape(40, 10) < 4, -3e38, 3e38)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaler = Scaler("minmax").fit(x, ["voltage", "current"])
    assert scaler.scale[1] == pytest.approx(6e38, rel=1e-6)


def test_training_value_beyond_float32_arithmetic_once_scaled_is_refused():
    scaler = Scaler("minmax").fit(np.zeros((4, 5, 2)) + np.arange(2))
    with pytest.raises(DataError, match="window 1, time step 2, feature 0: scaled .* 1e\\+20"):
        scaler.transform(np.where(np.arange(3 * 5 * 2).reshape(3, 5, 2) == 14, 1e20, 0.5))


# ----- 2. labels that say "missing" -----------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["nan", "NaN", "null", "None", "?", " NA "])
def test_missing_label_is_refused_naming_row_and_column(cell):
    texts = np.array([["0", ""], ["1", "0"], ["0", cell]])
    with pytest.raises(DataError) as err:
        row_flags(texts, ["label", "fault"], "in.csv", np.array([2, 3, 5]))
    assert str(err.value).startswith(f"in.csv: row 2 (line 5), column 'fault': label {cell!r} marks a missing label")
    assert "valid labels: empty, 0, normal, false, no or ok for a normal row" in str(err.value)


def test_blank_and_zero_labels_stay_normal():
    labels, kinds = row_flags(np.array([[""], ["0"], ["0.0"], ["Normal"], ["1"], ["overheat"]]))
    assert labels.tolist() == [0, 0, 0, 0, 1, 1] and kinds[-1] == "overheat"


def test_boolean_words_and_spaced_or_signed_zeros_are_read_as_users_write_them():
    """"False" or "no" counted as an anomaly kind made every row of such a file anomalous."""
    cells = ["False", "false", "NO", "ok", " 0", "0 ", "-0", "0.00", "0,0", "True", "yes", "2", "1,0", " overheat "]
    labels, kinds = row_flags(np.array([[c] for c in cells]))
    assert labels.tolist() == [0] * 9 + [1] * 5
    assert kinds.tolist() == ["normal"] * 9 + ["anomaly"] * 4 + ["overheat"]


# ----- 3. p-values and scores written exactly -------------------------------------------------------------------
def test_alarms_recompute_exactly_from_the_scores_csv(scorer, run_dir, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    assert main.main([*scorer, "--input", str(rows_csv(tmp_path)), "--output", str(out), "--stride", "1"]) == 0
    detector = Detector.load(run_dir)
    bounds = {n: r["false_alarm"]["bound"]
              for n, r in json.loads((run_dir / "out" / "metrics.json").read_text())["scores"].items()}
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 76
    for name, threshold in detector.thresholds.items():
        scores = np.array([float(r[f"score_{name}"]) for r in rows])
        p_values = np.array([float(r[f"pvalue_{name}"]) for r in rows])
        alarms = np.array([int(r[f"alarm_{name}"]) for r in rows])
        assert ((scores > threshold).astype(int) == alarms).all()
        assert ((p_values <= bounds[name]).astype(int) == alarms).all()
        assert (conformal_p_values(detector.calibration[name], scores) == p_values).all()


# ----- 4. files that are no checkpoint ----------------------------------------------------------------------------
def test_load_names_what_a_file_is_instead_of_a_checkpoint(run_dir, tmp_path):
    torch.jit.trace(torch.nn.Linear(2, 2), torch.zeros(1, 2)).save(str(tmp_path / "model.pt"))
    (tmp_path / "x.pt").write_text("voltage,current\n1,2\n")
    cases = {tmp_path / "model.pt": "an exported model (TorchScript), not a run's best.pt; load it with torch.jit.load",
             tmp_path / "x.pt": "a text file (CSV or other text), not a checkpoint written by this project",
             run_dir / "config.json": "a text file (JSON), not a checkpoint written by this project"}
    for path, fragment in cases.items():
        with pytest.raises(CheckpointError) as err:
            Detector.load(path)
        assert str(err.value).startswith(f"{path}: {fragment}")


# ----- 5. the name suggested for a folder given as --output --------------------------------------------------------
def test_folder_output_suggests_a_name_fitting_what_is_written(scorer, tmp_path, capsys):
    err = refused(capsys, main.main([scorer[0], "--mode", "export", "--format", "onnx", "--output", str(tmp_path)]))
    assert f"e.g. {tmp_path / 'model.onnx'}" in err
    with pytest.raises(OutputError, match="scores.incidents.csv"):
        check_output(tmp_path, option="--incidents", example="scores.incidents.csv")


# ----- 6. the report CLI ------------------------------------------------------------------------------------------
def report(run: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "utils.figures.report", str(run)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_report_cli_answers_a_missing_or_broken_run(tmp_path):
    (tmp_path / "run" / "out").mkdir(parents=True)
    (tmp_path / "run" / "config.json").write_text("{}")
    checks = [(tmp_path / "nothing", "no such run folder"), (tmp_path / "run", "metrics.json: not found")]
    for run, fragment in checks:
        proc = report(run)
        assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    (tmp_path / "run" / "out" / "metrics.json").write_text("{broken")
    proc = report(tmp_path / "run")
    assert proc.returncode == 2 and "not readable JSON" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "out" / "report.md").exists()


# ----- 7. a 100,000-column header on a pipe ------------------------------------------------------------------------
def test_wide_header_on_a_pipe_is_read_whole():
    """A header longer than a data line may be (MAX_LINE_CHARS) is read from a pipe as from a file (up to 16 MiB)."""
    header = [f"column_{i}" for i in range(100_000)]  # 1.2 million characters
    data = (",".join(header) + "\n" + ",".join(["1.5"] * len(header)) + "\n").encode()
    stream = CsvStream(io.BufferedReader(io.BytesIO(data)), read_bytes=4096)
    assert stream.read_header() == header
    (block,) = stream.blocks(header, ["column_0", "column_99999"])
    assert block.values.tolist() == [[1.5, 1.5]] and block.line_nos.tolist() == [2]


# ----- 8. the memory guard under ulimit -v -------------------------------------------------------------------------
def test_memory_guard_takes_the_address_space_limit(tmp_path):
    limit = 3 << 30

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.run([sys.executable, "main.py", "configs/vae_converter.json", "--set", "data.n_samples=1500000",
                           "--set", "data.time_steps=25", "--set", f"experiments_dir={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, preexec_fn=cap,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "the simulated windows would need about" in proc.stderr and "of memory available" in proc.stderr
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr


def test_a_run_names_the_file_row_and_sensor_of_a_test_value_beyond_its_arithmetic(tmp_path, capsys):
    """1e30 in the test part of a recording: the run stops before training, naming the file, its row and the sensor."""
    rng = np.random.default_rng(0)
    lines = ["timestamp,voltage,current,temperature,label"]
    for i in range(300):
        current = "1e30" if i == 250 else f"{10 + rng.normal():.3f}"
        lines.append(f"2024-05-01T08:{i // 60:02d}:{i % 60:02d},{48 + rng.normal():.3f},{current},"
                     f"{42 + rng.normal():.3f},0")
    path = tmp_path / "rec.csv"
    path.write_text("\n".join(lines) + "\n")
    code = main.main([str(ROOT / "configs" / "example_csv.json"), "--set", f"data.path={path}", "--set",
                      "data.window_length=10", "--set", "data.stride=1", "--set", "data.test_fraction=null", "--set",
                      "data.train_end=200",
                      "--set", "trainer.epochs=1", "--set", f"experiments_dir={tmp_path / 'exp'}", "--set",
                      "trainer.progress_bar=false"])
    err = refused(capsys, code)
    assert f"{path}: row 250, sensor 'current': scaled by the run's training range it is" in err


def test_detector_score_names_the_trained_shape_and_refuses_nan(run_dir):
    detector = Detector.load(run_dir)
    t = detector.window_length
    with pytest.raises(ValueError, match=rf"windows \(features voltage, current, temperature\) must have shape "
                                         rf"\(N, {t}, 3\), got \(2, {t + 1}, 3\)"):
        detector.score(np.zeros((2, t + 1, 3)))
    windows = np.zeros((2, t, 3))
    windows[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"holds NaN or inf \(1 NaN and 0 infinite"):
        detector.score(windows)
