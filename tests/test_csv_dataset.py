"""The generic CSV dataset: chunked reading, windows, labels, timestamps, errors, both agents end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import main
from datasets.csv_reading import iter_csv_blocks, iter_windows, read_header
from datasets.csv_recordings import load_csv
from utils.metrics.ranges import window_starts
from datasets.make_example_csv import write_example_csv
from tests.helpers import REPO_ROOT
from utils.core.errors import ConfigError, DataError

EXAMPLE = REPO_ROOT / "examples" / "converter_telemetry.csv"



def write_csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(str(v) for v in r) + "\n" for r in rows))
    return path


@pytest.fixture
def series(tmp_path):
    """40 rows: t (seconds), a = row, b = -row, label (rows 12 and 31 anomalous)."""
    rows = [[i, i, -i, {12: "spike", 31: 1}.get(i, 0)] for i in range(40)]
    return write_csv(tmp_path / "s.csv", ["t", "a", "b", "label"], rows)


# ----- reading and windowing -------------------------------------------------------------
@pytest.mark.parametrize("window,stride,chunk", [(5, 5, 7), (5, 1, 3), (4, 7, 5), (6, 2, 1), (3, 3, 100)])
def test_streamed_windows_equal_sliding_windows_over_the_whole_file(tmp_path, window, stride, chunk):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(37, 3)).round(4)
    path = write_csv(tmp_path / "x.csv", ["a", "b", "c"], values.tolist())
    header = read_header(path)
    blocks = iter_csv_blocks(path, header, ["c", "a"], chunk_rows=chunk)
    got = list(iter_windows(blocks, window, stride, batch=2))
    starts = np.concatenate([s for s, _, _ in got])
    windows = np.concatenate([w for _, w, _ in got])
    expected_starts = window_starts(37, window, stride)
    np.testing.assert_array_equal(starts, expected_starts)
    expected = sliding_window_view(values[:, [2, 0]], window, axis=0)[expected_starts].transpose(0, 2, 1)
    np.testing.assert_array_equal(windows, expected)


@pytest.mark.parametrize("window,stride,chunk,rows", [(5, 5, 7, 37), (5, 1, 3, 37), (6, 4, 1, 37), (5, 3, 100, 37),
                                                      (5, 5, 4, 35), (5, 2, 3, 4)])
def test_covering_windows_end_on_the_last_row(tmp_path, window, stride, chunk, rows):
    """cover=True: the same windows plus, where the stride stopped short, one over the last rows (none for an
    input shorter than a window); the text at its start comes with it."""
    values = np.arange(rows * 2, dtype=float).reshape(rows, 2)
    path = write_csv(tmp_path / "x.csv", ["t", "a", "b"], [[f"r{i}", *v] for i, v in enumerate(values.tolist())])
    blocks = iter_csv_blocks(path, read_header(path), ["a", "b"], chunk_rows=chunk, text_columns=["t"])
    got = list(iter_windows(blocks, window, stride, batch=2, cover=True))
    starts = np.concatenate([s for s, _, _ in got]) if got else np.zeros(0, dtype=np.int64)
    expected = window_starts(rows, window, stride)
    if len(expected) and expected[-1] != rows - window:
        expected = np.append(expected, rows - window)
    np.testing.assert_array_equal(starts, expected)
    for s, w, text in got:
        np.testing.assert_array_equal(w, sliding_window_view(values, window, axis=0)[s].transpose(0, 2, 1))
        assert text[:, 0].tolist() == [f"r{i}" for i in s]


def test_reader_names_row_line_and_column_of_bad_cells(tmp_path):
    header = ["t", "a", "b"]
    rows = [[0, 1, 2], [1, 1, 2], [2, 1, 2]]
    bad_value = write_csv(tmp_path / "v.csv", header, rows[:2] + [[2, "x7", 2]])
    with pytest.raises(DataError, match=r"row 2 \(line 4\), column 'a': 'x7' is not a number"):
        list(iter_csv_blocks(bad_value, header, ["a", "b"]))
    empty = write_csv(tmp_path / "e.csv", header, rows[:1] + [[1, 1, ""]] + rows[2:])
    with pytest.raises(DataError, match=r"row 1 \(line 3\), column 'b': is empty"):
        list(iter_csv_blocks(empty, header, ["a", "b"]))
    nan = write_csv(tmp_path / "n.csv", header, rows[:2] + [[2, 1, "nan"]])
    with pytest.raises(DataError, match=r"row 2 \(line 4\), column 'b': value is NaN"):
        list(iter_csv_blocks(nan, header, ["a", "b"], chunk_rows=2))
    short = write_csv(tmp_path / "f.csv", header, rows[:1] + [[1, 1]] + rows[2:])
    with pytest.raises(DataError, match=r"row 1 \(line 3\): 2 fields, but the header has 3 columns"):
        list(iter_csv_blocks(short, header, ["a", "b"]))
    (tmp_path / "h.csv").write_text("1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match="expected a header row"):
        read_header(tmp_path / "h.csv")
    (tmp_path / "d.csv").write_text("a,b,a\n1,2,3\n")
    with pytest.raises(DataError, match=r"duplicate column names \['a'\]"):
        read_header(tmp_path / "d.csv")


@pytest.mark.parametrize("cell,separator,hint", [
    ("1,001.348", ",", " (thousands separators? write 1001.348 for 1,001.348)"),
    ("1'234.5", ",", " (thousands separators? write 1234.5 for 1'234.5)"),
    ("47,949", ",", " (a decimal comma, or a thousands separator? write 47.949 or 47949)"),
    ("47,949", ";", " (a decimal comma? write 1.5 for 1,5)"),  # in a ';' file a comma is a decimal comma
    ("1000,126", ",", " (a decimal comma? write 1.5 for 1,5)"),
    ("51.5%", ",", " (a number with a unit or sign around it? write 51.5 alone, and the unit in the column's name)"),
    ("3.2 kW", ",", " (a number with a unit or sign around it? write 3.2 alone, and the unit in the column's name)"),
    ("$12", ",", " (a number with a unit or sign around it? write 12 alone, and the unit in the column's name)"),
    ("north", ",", ""), ("A1", ",", ""), ("1.5.3", ",", ""),
])
def test_numbers_written_for_people_get_a_hint(cell, separator, hint):
    from datasets.csv_reading import number_hint
    assert number_hint(cell, separator) == hint


def test_a_number_with_a_unit_also_gets_the_text_columns_hint(tmp_path):
    path = write_csv(tmp_path / "u.csv", ["a", "b"], [[1, "12A"], [2, "13A"]])
    with pytest.raises(DataError, match=r"'12A' is not a number \(a number with a unit or sign around it\? write 12 "
                                        r"alone, and the unit in the column's name\); a column of text is no sensor"):
        load_csv(seed=0, path=str(path), window_length=1)


def test_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("a,b\n1,2\n\n3,4\n5,6\n\n")
    blocks = list(iter_csv_blocks(path, ["a", "b"], ["a", "b"], chunk_rows=2))
    np.testing.assert_array_equal(np.concatenate([b.values for b in blocks]), [[1, 2], [3, 4], [5, 6]])


# ----- the loader (the random window split; the contiguous one: tests/test_stream_data.py) -------------
def test_labels_timestamps_and_windows(series):
    data = load_csv(seed=0, path=str(series), window_length=5, label_column="label", timestamp_column="t",
                    val_fraction=0.2, test_fraction=0.2, split="random")
    assert data.feature_names == ["a", "b"]
    assert data.info["windows"] == 8 and data.info["stride"] == 5 and data.info["rows_not_in_a_window"] == 0
    # rows 12 (text label) and 31 (numeric label) make windows 2 and 6 anomalous, all in test
    test = data.test
    assert sorted(test.kind[test.y == 1].tolist()) == ["anomaly", "spike"]
    starts = {int(w[0, 0]): k for w, k in zip(test.x, test.kind)}
    assert starts[10] == "spike" and starts[30] == "anomaly"
    np.testing.assert_array_equal(test.x[:, :, 1], -test.x[:, :, 0])  # features a, b; t dropped
    for split in (data.train, data.val):
        assert split.y.sum() == 0 and split.x.shape[1:] == (5, 2)
    assert len(data.train) + len(data.val) + len(test) == 8


def test_overlapping_windows_any_labelled_row_marks_the_window(series):
    data = load_csv(seed=0, path=str(series), window_length=5, stride=1, label_column="label", timestamp_column="t",
                    split="random")
    windows = np.concatenate([data.train.x, data.val.x, data.test.x])
    kinds = np.concatenate([data.train.kind, data.val.kind, data.test.kind])
    assert len(windows) == 36
    for w, k in zip(windows, kinds):
        rows = set(w[:, 0].astype(int).tolist())
        assert (k != "normal") == bool(rows & {12, 31})


def test_no_label_column_means_all_normal_and_says_so(series):
    data = load_csv(seed=0, path=str(series), window_length=5, feature_columns=["b", "a"], val_fraction=0.25,
                    test_fraction=0.25, split="random")
    assert data.feature_names == ["b", "a"]
    assert data.test.y.sum() == 0 and len(data.test) == 2
    assert "no label column" in data.info["note"] and "held-out normals only" in data.info["note"]


def test_timestamps_must_not_go_backwards(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["time", "a"],
                     [["2024-01-01T00:00:00", 1], ["2024-01-01T00:00:02", 2], ["2024-01-01T00:00:01", 3]])
    with pytest.raises(DataError, match=r"row 2 \(line 4\), column 'time': time goes backwards"):
        load_csv(seed=0, path=str(path), window_length=1, timestamp_column="time")
    path = write_csv(tmp_path / "u.csv", ["time", "a"], [["monday", 1], ["tuesday", 2]])
    with pytest.raises(DataError, match=r"row 0 \(line 2\), column 'time': 'monday' is neither a number nor an ISO 8601"):
        load_csv(seed=0, path=str(path), window_length=1, timestamp_column="time")


def test_times_in_another_layout_say_how_to_train_without_them(tmp_path):
    rows = [[f"05/01/2024 08:{i // 60:02d}:{i % 60:02d}", i % 7] for i in range(80)]
    path = write_csv(tmp_path / "us.csv", ["time", "a"], rows)
    with pytest.raises(DataError, match=r"'05/01/2024 08:00:00' is neither a number nor an ISO 8601 date/time .*; "
                                        r"write the times as ISO 8601 or as numbers, or train without them: "
                                        r"data.timestamp_column null and the column in data.ignore_columns"):
        load_csv(seed=0, path=str(path), window_length=2, timestamp_column="time")
    data = load_csv(seed=0, path=str(path), window_length=2, ignore_columns=["time"])  # the advice works
    assert data.feature_names == ["a"] and len(data.train) > 0


def test_gaps_and_repeated_times_are_warned_of_once_for_all_files(tmp_path, warnings_seen):
    def stamps(seconds):
        return [[s, s % 7, 0] for s in seconds]

    regular = list(range(60))
    gap = write_csv(tmp_path / "gap.csv", ["t", "a", "label"], stamps(regular[:30] + [s + 3600 for s in regular[30:]]))
    repeat = write_csv(tmp_path / "repeat.csv", ["t", "a", "label"], stamps(regular[:20] + [19] + regular[21:]))
    clean = write_csv(tmp_path / "clean.csv", ["t", "a", "label"], stamps(regular))
    coarse = write_csv(tmp_path / "coarse.csv", ["t", "a", "label"], stamps([s // 10 for s in regular]))  # 10 rows/s
    load_csv(seed=0, path=[str(f) for f in (gap, repeat, clean, coarse)], window_length=5, timestamp_column="t",
             label_column="label", train_end=40)
    said = [r.getMessage() for r in warnings_seen.records if "irregular" in r.getMessage()]
    assert len(said) == 1 and "of 2 of 4 file(s) are irregular" in said[0]
    assert f"{gap}: 1 jump(s) of 10 sample periods (1 s) or more, the largest 3601 s after row 29" in said[0]
    assert f"{repeat}: 1 row(s) repeating the time before them (first: row 20)" in said[0]
    assert str(clean) not in said[0] and str(coarse) not in said[0]


def test_files_sampled_at_different_rates_are_warned_of(tmp_path, warnings_seen):
    second = write_csv(tmp_path / "second.csv", ["t", "a", "label"], [[s, s % 7, 0] for s in range(60)])
    tenth = write_csv(tmp_path / "tenth.csv", ["t", "a", "label"], [[s / 10, s % 7, 0] for s in range(60)])
    load_csv(seed=0, path=[str(second), str(tenth)], window_length=5, timestamp_column="t", label_column="label",
             train_end=40)
    assert (f"sampled at different rates (every 0.1 s in {tenth}, every 1 s in {second}), so a window of 5 rows "
            "spans 0.5 s in one and 5 s in the other") in warnings_seen.text


def test_labels_that_mark_every_row_are_warned_of_with_the_values_seen(tmp_path, warnings_seen):
    """scikit-learn's convention (1 inlier, -1 outlier) reads as all anomalous here: say so before the split fails."""
    rows = [[i, i % 5, -1 if 20 <= i < 25 else 1] for i in range(60)]
    path = write_csv(tmp_path / "sk.csv", ["t", "a", "label"], rows)
    with pytest.raises(DataError, match="without an anomalous row"):
        load_csv(seed=0, path=str(path), window_length=5, label_column="label")
    assert f"{path}: the label column(s) ['label'] mark every row anomalous (values '-1', '1')" in warnings_seen.text
    assert "scikit-learn's 1 = inlier, -1 = outlier" in warnings_seen.text


