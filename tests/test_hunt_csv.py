"""The csv loader in situations users meet (bug hunt): paths spelled in several ways, files named with glob
characters, time zones in the timestamps and in data.train_end, and messages that name the file at fault."""
from __future__ import annotations

import pytest

from datasets.csv_recordings import csv_paths, load_csv
from utils.core.errors import ConfigError, DataError


def write_counting(path, n=40, start=0, header="a"):
    """A one-column file whose rows count ``start``, ``start + 1``, ... (``n`` rows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join(f"{start + i}\n" for i in range(n)))
    return path


# ----- data.path ----------------------------------------------------------------------------------------------
def test_a_double_star_glob_reaches_every_depth_as_documented_globs_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("pump/a.csv", "pump/2024/b.csv", "pump/2024/05/c.csv"):
        write_counting(tmp_path / name)
    found = [p.as_posix() for p in csv_paths("pump/**/*.csv")]
    assert found == ["pump/2024/05/c.csv", "pump/2024/b.csv", "pump/a.csv"]


def test_one_file_named_twice_in_other_spellings_is_read_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_counting(tmp_path / "pump" / "a.csv")
    write_counting(tmp_path / "pump" / "b.csv", start=100)
    paths = csv_paths(["pump", str(tmp_path / "pump" / "a.csv"), "pump/../pump/b.csv", "./pump/a.csv"])
    assert [p.as_posix() for p in paths] == ["pump/a.csv", "pump/b.csv"]
    data = load_csv(0, path=["pump", str(tmp_path / "pump" / "a.csv")], window_length=4, stride=1, train_end=20,
                    val_fraction=0.5)
    assert data.info["files"] == ["pump/a.csv", "pump/b.csv"] and len(data.recordings) == 2


def test_a_file_whose_name_holds_glob_characters_is_read_itself_not_a_namesake(tmp_path):
    literal = write_counting(tmp_path / "run[1].csv", start=0)
    write_counting(tmp_path / "run1.csv", start=1000)  # what "run[1].csv" matches as a pattern
    data = load_csv(0, path=str(literal), window_length=4, stride=1, train_end=20, val_fraction=0.5)
    assert data.info["files"] == [str(literal)] and data.train.x.max() < 20


# ----- data.normalize -------------------------------------------------------------------------------------------
def test_per_recording_normalisation_names_the_file_whose_training_part_is_all_labelled(tmp_path):
    (tmp_path / "a.csv").write_text("a,label\n" + "".join(f"{i},0\n" for i in range(40)))
    (tmp_path / "b.csv").write_text("a,label\n" + "".join(f"{i},{int(i < 25)}\n" for i in range(40)))
    with pytest.raises(DataError, match=r"b.csv: data.normalize=per_recording: the training part \(rows 0..19\) "
                                        r"holds no normal row"):
        load_csv(0, path=str(tmp_path), window_length=4, stride=1, train_end=20, val_fraction=0.5,
                 normalize="per_recording", label_column="label")


# ----- data.train_end as a time -----------------------------------------------------------------------------------
def write_timed(path, stamps):
    """One row per timestamp, column ``a`` counting the rows."""
    path.write_text("time,a\n" + "".join(f"{stamp},{i}\n" for i, stamp in enumerate(stamps)))
    return path


def test_train_end_with_the_columns_utc_offset_cuts_at_that_time(tmp_path):
    path = write_timed(tmp_path / "tz.csv", [f"2024-05-01T{8 + i // 60:02d}:{i % 60:02d}:00+02:00" for i in range(240)])
    data = load_csv(0, path=str(path), window_length=5, stride=1, timestamp_column="time",
                    train_end="2024-05-01T09:00:00+02:00")
    assert data.info["stretches"]["test"] == [60, 240]


@pytest.mark.parametrize("column_offset, train_end, said", [
    ("+02:00", "2024-05-01T09:00:00", "has no UTC offset, but the timestamp column 'time' writes one"),
    ("", "2024-05-01T09:00:00Z", "has a UTC offset, but the timestamp column 'time' writes none"),
])
def test_train_end_and_timestamps_disagreeing_on_a_utc_offset_are_refused_not_cut_hours_apart(
        tmp_path, column_offset, train_end, said):
    # 4 hours a minute apart: read as UTC, the plain 09:00 would silently cut at 11:00+02:00 (row 180, not 60)
    path = write_timed(tmp_path / "tz.csv", [f"2024-05-01T{8 + i // 60:02d}:{i % 60:02d}:00{column_offset}"
                                             for i in range(240)])
    with pytest.raises(ConfigError, match=rf"data.train_end: '{train_end}' {said} \('2024-05-01T08:00:00"):
        load_csv(0, path=str(path), window_length=5, stride=1, timestamp_column="time", train_end=train_end)


def test_dates_without_a_time_are_not_taken_for_a_utc_offset(tmp_path):
    path = write_timed(tmp_path / "days.csv", [f"2024-05-{day:02d}" for day in range(1, 31)])  # ends like -05:00
    data = load_csv(0, path=str(path), window_length=3, stride=1, timestamp_column="time", train_end="2024-05-15",
                    val_fraction=0.5)
    assert data.info["stretches"]["test"] == [14, 30]


def test_a_row_number_beyond_the_file_that_is_one_of_its_numeric_times_says_how_to_give_a_time(tmp_path):
    path = write_timed(tmp_path / "epoch.csv", [1_700_000_000 + i for i in range(40)])
    with pytest.raises(DataError, match=r"data.train_end=1700000020 is not before the file's last row \(40 rows, "
                                        r"0..39\).*as a time of the timestamp column 'time', give it as text: "
                                        r"\"1700000020\""):
        load_csv(0, path=str(path), window_length=3, stride=1, timestamp_column="time", train_end=1_700_000_020)
    data = load_csv(0, path=str(path), window_length=3, stride=1, timestamp_column="time", train_end="1700000020",
                    val_fraction=0.5)
    assert data.info["stretches"]["test"] == [20, 40]


def test_local_times_repeating_an_hour_as_daylight_saving_ends_are_not_told_to_be_sorted(tmp_path):
    stamps = [f"2024-10-27T{h:02d}:{m:02d}:00" for h in (1, 2) for m in range(0, 60, 10)]  # local time, CEST
    stamps += [f"2024-10-27T{h:02d}:{m:02d}:00" for h in (2, 3) for m in range(0, 60, 10)]  # 02:00 again, CET
    path = write_timed(tmp_path / "local.csv", stamps)
    with pytest.raises(DataError, match=r"local.csv: row 12 \(line 14\), column 'time': time goes backwards "
                                        r"\(2024-10-27T02:50:00.000000000 then 2024-10-27T02:00:00.000000000\); "
                                        r"if a clock was set back \(daylight saving time ending.*with their UTC offset"):
        load_csv(0, path=str(path), window_length=3, stride=1, timestamp_column="time")
