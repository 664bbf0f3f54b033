"""``data.header: false``: files without a header row (the UCR anomaly archive's one value a line, SMD's numbers)
read from line 1, their columns named ``"1"``, ``"2"``...; trained on, and scored from a file or a pipe alike."""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest

import main
from agents.detector.detector import Detector
from agents.score_files import live_score
from datasets.csv_recordings import load_csv
from tests.helpers import trained_csv_run
from utils.core.errors import DataError

ROWS = 300


def three_columns() -> list[str]:
    """Two sensors and a label (rows 250..259 anomalous), no header."""
    values = np.random.default_rng(0).normal(size=(ROWS, 2))
    return [f"{a:.3f},{b:.3f},{int(250 <= i < 260)}" for i, (a, b) in enumerate(values)]


def write(path, lines: list[str]):
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def ucr(tmp_path_factory):
    """A one-value-a-line .txt file (as the UCR archive ships) and a 1-epoch run trained on it."""
    root = tmp_path_factory.mktemp("ucr")
    series = np.sin(np.arange(ROWS) * 0.1) + 0.01 * np.random.default_rng(1).normal(size=ROWS)
    path = write(root / "UCR_001.txt", [f"{v:.5f}" for v in series])
    config = trained_csv_run(root, "ucr", {"path": str(path), "header": False, "window_length": 10})
    return root, path, config, series


def test_a_headerless_single_column_txt_trains_and_scores(ucr):
    root, path, config, series = ucr
    detector = Detector.load(root / "ucr")
    assert detector.feature_names == ["1"]
    out = root / "scores.csv"
    assert main.main([str(config), "--mode", "score", "--input", str(path), "--output", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [int(r["start_row"]) for r in rows] == list(range(0, ROWS - 9, 10))  # line 1 is row 0: 30 windows
    windows = np.stack([series[int(r["start_row"]): int(r["start_row"]) + 10, None] for r in rows])
    np.testing.assert_allclose([float(r["score_reconstruction"]) for r in rows],
                               detector.score(windows)["reconstruction"], rtol=1e-4)


def test_scoring_a_headerless_pipe_writes_the_bytes_of_scoring_the_file(ucr):
    root, path, config, _ = ucr
    out = root / "file_scores.csv"
    assert main.main([str(config), "--mode", "score", "--input", str(path), "--output", str(out)]) == 0
    piped = io.StringIO(newline="")
    live_score(Detector.load(root / "ucr"), "-", "-", stdin=io.BytesIO(path.read_bytes()), stdout=piped,
               stderr=io.StringIO(), incidents_path=str(root / "live.incidents.csv"))
    assert piped.getvalue().encode() == out.read_bytes()


def test_three_headerless_columns_with_label_column_3(tmp_path):
    data = load_csv(seed=0, path=str(write(tmp_path / "smd.csv", three_columns())), header=False,
                    label_columns=["3"], window_length=10, stride=2, train_end=200)
    assert data.feature_names == ["1", "2"] and data.info["rows"] == ROWS
    assert data.info["anomalous_rows"] == {"train": 0, "val": 0, "test": 10}


def test_header_false_on_a_file_with_a_header_is_refused_naming_line_1(tmp_path):
    path = write(tmp_path / "named.csv", ["a,b,label", *three_columns()])
    with pytest.raises(DataError, match=r"named.csv: line 1 \('a,b,label'\) holds no number: a header row, not data; "
                                        r"set data.header to true"):
        load_csv(seed=0, path=str(path), header=False, label_columns=["3"], window_length=10)


def test_errors_in_a_headerless_file_count_line_1_as_row_0(tmp_path):
    lines = three_columns()
    lines[5] = "1.0,x,0"
    with pytest.raises(DataError, match=r"bad.csv: row 5 \(line 6\), column '2': 'x' is not a number"):
        load_csv(seed=0, path=str(write(tmp_path / "bad.csv", lines)), header=False, label_columns=["3"],
                 window_length=10)


def test_headerless_files_of_a_folder_need_as_many_columns(tmp_path):
    write(tmp_path / "a.csv", three_columns())
    write(tmp_path / "b.csv", [line + ",1" for line in three_columns()])
    with pytest.raises(DataError, match=r"b.csv: its header differs from that of .*a.csv \(it has \['4'\] besides\)"):
        load_csv(seed=0, path=str(tmp_path), header=False, label_columns=["3"], window_length=10)


def test_a_numbers_only_line_1_is_refused_naming_data_header(tmp_path):
    with pytest.raises(DataError, match=r"line 1 holds only numbers \('0.126,-0.132,0'\); expected a header row naming "
                                        r"the columns; if the file has no header row, set data.header to false"):
        load_csv(seed=0, path=str(write(tmp_path / "x.csv", three_columns())), window_length=10)