def test_config_mistakes_are_named(series, tmp_path):
    with pytest.raises(ConfigError, match="data.path: required"):
        load_csv(seed=0)
    with pytest.raises(ConfigError, match="data.path: file not found"):
        load_csv(seed=0, path=str(tmp_path / "missing.csv"))
    with pytest.raises(ConfigError, match=r"data.label_column: column 'lbl' is not in the header .*: t, a, b, label"):
        load_csv(seed=0, path=str(series), label_column="lbl")
    with pytest.raises(ConfigError, match=r"data.feature_columns: \['c'\] not in the header"):
        load_csv(seed=0, path=str(series), feature_columns=["a", "c"])
    with pytest.raises(DataError, match="40 rows, fewer than one window of data.window_length=50"):
        load_csv(seed=0, path=str(series), window_length=50, label_column="label", timestamp_column="t")
    with pytest.raises(ConfigError, match=r"s.csv: column 'label' looks like a label, not a sensor; name it in "
                                          r"data.label_columns, data.ignore_columns or data.feature_columns"):
        load_csv(seed=0, path=str(series), window_length=5, timestamp_column="t")  # label column left as a feature
    text = write_csv(tmp_path / "text.csv", ["t", "a", "site"], [[i, i, "north"] for i in range(100)])
    with pytest.raises(DataError, match=r"row 0 \(line 2\), column 'site': 'north' is not a number; a column of text "
                                        r"is no sensor: list the sensors in data.feature_columns or skip this column "
                                        r"with data.ignore_columns"):
        load_csv(seed=0, path=str(text), window_length=5, timestamp_column="t")
    data = load_csv(seed=0, path=str(text), window_length=5, stride=1, timestamp_column="t", ignore_columns=["site"])
    assert data.feature_names == ["a"]


