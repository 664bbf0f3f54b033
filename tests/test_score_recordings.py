"""--mode score of a run normalised per recording (SKAB-like): declared columns, separator, the reference rows.

One tiny run over three ``;``-separated recordings at other offsets (datetime, anomaly, changepoint columns,
``data.normalize=per_recording``) is trained once for the module.
"""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

import main
from agents.detector.detector import Detector
from agents.score_files import live_score
from agents.score_loop import recording_reference
from utils.core.errors import CheckpointError
from utils.runs.checkpoints import load_checkpoint

SENSORS = ["pressure", "flow", "temp"]
COLUMNS = ["datetime", *SENSORS, "anomaly", "changepoint"]
TRAIN_END, T, ROWS = 120, 10, 200
OFFSETS = [(0.0, 0.0, 0.0), (50.0, -20.0, 300.0), (-5.0, 8.0, 60.0)]  # each recording's level per sensor
SCALES = [1.0, 3.0, 0.5]
SCORES = ["reconstruction", "latent_mahalanobis", "latent_mahalanobis_recording"]
TRAINING_ROWS = TRAIN_END - round(0.3 * TRAIN_END)  # before each recording's validation stretch (val_fraction 0.3)


def recording(index: int) -> list[list[str]]:
    """Header and rows of one recording: its own level and spread, one labelled anomaly after TRAIN_END."""
    rng = np.random.default_rng(index)
    t = np.arange(ROWS)
    base = np.column_stack([np.sin(t / 7), np.cos(t / 11), np.sin(t / 5 + 1)]) + 0.1 * rng.standard_normal((ROWS, 3))
    values = np.asarray(OFFSETS[index]) + SCALES[index] * base
    anomaly = np.zeros(ROWS, dtype=int)
    anomaly[150:165] = 1
    values[150:165, 0] += 4 * SCALES[index]
    if index == 2:
        anomaly[30:40] = 1  # labelled rows inside the training part: left out of its reference (train_labels=exclude)
    changepoint = np.zeros(ROWS, dtype=int)
    changepoint[150] = changepoint[165] = 1
    rows_out = [COLUMNS]
    for i in range(ROWS):
        stamp = f"2020-03-09 10:{i // 60:02d}:{i % 60:02d}"
        rows_out.append([stamp, *[f"{v:.6f}" for v in values[i]], str(anomaly[i]), str(changepoint[i])])
    return rows_out


def write(path, rows, separator=";"):
    with open(path, "w", newline="") as handle:
        csv.writer(handle, delimiter=separator).writerows(rows)
    return path


def train(root, normalize):
    """A tiny run over the three recordings, normalised as ``normalize`` says; its folder, files and detector."""
    files = [write(root / f"rec{i}.csv", recording(i)) for i in range(3)]
    config = {
        "exp_name": "skab_like", "agent": "vae", "seed": 0, "device": "cpu", "experiments_dir": str(root / "runs"),
        "data": {"name": "csv", "path": [str(f) for f in files], "window_length": T, "stride": 1, "eval_stride": 1,
                 "timestamp_column": "datetime", "label_columns": ["anomaly"], "ignore_columns": ["changepoint"],
                 "train_end": TRAIN_END, "train_labels": "exclude", "val_fraction": 0.3,
                 "normalize": normalize},
        "model": {"name": "vae", "hidden_sizes": [8], "latent_dim": 2, "output_activation": "none"},
        "loss": {"name": "vae", "reconstruction": "mse", "beta": 1e-05},
        "trainer": {"epochs": 2, "batch_size": 64, "progress_bar": False},
        "evaluation": {"make_plots": False, "scores": SCORES},
    }
    config_path = root / "config.json"
    config_path.write_text(json.dumps(config))
    assert main.main([str(config_path)]) == 0
    run_dir = root / "runs" / "skab_like"
    return {"dir": run_dir, "files": files, "argv": [str(config_path), "--mode", "score"],
            "detector": Detector.load(run_dir, device="cpu")}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("recordings"), "per_recording")


