"""python main.py CONFIG --mode score: a tiny real VAE run scores CSV and NPY files like the run itself."""
from __future__ import annotations


import numpy as np
import pytest
import torch

import main
from agents.detector.detector import Detector
from agents.score_files import score_file
from datasets.converter import SENSORS
from tests.helpers import FAST_VAE, REPO_ROOT, run_main, run_test_split

CONFIG = str(REPO_ROOT / "configs" / "vae_converter.json")
SCORES = ("reconstruction", "latent_euclidean", "latent_mahalanobis")
T = 25



@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished tiny run plus its test windows (raw) and their scores from out/scores.csv."""
    root = tmp_path_factory.mktemp("score")
    assert run_main("vae_converter.json", root, *FAST_VAE, f"data.time_steps={T}", "exp_name=s",
                    "evaluation.make_plots=false") == 0
    test = run_test_split(root / "s")
    table = np.genfromtxt(root / "s" / "out" / "scores.csv", delimiter=",", names=True, dtype=None, encoding="utf-8")
    return {"root": root, "dir": root / "s", "x": test.x, "table": table,
            "argv": [CONFIG, "--set", f"experiments_dir={root}", "--set", "exp_name=s", "--mode", "score"]}


def write_rows_csv(path, rows, header=SENSORS):
    np.savetxt(path, rows, delimiter=",", header=",".join(header), comments="", fmt="%.9g")
    return path


def read_scores(path):
    return np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf-8")


def test_csv_rows_score_like_the_run(run, tmp_path, capsys):
    """The test windows laid end to end as a CSV give back the run's own test scores."""
    rows = run["x"].reshape(-1, 3)
    src = write_rows_csv(tmp_path / "new.csv", rows[:, [2, 0, 1]], header=[SENSORS[2], SENSORS[0], SENSORS[1]])
    out = tmp_path / "scores.csv"
    assert main.main([*run["argv"], "--input", str(src), "--output", str(out)]) == 0
    table = read_scores(out)
    assert list(table.dtype.names) == ["window", "start_row", *[f"score_{n}" for n in SCORES],
                                       *[f"alarm_{n}" for n in SCORES], *[f"pvalue_{n}" for n in SCORES],
                                       *[f"contrib_{s}" for s in SENSORS], "top_feature"]
    n = len(run["x"])
    np.testing.assert_array_equal(table["window"], np.arange(n))
    np.testing.assert_array_equal(table["start_row"], np.arange(n) * T)
    thresholds = torch.load(run["dir"] / "checkpoints" / "best.pt", weights_only=True)["scoring"]["thresholds"]
    for name in SCORES:
        np.testing.assert_allclose(table[f"score_{name}"], run["table"][f"score_{name}"], rtol=1e-5)
        np.testing.assert_array_equal(table[f"alarm_{name}"], (table[f"score_{name}"] > thresholds[name]).astype(int))
        np.testing.assert_allclose(table[f"pvalue_{name}"], run["table"][f"pvalue_{name}"], rtol=1e-5)
    contrib = np.stack([table[f"contrib_{s}"] for s in SENSORS], axis=1)
    np.testing.assert_allclose(contrib.mean(axis=1), table["score_reconstruction"], rtol=1e-5)
    np.testing.assert_array_equal(table["top_feature"], np.asarray(SENSORS)[contrib.argmax(axis=1)])
    printed = capsys.readouterr().out
    assert f"Scored {n} windows of {T} steps" in printed and "alarm_reconstruction:" in printed


def test_npy_windows_and_rows_and_stride(run, tmp_path):
    n = len(run["x"])
    windows = tmp_path / "w.npy"
    np.save(windows, run["x"])
    out = tmp_path / "w.csv"
    assert main.main([*run["argv"], "--input", str(windows), "--output", str(out)]) == 0
    table = read_scores(out)
    np.testing.assert_allclose(table["score_latent_mahalanobis"], run["table"]["score_latent_mahalanobis"], rtol=1e-5)
    rows = tmp_path / "r.npy"
    np.save(rows, run["x"].reshape(-1, 3)[: 10 * T + 7])
    out = tmp_path / "r.csv"
    assert main.main([*run["argv"], "--input", str(rows), "--output", str(out), "--stride", "7"]) == 0
    table = read_scores(out)
    expected = np.arange(0, 10 * T + 7 - T + 1, 7)
    np.testing.assert_array_equal(table["start_row"], expected)
    # windows starting at rows 0 and 7 * T are the run's test windows 0 and 7
    np.testing.assert_allclose(table["score_reconstruction"][[0, T]], run["table"]["score_reconstruction"][[0, 7]],
                               rtol=1e-5)
    assert n > 10