def test_shipped_example_matches_its_generator(tmp_path):
    regenerated = write_example_csv(tmp_path / "example.csv")
    assert regenerated.read_text().splitlines()[0] == EXAMPLE.read_text().splitlines()[0]
    load = lambda p: np.genfromtxt(p, delimiter=",", skip_header=1, usecols=(1, 2, 3))  # noqa: E731
    np.testing.assert_allclose(load(regenerated), load(EXAMPLE), atol=0.011)
    assert EXAMPLE.stat().st_size < 400_000


# ----- end to end with both agents -----------------------------------------------------------
def test_example_config_trains_the_vae_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # data.path is relative to the current directory
    argv = [str(REPO_ROOT / "configs" / "example_csv.json"), "--set", f"experiments_dir={tmp_path}",
            "--set", "trainer.epochs=3", "--set", "trainer.progress_bar=false", "--set", "evaluation.make_plots=false"]
    assert main.main(argv) == 0
    metrics = json.loads((tmp_path / "vae_example_csv" / "out" / "metrics.json").read_text())
    assert metrics["data"]["dataset"] == "csv" and metrics["data"]["features"] == ["voltage", "current", "temperature"]
    assert set(metrics["scores"]["reconstruction"]["per_kind"]) == {"voltage_spike", "current_oscillation",
                                                                      "temperature_drift"}
    assert metrics["splits"]["test"]["n_anomalies"] > 0