@pytest.fixture(scope="module")
def whitened(tmp_path_factory):
    return train(tmp_path_factory.mktemp("whitened"), "per_recording_whitened")


def score(run, src, out, *extra):
    return main.main([*run["argv"], "--input", str(src), "--output", str(out), *extra])


def read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_best_pt_records_the_columns_and_the_reference_rows(run):
    assert run["detector"].recording == {"timestamp_column": "datetime", "label_columns": ["anomaly"],
                                         "ignore_columns": ["changepoint"], "reference_rows": TRAIN_END,
                                         "training_rows": TRAINING_ROWS, "sample_period_s": 1.0}
    assert run["detector"].reference_rows == TRAIN_END and run["detector"].trained_period == 1.0


def test_an_input_sampled_at_another_rate_is_warned_of(run, tmp_path, capsys):
    rows = recording(1)
    same = write(tmp_path / "same.csv", rows)
    assert score(run, same, tmp_path / "a.csv") == 0
    assert "trained on rows every" not in "".join(capsys.readouterr())  # the console: stdout and stderr
    for i, row in enumerate(rows[1:]):  # a row every 2 s: the run's windows of T rows would span 2T s
        row[0] = f"2020-03-09 {10 + 2 * i // 3600:02d}:{2 * i // 60 % 60:02d}:{2 * i % 60:02d}"
    slow = write(tmp_path / "slow.csv", rows)
    assert score(run, slow, tmp_path / "b.csv") == 0
    assert (f"{slow}: column 'datetime' steps every 2 s, but the run was trained on rows every 1 s: a window of its "
            "rows spans 2 times the time the model learnt from") in "".join(capsys.readouterr())


@pytest.mark.parametrize("normalised", ["run", "whitened"])
def test_a_training_file_scores_as_the_run_scored_its_test_rows(normalised, request, tmp_path):
    """Per step, the scores of rows the run's test windows cover alike (from TRAIN_END + T - 1: earlier test rows
    are also covered by windows starting in the training part here) equal out/stream_scores.csv's; for a run
    normalised by each recording's mean and std, and for one that also whitened them."""
    run = request.getfixturevalue(normalised)
    src = run["files"][2]  # labelled rows in its training part: the reference leaves them out, as the run did
    assert score(run, src, tmp_path / "s.csv", "--per-step") == 0
    theirs = [r for r in read(run["dir"] / "out" / "stream_scores.csv") if r["recording"] == str(src)]
    for name in SCORES:  # the per-recording score too: fitted on the same training windows of this file
        ours = {int(r["row"]): float(r[f"score_{name}"]) for r in read(tmp_path / "s.csv")}
        compared = [(ours[int(r["row"])], float(r[f"score_{name}"])) for r in theirs
                    if int(r["row"]) >= TRAIN_END + T - 1]
        assert len(compared) == ROWS - TRAIN_END - T + 1
        np.testing.assert_allclose(*zip(*compared), rtol=1e-4, atol=1e-4)


def test_the_per_recording_score_is_fitted_on_each_recordings_own_training_windows(run):
    """Its calibration scores are each recording's validation windows under a Gaussian fitted on that recording's
    training windows (computed here by hand from the data split); its test scores differ from the pooled fit's."""
    import datasets  # noqa: F401  (fills the dataset registry)
    from agents.detector.scores import fit_gaussian, mahalanobis_distance
    from agents.parts import build_component
    from utils.core.registry import DATASETS

    detector = run["detector"]
    data = build_component(DATASETS, detector.config["data"], seed=0)
    expected, done = [], {"train": 0, "val": 0}
    for recording in data.recordings:
        own = {}
        for split, n in (("train", recording.train_windows), ("val", len(recording.val.starts))):
            windows = getattr(data, split).x[done[split]: done[split] + n]
            own[split] = detector.encode(detector.prepare(windows)).double().numpy()
            done[split] += n
        expected.append(mahalanobis_distance(own["val"], fit_gaussian(own["train"])))
    np.testing.assert_allclose(detector.calibration["latent_mahalanobis_recording"], np.concatenate(expected),
                               rtol=1e-5)
    assert not np.allclose(detector.calibration["latent_mahalanobis_recording"],
                           detector.calibration["latent_mahalanobis"], rtol=1e-2)


