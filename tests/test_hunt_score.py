"""--mode score in the situations a bug hunt met: combinations of options, inputs and outputs a user meets."""
from __future__ import annotations

import io
import os

import pytest

from agents.detector.detector import Detector
from agents.score_files import live_score
from tests.test_score_incidents import CSV_RUN, T, example_rows, write_csv
from utils.runs.outputs import OutputError


@pytest.fixture(scope="module")
def run(tiny_runs):
    """The tiny CSV run of tests/test_score_incidents.py (trained once per session) and its detector."""
    run_dir = tiny_runs.of_config(*CSV_RUN)
    return {"dir": run_dir, "argv": [str(run_dir / "config.json"), "--mode", "score"],
            "detector": Detector.load(run_dir, device="cpu")}


@pytest.mark.parametrize("target", ["output", "incidents"])
def test_standard_input_redirected_from_a_file_is_never_overwritten(run, tmp_path, target):
    """``--input - < data.csv --output data.csv --overwrite``: standard input is that very file, so writing there
    would truncate the rows being read (it scored the part read before the truncation and exited 0)."""
    src = write_csv(tmp_path / "data.csv", example_rows(100))
    before = src.read_bytes()
    output, incidents = (str(src), None) if target == "output" else (str(tmp_path / "scores.csv"), str(src))
    with open(src, "rb") as stdin, pytest.raises(OutputError, match="is the input file"):
        live_score(run["detector"], "-", output, overwrite=True, incidents_path=incidents, stdin=stdin,
                   stdout=io.StringIO(), stderr=io.StringIO())
    assert src.read_bytes() == before


def test_a_stream_named_without_csv_suffix_is_scored_live(run, tmp_path):
    """``--input <(producer) --output -`` names /dev/fd/N, a pipe without a .csv suffix: it is read as CSV rows as
    they arrive (before, it was refused as "not CSV, write the scores to a file", and a file output refused it as
    "not a regular file, use --output -": each message sent the user to the other)."""
    data = "\n".join(",".join(row) for row in example_rows(100)).encode() + b"\n"  # 100 rows fit a pipe's buffer
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    try:
        piped = io.StringIO(newline="")
        live_score(run["detector"], f"/dev/fd/{read_end}", "-", stdout=piped, stderr=io.StringIO())
    finally:
        os.close(read_end)
    from_stdin = io.StringIO(newline="")
    live_score(run["detector"], "-", "-", stdin=io.BytesIO(data), stdout=from_stdin, stderr=io.StringIO())
    assert piped.getvalue() == from_stdin.getvalue() and piped.getvalue().count("\n") == 1 + 100 // T


@pytest.mark.parametrize(("n_rows", "stride", "left"), [(100, None, 10), (90, None, 0), (100, 45, 25)])
def test_live_scoring_reports_the_rows_after_the_last_full_window(run, n_rows, stride, left):
    """As a file's summary does (docs/scoring.md: rows after the last full window are reported, not scored)."""
    data = "\n".join(",".join(row) for row in example_rows(n_rows)).encode() + b"\n"
    messages = io.StringIO()
    summary = live_score(run["detector"], "-", "-", stride=stride, stdin=io.BytesIO(data), stdout=io.StringIO(),
                         stderr=messages)
    assert summary["rows_not_scored"] == left
    assert (f"last {left} rows not in a full window" in messages.getvalue()) == (left > 0)


def test_live_outputs_go_into_a_folder_made_for_them_as_batch_outputs_do(run, tmp_path):
    data = "\n".join(",".join(row) for row in example_rows(100)).encode() + b"\n"
    output, incidents = tmp_path / "new" / "deep" / "scores.csv", tmp_path / "other" / "incidents.csv"
    live_score(run["detector"], "-", str(output), incidents_path=str(incidents), stdin=io.BytesIO(data),
               stderr=io.StringIO())
    assert output.read_text().count("\n") == 1 + 100 // T and incidents.read_text().startswith("incident,")
