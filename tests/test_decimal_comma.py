"""``data.decimal: ","``: numbers written with decimal commas (``1234,5``, in files separated by ``;``, tab or
``|``) are read as the same files written with decimal points, in training and in scoring from a file or a pipe."""
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
from utils.core.errors import ConfigError, DataError

ROWS = 300


def values() -> np.ndarray:
    rng = np.random.default_rng(5)
    return np.round(rng.normal(size=(ROWS, 2)).cumsum(axis=0) + 1000, 3)


def write(path, separator=";", decimal=","):
    lines = [separator.join(["t", "a", "b", "label"])]
    for i, row in enumerate(values()):
        lines.append(separator.join([str(i), *(f"{v:.3f}".replace(".", decimal) for v in row), "0"]))
    path.write_text("\n".join(lines) + "\n")
    return path


KEYS = dict(window_length=10, stride=1, timestamp_column="t", label_column="label", test_fraction=0.2)


def test_decimal_commas_read_as_the_same_numbers_with_points(tmp_path):
    commas = load_csv(seed=0, path=str(write(tmp_path / "eu.csv")), decimal=",", **KEYS)
    points = load_csv(seed=0, path=str(write(tmp_path / "us.csv", ",", ".")), **KEYS)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(commas, split).x, getattr(points, split).x)


def test_a_dotted_number_or_a_comma_separated_file_is_refused(tmp_path):
    path = write(tmp_path / "eu.csv")
    lines = path.read_text().splitlines()
    lines[4] = "3;1.234,5;999,1;0"  # a thousands separator: 1234.5 or 1.2345? refused, not guessed
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 3 \(line 5\), column 'a': '1.234,5' is not a number \(the numbers are "
                                        r"read with decimal commas"):
        load_csv(seed=0, path=str(path), decimal=",", **KEYS)
    with pytest.raises(ConfigError, match=r"data.decimal: \",\" \(decimal commas\) needs files separated otherwise"):
        load_csv(seed=0, path=str(write(tmp_path / "us.csv", ",", ".")), decimal=",", **KEYS)
    with pytest.raises(DataError, match=r"'\d+,\d+' is not a number \(a decimal comma\? write 1.5 for 1,5, or read "
                                        r"them with data.decimal: \",\"\)"):
        load_csv(seed=0, path=str(write(tmp_path / "eu2.csv")), **KEYS)


def test_scoring_reads_decimal_commas_as_the_run_did(tmp_path):
    path = write(tmp_path / "eu.csv")
    config_path = trained_csv_run(tmp_path, "eu", {"path": str(path), "decimal": ",", **KEYS})
    out = tmp_path / "scores.csv"
    assert main.main([str(config_path), "--mode", "score", "--input", str(path), "--output", str(out)]) == 0
    detector = Detector.load(tmp_path / "eu")
    rows = list(csv.DictReader(out.open()))
    windows = np.stack([values()[int(r["start_row"]): int(r["start_row"]) + 10] for r in rows])
    np.testing.assert_allclose([float(r["score_reconstruction"]) for r in rows],
                               detector.score(windows)["reconstruction"], rtol=1e-5)
    piped = io.StringIO(newline="")
    live_score(detector, "-", "-", stdin=io.BytesIO(path.read_bytes()), stdout=piped, stderr=io.StringIO(),
               incidents_path=str(tmp_path / "live.incidents.csv"))
    assert piped.getvalue().encode() == out.read_bytes()