def test_the_per_recording_score_needs_a_reference(run):
    detector, windows = run["detector"], np.zeros((3, T, len(SENSORS)))
    with pytest.raises(ValueError, match="reference"):
        detector.score(windows)
    reference = np.random.default_rng(0).standard_normal((20, T, len(SENSORS)))
    scores = detector.score(windows, reference=reference)
    assert set(scores) == set(SCORES) and np.isfinite(scores["latent_mahalanobis_recording"]).all()
    with pytest.raises(Exception, match="needs 2 or more"):
        detector.score(windows, reference=reference[:1])
    with pytest.raises(ValueError, match=r"reference \(features .*\) must have shape"):
        detector.score(windows, reference=reference[:, :, :1])


def test_a_reference_that_never_moved_makes_any_departure_from_it_anomalous(run):
    """Identical reference windows have no spread: the recording's own Gaussian must still score a change."""
    detector, rng = run["detector"], np.random.default_rng(1)
    reference = np.ones((20, T, len(SENSORS)))
    scores = detector.score(np.concatenate([reference[:2], rng.standard_normal((3, T, len(SENSORS)))]),
                            reference=reference)["latent_mahalanobis_recording"]
    threshold = detector.thresholds["latent_mahalanobis_recording"]
    assert (scores[:2] < 0.01 * threshold).all() and (scores[2:] > 10 * threshold).all(), (scores, threshold)


def test_without_the_normalisation_the_scores_differ(run, tmp_path):
    """The check above can fail: the same file standardised by other reference rows scores otherwise."""
    assert score(run, run["files"][1], tmp_path / "a.csv", "--per-step") == 0
    assert score(run, run["files"][1], tmp_path / "b.csv", "--per-step", "--reference-rows", "20") == 0
    a = [float(r["score_reconstruction"]) for r in read(tmp_path / "a.csv")]
    b = [float(r["score_reconstruction"]) for r in read(tmp_path / "b.csv")]
    assert np.abs(np.array(a) - np.array(b)).max() > 0.1


def pipe(run, src, per_step, incidents):
    """The scores of ``src``'s bytes piped a few rows per read (so the reference rows arrive piecemeal)."""
    stdin = io.BytesIO(src.read_bytes())
    stdin.read1 = lambda n=-1, _s=stdin: io.BytesIO.read1(_s, 700)
    out = io.StringIO(newline="")
    live_score(run["detector"], "-", "-", stdin=stdin, stdout=out, stderr=io.StringIO(), per_step=per_step,
               incidents_path=str(incidents))
    return out.getvalue()


@pytest.mark.parametrize("normalised", ["run", "whitened"])
def test_file_and_pipe_give_the_same_bytes(normalised, request, tmp_path):
    run = request.getfixturevalue(normalised)
    src = run["files"][1]
    assert score(run, src, tmp_path / "file.csv", "--per-step") == 0
    assert pipe(run, src, True, tmp_path / "live.incidents.csv").encode() == (tmp_path / "file.csv").read_bytes()
    assert (tmp_path / "live.incidents.csv").read_bytes() == (tmp_path / "file.incidents.csv").read_bytes()


def test_window_rows_of_a_pipe_are_those_of_the_file(run, tmp_path):
    """One row per window: the windows are batched otherwise live, so the scores agree to rounding."""
    src = run["files"][1]
    assert score(run, src, tmp_path / "file.csv") == 0
    live = list(csv.DictReader(io.StringIO(pipe(run, src, False, tmp_path / "live.incidents.csv"))))
    file = read(tmp_path / "file.csv")
    assert [r["start_row"] for r in live] == [r["start_row"] for r in file]
    np.testing.assert_allclose([float(r["score_reconstruction"]) for r in live],
                               [float(r["score_reconstruction"]) for r in file], rtol=1e-5)