def test_recurrent_autoencoder_trains_on_csv_and_scores_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO_ROOT)
    config = json.loads((REPO_ROOT / "configs" / "example_csv.json").read_text())
    config.update(exp_name="rnn_csv", agent="rnn_autoencoder", experiments_dir=str(tmp_path),
                  model={"name": "recurrent_ae", "cell": "gru", "hidden_size": 8},
                  loss={"name": "mae"})
    config["data"]["window_length"] = 10
    config["trainer"].update(epochs=1, progress_bar=False)
    config["evaluation"] = {"make_plots": False}
    path = tmp_path / "rnn_csv.json"
    path.write_text(json.dumps(config))
    assert main.main([str(path)]) == 0
    metrics = json.loads((tmp_path / "rnn_csv" / "out" / "metrics.json").read_text())
    assert set(metrics["scores"]) == {"reconstruction_mae", "error_gaussian"}
    out = tmp_path / "scores.csv"
    assert main.main([str(path), "--mode", "score", "--input", str(EXAMPLE), "--output", str(out)]) == 0
    table = np.genfromtxt(out, delimiter=",", names=True, dtype=None, encoding="utf-8")
    assert len(table) == 720 and table["start_row"][1] == 10 and table["start_timestamp"][1] == "2024-05-01T08:00:10"
    contrib = np.stack([table[f"contrib_{f}"] for f in ("voltage", "current", "temperature")], axis=1)
    np.testing.assert_allclose(contrib.mean(axis=1), table["score_reconstruction_mae"], rtol=1e-4, atol=1e-7)