def test_chunked_reading_gives_the_same_scores(run, tmp_path):
    detector = Detector.load(run["dir"], device="cpu")
    src = write_rows_csv(tmp_path / "in.csv", run["x"].reshape(-1, 3)[: 30 * T + 5])
    one = score_file(detector, src, tmp_path / "one.csv", stride=3, chunk_rows=10**6)
    many = score_file(detector, src, tmp_path / "many.csv", stride=3, chunk_rows=7, batch=5)
    assert one["windows"] == many["windows"] == (30 * T + 5 - T) // 3 + 1
    assert many["rows"] == 30 * T + 5 and many["rows_not_scored"] == (30 * T + 5 - T) % 3
    a, b = read_scores(tmp_path / "one.csv"), read_scores(tmp_path / "many.csv")
    np.testing.assert_array_equal(a["start_row"], b["start_row"])
    for name in SCORES:  # batches of 5 instead of 4096 windows: float32 round-off only
        np.testing.assert_allclose(a[f"score_{name}"], b[f"score_{name}"], rtol=1e-4)


def test_a_faulty_sensor_raises_the_alarm_and_is_named(run, tmp_path):
    windows = run["x"][:6].copy()
    windows[3, :, 1] += 20.0  # +20 A on the current sensor (100 noise stds) in window 3 only
    src = tmp_path / "fault.npy"
    np.save(src, windows.reshape(-1, 3))
    out = tmp_path / "fault.csv"
    assert main.main([*run["argv"], "--input", str(src), "--output", str(out)]) == 0
    table = read_scores(out)
    assert table["alarm_reconstruction"][3] == 1 and table["top_feature"][3] == "current"
    assert table["score_reconstruction"][3] > 5 * np.delete(table["score_reconstruction"], 3).max()


@pytest.mark.parametrize("make,message", [
    (lambda p, x: write_rows_csv(p / "in.csv", x[:, :2], header=SENSORS[:2]),
     r"in.csv: line 1: missing column\(s\) \['temperature'\]"),
    (lambda p, x: write_rows_csv(p / "in.csv", np.c_[x, x[:, 0]], header=[*SENSORS, "pressure"]),
     r"unexpected column\(s\) \['pressure'\]"),
    (lambda p, x: (write_rows_csv(p / "in.csv", np.where(np.arange(len(x))[:, None] == 45, [[1, np.nan, 1]], x))),
     r"in.csv: row 45 \(line 47\), column 'current': value is NaN"),
    (lambda p, x: (np.save(p / "in.npy", x[:200].reshape(-1, 10, 3)), p / "in.npy")[1],
     rf"windows of 10 time steps, but the model was trained on windows of {T}"),
    (lambda p, x: (np.save(p / "in.npy", x[:, :2]), p / "in.npy")[1], r"shape \(\d+, 2\); expected \(rows, 3\)"),
    (lambda p, x: write_rows_csv(p / "in.csv", x[: T - 1]), rf"{T - 1} rows, fewer than one window of {T} rows"),
    (lambda p, x: (p / "in.parquet").write_text("x") and p / "in.parquet", "unknown input type '.parquet'"),
])
def test_bad_input_exits_2_naming_the_problem(run, tmp_path, capsys, make, message):
    src = make(tmp_path, run["x"].reshape(-1, 3).astype(np.float64))
    out = tmp_path / "out.csv"
    assert main.main([*run["argv"], "--input", str(src), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert __import__("re").search(message, err), err
    assert not out.exists() and not list(tmp_path.glob(".out.csv.*"))


def test_score_needs_input_and_output_and_a_finished_run(run, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main.main([*run["argv"], "--output", str(tmp_path / "o.csv")])
    assert exc.value.code == 2 and "--mode score needs --input" in capsys.readouterr().err
    argv = [CONFIG, "--set", f"experiments_dir={tmp_path}", "--mode", "score", "--input", "x.csv", "--output", "o.csv"]
    assert main.main(argv) == 2
    assert "best.pt: checkpoint not found; train the run first" in capsys.readouterr().err