def test_an_input_shorter_than_the_reference_is_refused(run, whitened, tmp_path, capsys):
    src = write(tmp_path / "short.csv", recording(0)[: TRAIN_END])  # the header and TRAIN_END - 1 rows
    assert score(run, src, tmp_path / "s.csv") == 2
    err = capsys.readouterr().err
    assert f"{src}: {TRAIN_END - 1} rows, fewer than the {TRAIN_END} reference rows" in err
    assert "data.normalize=per_recording: standardised" in err and not (tmp_path / "s.csv").exists()
    assert score(whitened, src, tmp_path / "s.csv") == 2  # the message names the run's own normalisation
    assert "data.normalize=per_recording_whitened: standardised, then decorrelated" in capsys.readouterr().err
    assert score(run, src, tmp_path / "s.csv", "--reference-rows", "50") == 0  # fewer reference rows: scored
    with pytest.raises(Exception, match=f"<stdin>: {TRAIN_END - 1} rows, fewer than the {TRAIN_END}"):
        live_score(run["detector"], "-", "-", stdin=io.BytesIO(src.read_bytes()), stdout=io.StringIO(),
                   stderr=io.StringIO())


def test_declared_columns_are_accepted_and_others_refused(run, tmp_path, capsys):
    rows = recording(0)
    comma = write(tmp_path / "comma.csv", [[r[i] for i in (1, 2, 3, 0)] for r in rows], separator=",")
    assert score(run, comma, tmp_path / "c.csv") == 0  # the features alone and the timestamp, comma-separated
    extra = write(tmp_path / "extra.csv", [r + (["machine"] if i == 0 else ["7"]) for i, r in enumerate(rows)])
    assert score(run, extra, tmp_path / "e.csv") == 2
    err = capsys.readouterr().err
    assert "unexpected column(s) ['machine']" in err and "'anomaly', 'changepoint'" in err


def test_reference_rows_for_a_run_without_normalisation_is_refused(run, tmp_path, capsys):
    detector = Detector.load(run["dir"], device="cpu")
    detector.config = {**detector.config, "data": {**detector.config["data"], "normalize": "none"}}
    with pytest.raises(Exception, match="--reference-rows: this run did not standardise"):
        live_score(detector, "-", "-", stdin=io.BytesIO(run["files"][0].read_bytes()), stdout=io.StringIO(),
                   stderr=io.StringIO(), reference_rows=10)


def test_best_pt_without_the_field_still_loads_and_a_bad_one_is_refused(run, tmp_path):
    """A best.pt saved before ``scoring.recording``: the config's train_end (a row) gives R; with a share of the
    rows R is unknown and --reference-rows is asked for. A damaged field is named."""
    best = run["dir"] / "checkpoints" / "best.pt"
    ckpt = load_checkpoint(best)
    del ckpt["scoring"]["recording"]
    old = Detector.from_checkpoint(ckpt, best)
    assert old.recording is None and old.reference_rows == TRAIN_END
    assert old.data_columns["ignore_columns"] == ["changepoint"]  # from the config
    old.config = {**old.config, "data": {**old.config["data"], "train_end": 0.6}}
    with pytest.raises(CheckpointError, match="give --reference-rows N"):
        recording_reference(old, COLUMNS, "new.csv")
    with pytest.raises(CheckpointError, match="scoring.recording.training_rows"):
        recording_reference(old, COLUMNS, "new.csv", 30)  # the per-recording score's rows are not recorded either
    old.scores.pop("latent_mahalanobis_recording")
    assert recording_reference(old, COLUMNS, "new.csv", 30).rows == 30
    assert old.trained_period is None  # an older file: no rate to compare an input's with
    for key, bad in (("reference_rows", 0), ("training_rows", -3), ("training_rows", "84"), ("sample_period_s", 0),
                     ("sample_period_s", True), ("sample_period_s", float("inf")), ("sample_period_s", "1 s")):
        ckpt["scoring"]["recording"] = {key: bad}
        with pytest.raises(CheckpointError, match=f"scoring.recording.{key}"):
            Detector.from_checkpoint(ckpt, best)


