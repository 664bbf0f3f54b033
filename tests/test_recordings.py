"""Real recordings through the csv dataset: where learning ends (train_end, train_labels), many files in one run,
and CSV files as users have them (separators, several label columns, ignored columns, label-looking columns)."""
from __future__ import annotations

import time

import numpy as np
import pytest

import agents  # noqa: F401 (fills the registries the config layer checks)
from datasets.csv_reading import read_header, read_layout
from datasets.csv_recordings import load_csv
from tests.helpers import REPO_ROOT
from utils.core.config import load_config
from utils.core.errors import ConfigError, DataError

T = 5


def write_recording(path, n=120, labelled=(), sep=",", offset=0, extra=None, start_minute=0):
    """``n`` rows: time (ISO, one per second from ``start_minute``), a = offset + row, b = noise, label (1 on
    the ``labelled`` ``(start, end)`` ranges), plus ``extra`` columns ``{name: per-row list}``."""
    rng = np.random.default_rng(offset)
    label = np.zeros(n, dtype=int)
    for lo, hi in labelled:
        label[lo:hi] = 1
    extra = extra or {}
    header = ["time", "a", "b", "label", *extra]
    lines = [sep.join(header)]
    for i in range(n):
        stamp = f"2024-05-01T08:{start_minute + i // 60:02d}:{i % 60:02d}"
        cells = [stamp, str(offset + i), f"{rng.normal():.4f}", str(label[i]), *(str(v[i]) for v in extra.values())]
        lines.append(sep.join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


KEYS = dict(window_length=T, stride=1, eval_stride=1, label_column="label", timestamp_column="time")


# ----- 1. where learning ends -----------------------------------------------------------------------
def test_train_end_row_cuts_each_file_and_calibrates_inside_the_training_part(tmp_path):
    path = write_recording(tmp_path / "r.csv", n=120, labelled=[(90, 95)])
    data = load_csv(seed=0, path=str(path), train_end=60, val_fraction=0.25, **KEYS)
    assert data.info["stretches"] == {"train": [0, 45], "val": [45, 60], "test": [60, 120]}
    assert data.train.x[:, :, 0].max() < 45 and data.val.x[:, :, 0].min() >= 45 and data.val.x[:, :, 0].max() < 60
    assert data.test.x[:, 0, 0].min() == 60 and data.test.x[:, -1, 0].max() == 119
    assert data.info["test_fraction"] is None and data.info["train_end"] == 60
    assert data.recordings[0].test.first_row == 60 and data.recordings[0].test.labels.sum() == 5


def test_train_end_as_share_and_as_time(tmp_path):
    path = write_recording(tmp_path / "r.csv", n=120, labelled=[(90, 95)])
    share = load_csv(seed=0, path=str(path), train_end=0.5, **KEYS)
    when = load_csv(seed=0, path=str(path), train_end="2024-05-01T08:01:00", **KEYS)  # row 60 is 08:01:00
    assert share.info["stretches"]["test"] == when.info["stretches"]["test"] == [60, 120]
    with pytest.raises(DataError, match=r"r.csv: data.train_end='2024-05-01T09:00:00' lies outside the file's times "
                                        r"\(2024-05-01T08:00:00 to 2024-05-01T08:01:59\)"):
        load_csv(seed=0, path=str(path), train_end="2024-05-01T09:00:00", **KEYS)
    with pytest.raises(ConfigError, match=r"data.train_end: 'tuesday' is neither a number nor an ISO 8601"):
        load_csv(seed=0, path=str(path), train_end="tuesday", **KEYS)
    with pytest.raises(ConfigError, match=r"data.train_end: '08:00' is a time, which needs data.timestamp_column"):
        load_csv(seed=0, path=str(path), train_end="08:00", window_length=T, feature_columns=["a", "b"])
    with pytest.raises(DataError, match=r"r.csv: data.train_end=500 is not before the file's last row \(120 rows"):
        load_csv(seed=0, path=str(path), train_end=500, **KEYS)


def test_test_fraction_with_train_end_is_refused_naming_both(tmp_path):
    path = write_recording(tmp_path / "r.csv")
    with pytest.raises(ConfigError, match=r"data.test_fraction: 0.2 is given with data.train_end=60"):
        load_csv(seed=0, path=str(path), train_end=60, test_fraction=0.2, **KEYS)
    config = load_config(REPO_ROOT / "configs" / "example_csv.json", ["data.train_end=60"])  # the config layer too
    assert config.data.train_end == 60 and config.data.test_fraction == 0.15


def test_train_labels_exclude_or_ignore_inside_the_training_part(tmp_path):
    path = write_recording(tmp_path / "r.csv", n=120, labelled=[(10, 20), (90, 95)])
    excluded = load_csv(seed=0, path=str(path), train_end=60, **KEYS)
    ignored = load_csv(seed=0, path=str(path), train_end=60, train_labels="ignore", **KEYS)
    rows_excluded, rows_ignored = excluded.train.x[:, :, 0], ignored.train.x[:, :, 0]
    assert not np.isin(rows_excluded, np.arange(10, 20)).any()  # no training window touches a labelled row
    assert np.isin(rows_ignored, np.arange(10, 20)).any()  # the protocol's "first rows are normal"
    assert len(ignored.train) == len(excluded.train) + (20 - 10 + T - 1)
    np.testing.assert_array_equal(ignored.test.x, excluded.test.x)  # the test part is the same either way


def test_warnings_name_the_files(tmp_path, warnings_seen):
    folder = tmp_path / "recs"
    folder.mkdir()
    write_recording(folder / "quiet.csv", n=120)
    write_recording(folder / "early.csv", n=120, labelled=[(10, 20), (30, 35), (100, 104)])
    load_csv(seed=0, path=str(folder), train_end=60, **KEYS)
    lines = [r.getMessage() for r in warnings_seen.records]
    assert any("test stretch holds no anomalous row" in line and "quiet.csv (rows 60..119)" in line for line in lines)
    assert any("fewer than half of the labelled ranges" in line and "early.csv (1 of 3)" in line for line in lines)
    assert any("labelled rows inside the training part are never evaluated, left out of training "
               "(data.train_labels=exclude)" in line and "early.csv (15 rows before row 60)" in line for line in lines)
    assert len(lines) == 3  # one line per finding


# ----- 2. many recordings, one run ----------------------------------------------------------------
def test_a_folder_a_glob_and_a_list_read_every_file_in_order(tmp_path):
    folder = tmp_path / "recs"
    (folder / "sub").mkdir(parents=True)
    for i, name in enumerate(["b.csv", "a.csv", "c.csv"]):
        write_recording(folder / name, n=80 + 10 * i, labelled=[(70, 72)], offset=1000 * (i + 1))
    write_recording(folder / "sub" / "d.csv", n=80)  # a sub-folder is not searched
    write_recording(folder / "D.CSV", n=80, offset=4000)  # a Windows export's upper-case suffix is a CSV file too
    (folder / "._a.csv").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")  # macOS metadata: hidden, skipped
    by_folder = load_csv(seed=0, path=str(folder), train_end=40, **KEYS)
    by_glob = load_csv(seed=0, path=str(folder / "*.csv"), train_end=40, **KEYS)
    by_list = load_csv(seed=0, path=[str(folder / "c.csv"), str(folder / "[ab].csv")], train_end=40, **KEYS)
    names = [str(folder / n) for n in ("a.csv", "b.csv", "c.csv")]
    assert [r.name for r in by_folder.recordings] == [str(folder / "D.CSV"), *names] == by_folder.info["files"]
    assert [r.name for r in by_glob.recordings] == names  # the glob says *.csv: its own case
    assert [r.name for r in by_list.recordings] == [names[2], names[0], names[1]]
    assert by_folder.streams == {} and [r["name"] for r in by_folder.info["recordings"]] == by_folder.info["files"]


def test_a_file_shorter_than_a_window_is_named_with_what_to_do(tmp_path):
    folder = tmp_path / "recs"
    folder.mkdir()
    write_recording(folder / "a.csv", n=80)
    write_recording(folder / "b.csv", n=T - 1)
    with pytest.raises(DataError, match=rf"b\.csv: {T - 1} rows, fewer than one window of data\.window_length={T}; "
                                        r"leave the file out of data\.path, or lower data\.window_length$"):
        load_csv(seed=0, path=str(folder), train_end=40, **KEYS)
    with pytest.raises(DataError, match=r"; give a longer recording, or lower data\.window_length$"):
        load_csv(seed=0, path=str(folder / "b.csv"), train_end=10, **KEYS)


def test_windows_never_cross_files_and_the_test_split_follows_the_recordings(tmp_path):
    offsets = {"a.csv": 1000, "b.csv": 2000, "c.csv": 3000}
    for name, offset in offsets.items():
        write_recording(tmp_path / name, n=100, labelled=[(70, 75)], offset=offset)
    data = load_csv(seed=0, path=str(tmp_path / "*.csv"), train_end=50, **KEYS)
    for split in (data.train, data.val, data.test):  # a window's rows come from one file, in order
        file_of = split.x[:, :, 0] // 1000
        assert (file_of == file_of[:, :1]).all()
        np.testing.assert_array_equal(np.diff(split.x[:, :, 0], axis=1), 1)
    expected = np.concatenate([r.test.values[r.test.starts] for r in data.recordings])
    np.testing.assert_array_equal(data.test.x[:, 0, :], expected)  # recording after recording, in starts order
    assert len(data.test) == sum(len(r.test.starts) for r in data.recordings) == 3 * (50 - T + 1)
    assert set(np.unique(data.train.x[:, 0, 0] // 1000)) == {1, 2, 3}  # one model learns from every file
    assert data.info["anomalous_rows"]["test"] == 15 and len(data.info["recordings"]) == 3


def test_a_different_header_names_both_files_and_the_columns(tmp_path):
    write_recording(tmp_path / "a.csv")
    write_recording(tmp_path / "b.csv", extra={"speed": [1.5] * 120})
    with pytest.raises(DataError, match=r"b.csv: its header differs from that of .*a.csv \(it has \['speed'\] "
                                        r"besides\); every file of data.path needs the same columns"):
        load_csv(seed=0, path=str(tmp_path), train_end=60, **KEYS)
    with pytest.raises(ConfigError, match=r"data.path: the pattern .* matches no file"):
        load_csv(seed=0, path=str(tmp_path / "*.txt"), **KEYS)
    with pytest.raises(ConfigError, match=r"data.split: 'random' splits one file's windows at random"):
        load_csv(seed=0, path=[str(tmp_path / "a.csv"), str(tmp_path / "a.csv"), str(tmp_path / "b.csv")],
                 split="random", **KEYS)
    with pytest.raises(ConfigError, match=r"data.eval_stride: 5 spaces the windows of a contiguous test stretch, "
                                          r"which the random split does not have"):  # it was silently unused
        load_csv(seed=0, path=str(tmp_path / "a.csv"), split="random", **{**KEYS, "eval_stride": 5})


def test_files_may_order_their_columns_otherwise_each_is_read_by_name(tmp_path):
    first = write_recording(tmp_path / "a.csv")
    lines = [line.split(",") for line in first.read_text().splitlines()]
    (tmp_path / "b.csv").write_text("\n".join(",".join([r[3], r[2], r[0], r[1]]) for r in lines) + "\n")
    data = load_csv(seed=0, path=str(tmp_path), train_end=60, **KEYS)
    assert data.feature_names == ["a", "b"]
    a, b = data.recordings
    np.testing.assert_array_equal(a.test.values, b.test.values)


def test_many_small_files_read_without_a_per_file_cost(tmp_path):
    for i in range(100):
        write_recording(tmp_path / f"r{i:03d}.csv", n=30, offset=1000 * i)
    begin = time.perf_counter()
    data = load_csv(seed=0, path=str(tmp_path), train_end=20, val_fraction=0.3, **KEYS)
    assert len(data.recordings) == 100 and time.perf_counter() - begin < 5.0


# ----- 3. CSV as users have it --------------------------------------------------------------------
@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_the_separator_is_detected_from_the_header(tmp_path, sep):
    comma = load_csv(seed=0, path=str(write_recording(tmp_path / "c.csv", labelled=[(90, 95)])), train_end=60, **KEYS)
    other = load_csv(seed=0, path=str(write_recording(tmp_path / "o.csv", labelled=[(90, 95)], sep=sep)),
                     train_end=60, **KEYS)
    given = load_csv(seed=0, path=str(tmp_path / "o.csv"), separator=sep, train_end=60, **KEYS)
    np.testing.assert_array_equal(other.test.x, comma.test.x)
    np.testing.assert_array_equal(given.test.x, comma.test.x)
    assert other.info["separator"] == [sep]


def test_a_wrong_separator_and_the_comma_reader_say_what_to_do_without_pandas(tmp_path):
    path = write_recording(tmp_path / "o.csv", sep=";")
    with pytest.raises(DataError, match=r"o.csv: line 1: the file looks ';'-separated; the reader expects '\|' between "
                                        r"fields .*; set data.separator to null \(detected from the header\)"):
        load_csv(seed=0, path=str(path), separator="|", **KEYS)
    with pytest.raises(DataError) as err:
        read_header(path)  # --mode score reads comma-separated files
    assert "pandas" not in str(err.value) and "Write it comma-separated" in str(err.value)
    assert read_layout(path) == (["time", "a", "b", "label"], ";")
    with pytest.raises(ConfigError, match=r"data.separator: '\.' cannot separate fields"):
        load_csv(seed=0, path=str(path), separator=".", **KEYS)


def test_label_columns_any_marks_the_row_and_never_become_features(tmp_path):
    n = 120
    second = ["0.0"] * n
    second[100:103] = ["1.0"] * 3
    path = write_recording(tmp_path / "r.csv", n=n, labelled=[(80, 84)], extra={"changepoint": second,
                                                                               "machine": ["m7"] * n})
    data = load_csv(seed=0, path=str(path), window_length=T, stride=1, eval_stride=1, timestamp_column="time",
                    train_end=60, label_columns=["label", "changepoint"], ignore_columns=["machine"])
    assert data.feature_names == ["a", "b"]
    labels = data.recordings[0].test.labels
    np.testing.assert_array_equal(np.flatnonzero(labels) + 60, [80, 81, 82, 83, 100, 101, 102])
    with pytest.raises(ConfigError, match=r"data.label_columns: given with data.label_column='label'; set only one"):
        load_csv(seed=0, path=str(path), label_column="label", label_columns=["changepoint"], **{
            k: v for k, v in KEYS.items() if k != "label_column"})
    with pytest.raises(ConfigError, match=r"data.ignore_columns: 'label' is also in data.label_columns"):
        load_csv(seed=0, path=str(path), label_columns=["label"], ignore_columns=["label"])


@pytest.mark.parametrize("name", ["is_anomaly", "FaultFlag", "change_point", "Attack", "target", "class_id"])
def test_a_column_named_like_a_label_is_refused(tmp_path, name):
    path = write_recording(tmp_path / "r.csv", extra={name: [0.5] * 120})
    with pytest.raises(ConfigError, match=rf"r.csv: column '{name}' looks like a label, not a sensor; name it in "
                                          r"data.label_columns, data.ignore_columns or data.feature_columns"):
        load_csv(seed=0, path=str(path), **KEYS)


def test_a_zero_one_column_is_refused_unless_listed(tmp_path):
    flags = [i % 2 for i in range(120)]
    path = write_recording(tmp_path / "r.csv", extra={"valve": flags, "dead": [0] * 120, "targetted": [2] * 120})
    with pytest.raises(ConfigError, match=r"r.csv: column 'valve' holds only 0 and 1, like a label"):
        load_csv(seed=0, path=str(path), train_end=60, **KEYS)
    data = load_csv(seed=0, path=str(path), train_end=60, feature_columns=["a", "valve"], **KEYS)
    assert data.feature_names == ["a", "valve"]
    data = load_csv(seed=0, path=str(path), train_end=60, ignore_columns=["valve"], **KEYS)
    assert data.feature_names == ["a", "b", "dead", "targetted"]  # all zeros is no label; "targetted" no label word


# ----- per-recording normalisation ---------------------------------------------------------------------
def test_per_recording_normalisation_standardises_each_file_by_its_own_training_part(tmp_path):
    """Two files at other levels (a = offset + row) come out on one scale: each by its own first 60 rows."""
    paths = [write_recording(tmp_path / f"{i}.csv", n=120, offset=1000 * i, labelled=[(10, 14)]) for i in range(2)]
    raw = [np.loadtxt(p, delimiter=",", skiprows=1, usecols=(1, 2)) for p in paths]
    data = load_csv(seed=0, path=[str(p) for p in paths], train_end=60, normalize="per_recording", **KEYS)
    for rows, recording, info in zip(raw, data.recordings, data.info["recordings"]):
        reference = rows[:60][np.r_[0:10, 14:60]]  # labelled rows 10..13 left out (train_labels exclude)
        expected = (rows - reference.mean(axis=0)) / reference.std(axis=0)
        np.testing.assert_allclose(recording.test.values, expected[60:], rtol=1e-5, atol=1e-5)
        assert info["normalized_by"]["rows"] == 56
    a = [r.test.values[:, 0] for r in data.recordings]
    assert abs(a[0] - a[1]).max() < 1e-4  # sensor a's offset of 1000 is gone
    ignored = load_csv(seed=0, path=[str(p) for p in paths], train_end=60, normalize="per_recording",
                       train_labels="ignore", **KEYS)
    assert ignored.info["recordings"][0]["normalized_by"]["rows"] == 60


def test_per_recording_normalisation_refuses_the_random_split_and_an_unknown_value(tmp_path):
    path = write_recording(tmp_path / "r.csv")
    with pytest.raises(ConfigError, match=r"data.normalize: 'per_recording' .* split=\"contiguous\""):
        load_csv(seed=0, path=str(path), normalize="per_recording", split="random", window_length=T)
    config = tmp_path / "c.json"
    config.write_text((REPO_ROOT / "configs" / "example_csv.json").read_text())
    with pytest.raises(ConfigError, match=r"data.normalize: .*'none', 'per_recording' or 'per_recording_whitened'"):
        load_config(config, [f"data.path={path}", "data.normalize=per_file"])


@pytest.mark.parametrize("value", ["0", "1.5", "true", "\"\"", "-3"])
def test_a_bad_train_end_gets_one_line_saying_what_is_valid(tmp_path, value):
    config = tmp_path / "c.json"
    config.write_text((REPO_ROOT / "configs" / "vae_skab.json").read_text())
    with pytest.raises(ConfigError) as err:
        load_config(config, [f"data.train_end={value}"])
    assert str(err.value).count("\n") == 0
    assert "data.train_end: expected a row number above 0" in str(err.value) and "Value error" not in str(err.value)
