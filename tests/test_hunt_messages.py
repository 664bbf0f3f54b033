"""Messages a user hunt found wanting: each names the cell, key or file at fault and says what would do."""
from __future__ import annotations

import io
import shutil

import pytest

import main
from agents.detector.detector import Detector
from agents.score_files import live_score, score_file
from datasets.csv_recordings import load_csv
from tests.test_score_incidents import CSV_RUN, example_rows, write_csv
from tests.helpers import REPO_ROOT
from utils.core.config import load_config
from utils.core.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def detector(tiny_runs) -> Detector:
    """The tiny CSV run of tests/test_score_incidents.py (trained with data.missing_values "refuse")."""
    return Detector.load(tiny_runs.of_config(*CSV_RUN), device="cpu")


@pytest.mark.parametrize("cell", ["", "NaN"])
def test_a_missing_cell_at_score_time_does_not_offer_a_set_the_run_refuses(detector, tmp_path, cell):
    """``--mode score`` refuses ``--set data.missing_values=previous`` (it would change the trained run), so the
    message says what can be done: fill the cell, or train a run that fills it (before: it offered that key)."""
    rows = example_rows(60)
    rows[5][2] = cell
    src = write_csv(tmp_path / "in.csv", rows)
    with pytest.raises(DataError) as from_file:
        score_file(detector, src, tmp_path / "scores.csv")
    with pytest.raises(DataError) as live:
        live_score(detector, "-", "-", stdin=io.BytesIO(src.read_bytes()), stdout=io.StringIO(),
                   stderr=io.StringIO())
    for err in (from_file, live):
        assert "row 4 (line 6), column 'current'" in str(err.value)
        assert "the run was trained refusing missing cells: fill the cell, or train a run with " \
               "data.missing_values \"previous\"" in str(err.value)
        assert "clean or fill these cells (data.missing_values" not in str(err.value)


@pytest.mark.parametrize(("times", "row"), [(["2024-05-01T08:00:00", "2024-05-01T08:00:01", ""], 2),
                                            (["", "1", "2"], 0), (["0", "1", ""], 2)])
def test_an_empty_timestamp_is_called_empty(tmp_path, times, row):
    """Before: "timestamp '' is written in another format than row 0" (or "'' is neither a number nor ...")."""
    path = tmp_path / "t.csv"
    path.write_text("time,a\n" + "".join(f"{t},{i}\n" for i, t in enumerate(times)))
    with pytest.raises(DataError) as err:
        load_csv(0, path=str(path), window_length=4, timestamp_column="time", label_column=None)
    assert str(err.value).startswith(f"{path}: row {row} (line {row + 2}), column 'time': the timestamp is empty; "
                                     "every row needs its time, a number or an ISO 8601 date/time")


@pytest.mark.parametrize("row", ["1,2,3,", "1,2,3, ", '1,"2",3,'])
def test_a_row_ending_with_the_separator_is_said_to(tmp_path, row):
    """As the header check says it of a header ending with one (before: "4 fields, but the header has 3 columns (a,
    b, c)" and nothing more)."""
    path = tmp_path / "t.csv"
    path.write_text(f"a,b,c\n{row}\n4,5,6\n")
    with pytest.raises(DataError) as err:
        load_csv(0, path=str(path), window_length=2, label_column=None)
    assert str(err.value) == (f"{path}: row 0 (line 2): 4 fields, but the header has 3 columns (a, b, c); the line ends "
                              "with the separator: remove the separator at the end of each row")


def test_a_row_with_a_filled_extra_field_gets_no_such_hint(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,c\n1,2,3,4\n")
    with pytest.raises(DataError, match="header has 3 columns") as err:
        load_csv(0, path=str(path), window_length=2, label_column=None)
    assert "ends with the separator" not in str(err.value)


@pytest.mark.parametrize(("value", "hint"), [("50.25", True), ("400.0", True), ("-3.5", False), ("0", False)])
def test_a_train_end_number_above_one_with_a_point_is_told_to_be_quoted_as_a_time(value, hint):
    """A numeric timestamp given as a number (50.25) is no row and no share: quoted it is a time, as the message now
    says (before: only "expected a row number above 0 ..., or a time as the timestamp column writes it")."""
    with pytest.raises(ConfigError) as err:
        load_config(REPO_ROOT / "configs" / "example_csv.json", [f"data.train_end={value}"])
    quoted = f"a time as the timestamp column writes it (a number as a time is text: \"{value}\", " \
             f"--set 'data.train_end=\"{value}\"'), got {value}"
    assert (quoted in str(err.value)) is hint and "data.train_end: expected a row number above 0" in str(err.value)


def test_a_run_folder_given_as_config_names_the_runs_config(tmp_path, capsys):
    """``python main.py experiments/myrun``: before, only "config file is a folder, not a file; expected a JSON file
    such as configs/vae_converter.json"; a folder without config.json keeps that message."""
    run = tmp_path / "myrun"
    run.mkdir()
    assert main.main([str(run)]) == 2
    assert "run's config" not in capsys.readouterr().err
    shutil.copy(REPO_ROOT / "configs" / "example_csv.json", run / "config.json")
    assert main.main([str(run)]) == 2
    assert capsys.readouterr().err.strip().endswith(f"is a folder, not a file; expected a JSON file such as "
                                                    f"configs/vae_converter.json; the run's config is {run / 'config.json'}")