def test_whitening_decorrelates_the_recordings_and_changes_the_scores(run, whitened):
    """Each recording's training part comes out with an identity covariance (up to the shrinkage); the scores are
    not those of the standardised run (the check above can fail)."""
    info = json.loads((whitened["dir"] / "out" / "metrics.json").read_text())["data"]["recordings"]
    for part, src in zip(info, whitened["files"], strict=True):
        table = recording(whitened["files"].index(src))[1:TRAIN_END + 1]
        rows = np.array([[float(v) for v in r[1:4]] for r in table if r[4] == "0"])  # the reference: normal rows
        stats = part["normalized_by"]
        z = (rows - stats["mean"]) / stats["std"] @ np.asarray(stats["whitening"])
        np.testing.assert_allclose(np.cov(z.T, bias=True), np.eye(len(SENSORS)), atol=0.15)
    plain = run["detector"].calibration["reconstruction"]
    assert not np.allclose(whitened["detector"].calibration["reconstruction"], plain, rtol=1e-2)


def test_whitening_matrix():
    from datasets.csv_recordings import whitening_matrix
    rng = np.random.default_rng(0)
    mixing = np.array([[1.0, 0.0, 0.0], [0.9, 0.3, 0.0], [0.2, 0.5, 1.0]])
    rows = rng.standard_normal((20000, 3)) @ mixing.T
    w = whitening_matrix(rows)
    np.testing.assert_allclose(w, w.T)
    np.testing.assert_allclose(np.cov((rows @ w).T), np.eye(3), atol=0.02)
    constant = np.column_stack([rows[:50, :2], np.zeros(50)])  # a constant sensor is not blown up
    assert np.isfinite(whitening_matrix(constant)).all() and np.abs(whitening_matrix(constant)).max() < 40
    np.testing.assert_array_equal(whitening_matrix(rows[:1]), np.eye(3))


@pytest.mark.parametrize("n", [2, 7, 300])
def test_the_shrunk_covariance_is_scikit_learns(n):
    from sklearn.covariance import LedoitWolf

    from datasets.csv_recordings import ledoit_wolf_covariance
    rows = np.random.default_rng(n).standard_normal((n, 5)) @ np.random.default_rng(1).standard_normal((5, 5))
    rows[:, 4] = 3.0  # a constant sensor
    np.testing.assert_allclose(ledoit_wolf_covariance(rows), LedoitWolf().fit(rows).covariance_, rtol=1e-10,
                               atol=1e-12)


def test_a_recording_with_too_few_training_windows_is_named(run):
    """Fitting the per-recording score needs 2 training windows in each recording with calibration windows."""
    import torch

    from utils.core.errors import DataError
    detector = Detector.load(run["dir"], device="cpu")
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((12, T, len(SENSORS))).astype(np.float32))
    with pytest.raises(DataError, match="second.csv has 1 .*beside 4 validation windows"):
        detector.fit(x[:6], x[6:], 0.1, recordings={"first.csv": (5, 2), "second.csv": (1, 4)})
    detector.fit(x[:6], x[6:], 0.1, recordings={"first.csv": (3, 2), "second.csv": (3, 4)})
    assert len(detector.calibration["latent_mahalanobis_recording"]) == 6


def test_too_few_reference_rows_for_the_per_recording_score_are_named(run, tmp_path, capsys):
    """--reference-rows below a window and a stride leaves no training window to fit the per-recording score."""
    assert score(run, run["files"][0], tmp_path / "s.csv", "--reference-rows", str(T)) == 2
    err = capsys.readouterr().err
    assert "holds 1, fewer than 2; give --reference-rows 11 or more, or leave it out" in err
    assert not (tmp_path / "s.csv").exists()
    assert score(run, run["files"][0], tmp_path / "s.csv", "--reference-rows", str(T + 1)) == 0
