"""``data.missing_values``: a missing sensor cell refused naming it (the default), or given the sensor's value from
the row before ("previous"), alike in training, in file scoring and in scoring from a pipe."""
from __future__ import annotations

import io

import numpy as np
import pytest

import main
from agents.score_files import live_score
from datasets.csv_reading import PreviousFill, iter_csv_blocks, read_header
from datasets.csv_recordings import load_csv
from tests.helpers import trained_csv_run
from utils.core.errors import DataError

ROWS, HOLES = 400, {(5, 1): "", (6, 1): "NA", (130, 0): "nan", (131, 2): "null", (250, 0): " "}


def values() -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.round(rng.normal(size=(ROWS, 3)).cumsum(axis=0) * 0.1, 4)


def write(path, holes=HOLES):
    """A CSV of ``values()`` with the cells of ``holes`` written as missing; returns it and the hand-filled values."""
    x = values()
    cells = [[f"{v:.4f}" for v in row] for row in x]
    filled = x.copy()
    for (r, c), text in holes.items():
        cells[r][c] = text
    for r, c in sorted(holes):
        filled[r, c] = filled[r - 1, c]
    lines = ["t,a,b,c,label", *(f"{i},{','.join(row)},0" for i, row in enumerate(cells))]
    path.write_text("\n".join(lines) + "\n")
    return path, filled


def test_by_default_a_missing_cell_is_refused_naming_it_and_the_key(tmp_path):
    path, _ = write(tmp_path / "m.csv")
    with pytest.raises(DataError) as err:
        load_csv(seed=0, path=str(path), window_length=10, timestamp_column="t", label_column="label")
    assert f"{path}: row 5 (line 7), column 'b': is empty (missing value)" in str(err.value)
    assert 'data.missing_values: "previous"' in str(err.value)


def test_previous_fills_each_cell_from_the_row_before_and_counts_them(tmp_path, warnings_seen):
    path, filled = write(tmp_path / "m.csv")
    data = load_csv(seed=0, path=str(path), window_length=10, stride=1, timestamp_column="t",
                    label_column="label", missing_values="previous", test_fraction=0.2)
    clean, _ = write(tmp_path / "clean.csv", holes={})
    clean.write_text("\n".join(["t,a,b,c,label", *(f"{i},{','.join(f'{v:.4f}' for v in row)},0"
                                                   for i, row in enumerate(filled))]) + "\n")
    expected = load_csv(seed=0, path=str(clean), window_length=10, stride=1, timestamp_column="t",
                        label_column="label", test_fraction=0.2)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(data, split).x, getattr(expected, split).x)
    assert data.info["recordings"][0]["filled_cells"] == {"a": 2, "b": 2, "c": 1}
    assert f"{path} (a: 2, b: 2, c: 1)" in warnings_seen.text


def test_a_first_row_without_a_value_is_refused(tmp_path):
    path, _ = write(tmp_path / "m.csv", holes={(0, 2): ""})
    with pytest.raises(DataError, match=r"row 0 \(line 2\), column 'c': the value is missing and no earlier row"):
        load_csv(seed=0, path=str(path), window_length=10, timestamp_column="t", label_column="label",
                 missing_values="previous")


def test_the_value_carried_crosses_blocks(tmp_path):
    path, filled = write(tmp_path / "m.csv")
    fill = PreviousFill(path, ["a", "b", "c"])
    blocks = list(iter_csv_blocks(path, read_header(path), ["a", "b", "c"], chunk_rows=6, fill=fill))
    assert blocks[1].first_row == 6  # row 6's missing b comes from row 5's, itself from row 4 in the block before
    np.testing.assert_allclose(np.concatenate([b.values for b in blocks]), filled)
    assert fill.counts == {"a": 2, "b": 2, "c": 1}


def test_scoring_a_file_or_a_pipe_reads_missing_cells_as_the_run_did(tmp_path):
    path, filled = write(tmp_path / "m.csv")
    config_path = trained_csv_run(tmp_path, "holes", {"path": str(path), "window_length": 10, "stride": 5,
                                                      "timestamp_column": "t", "label_column": "label",
                                                      "missing_values": "previous"})
    clean = tmp_path / "clean.csv"
    clean.write_text("\n".join(["t,a,b,c,label", *(f"{i},{','.join(f'{v:.4f}' for v in row)},0"
                                                   for i, row in enumerate(filled))]) + "\n")
    score = [str(config_path), "--mode", "score", "--per-step"]
    assert main.main([*score, "--input", str(path), "--output", str(tmp_path / "holes.csv")]) == 0
    assert main.main([*score, "--input", str(clean), "--output", str(tmp_path / "clean_scores.csv")]) == 0
    assert (tmp_path / "holes.csv").read_bytes() == (tmp_path / "clean_scores.csv").read_bytes()
    from agents.detector.detector import Detector
    out = io.StringIO(newline="")
    live_score(Detector.load(tmp_path / "holes"), "-", "-", stdin=io.BytesIO(path.read_bytes()), stdout=out,
               stderr=io.StringIO(), per_step=True, incidents_path=str(tmp_path / "live.incidents.csv"))
    assert out.getvalue().encode() == (tmp_path / "holes.csv").read_bytes()
