"""A user's own folder of sensor CSV files (bug hunt): what the csv loader and the command line do with the
recordings people have, and that each refusal names the file at fault."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import main
from datasets.csv_recordings import load_csv
from utils.core.errors import ConfigError, DataError


ROOT = Path(__file__).resolve().parents[1]


def write_sensors(path, n=300, cell=None):
    """``n`` rows of three noisy sensors a second apart, no anomaly; ``cell``: ``(row, text)`` written as sensor b."""
    rng = np.random.default_rng(len(path.name))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("time,a,b,c,label\n" + "".join(
        f"{1000 + i},{np.sin(i / 9):.4f},{cell[1] if cell and cell[0] == i else f'{rng.normal():.4f}'},"
        f"{rng.normal(5):.4f},0\n" for i in range(n)))
    return path


def train(config_path, tmp_path, *overrides):
    """``main.main`` on a copy of configs/example_csv.json: one epoch, runs under ``tmp_path / "runs"``."""
    sets = ["data.window_length=10", "data.stride=10", "data.test_fraction=null", "data.train_end=100",
            "data.timestamp_column=time", "trainer.epochs=1", "trainer.progress_bar=false",
            "evaluation.make_plots=false", f"experiments_dir={tmp_path / 'runs'}", "exp_name=run", *overrides]
    return main.main([str(config_path)] + [arg for item in sets for arg in ("--set", item)])


def test_a_value_beyond_the_models_arithmetic_in_one_files_test_part_is_refused_before_training(tmp_path, capsys):
    # it was refused only when the evaluation scaled the test windows: after the whole training, leaving a trained
    # run folder that the cleaned file could not --resume (its data differ) nor rerun (the folder holds a run)
    write_sensors(tmp_path / "pump" / "a.csv")
    write_sensors(tmp_path / "pump" / "b.csv", cell=(220, "1e30"))
    code = train(ROOT / "configs" / "example_csv.json", tmp_path, f"data.path={tmp_path / 'pump'}")
    err = capsys.readouterr().err
    assert code == 2 and f"{tmp_path / 'pump' / 'b.csv'}: row 220, sensor 'b': scaled by the run's training" in err
    assert "Traceback" not in err and not list((tmp_path / "runs").rglob("*.pt"))


def write_timed(path, stamps):
    """One row per timestamp, column ``a`` counting the rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("time,a\n" + "".join(f"{stamp},{i}\n" for i, stamp in enumerate(stamps)))
    return path


def minutes(n, offset=""):
    """``n`` ISO times a minute apart from 08:00, each with the UTC ``offset`` written after it."""
    return [f"2024-05-01T{8 + i // 60:02d}:{i % 60:02d}:00{offset}" for i in range(n)]


@pytest.mark.parametrize("train_end, refused", [("2024-05-01T09:00:00+02:00", "b.csv"),
                                                ("2024-05-01T09:00:00", "a.csv")])
def test_a_train_end_time_that_one_files_utc_offsets_disagree_with_names_that_file(tmp_path, train_end, refused):
    # one logger writes UTC offsets, the other none: no single train_end time reads the same in both
    write_timed(tmp_path / "a.csv", minutes(240, "+02:00"))
    write_timed(tmp_path / "b.csv", minutes(240))
    with pytest.raises(ConfigError, match=rf"{refused}: data.train_end: '{re.escape(train_end)}' has"):
        load_csv(0, path=str(tmp_path), window_length=5, stride=1, timestamp_column="time", train_end=train_end)


def test_the_one_file_whose_columns_differ_from_all_others_is_named_not_a_good_one(tmp_path):
    # the odd file sorts first: the error named each good file as differing from it
    (tmp_path / "a.csv").write_text("t,s1,s2,notes\n" + "".join(f"{i},{i},{i % 3},0\n" for i in range(40)))
    for name in ("b.csv", "c.csv"):
        (tmp_path / name).write_text("t,s1,s2\n" + "".join(f"{i},{i},{i % 3}\n" for i in range(40)))
    with pytest.raises(DataError, match=r"a.csv: its header differs from that of .*b.csv, as 2 of the 3 files' do "
                                        r"\(it has \['notes'\] besides\)"):
        load_csv(0, path=str(tmp_path), window_length=4, train_end=20)


def test_files_given_as_one_comma_separated_string_are_answered_with_the_list_form(tmp_path, monkeypatch):
    # --set data.path=a.csv,b.csv is one name to the loader: the user meant two files
    monkeypatch.chdir(tmp_path)
    for name in ("a.csv", "b.csv"):
        write_sensors(tmp_path / name)
    with pytest.raises(ConfigError, match=r"file not found: a.csv,b.csv .*; several files are a JSON list: "
                                          r"--set 'data.path=\[\"a.csv\", \"b.csv\"\]'"):
        load_csv(0, path="a.csv,b.csv", window_length=10, train_end=100)


def test_a_sensor_constant_in_the_training_windows_is_named_in_a_warning(warnings_seen):
    # its scale falls back to 1 in its own units: any later change of it dominates the scores, unit-dependent
    from agents.detector.scaler import Scaler

    windows = np.random.default_rng(0).normal(size=(20, 10, 3))
    windows[:, :, 1] = 101325.0
    Scaler("minmax").fit(windows, ["s1", "pressure", "s3"])
    assert "scaler: sensor(s) ['pressure'] are constant in the training windows" in warnings_seen.text
