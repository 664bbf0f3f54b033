"""Live scoring: ``python main.py CONFIG --mode score --input - --output -`` fed rows slowly through a pipe."""
from __future__ import annotations

import csv
import io
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import main
from agents.detector.detector import Detector
from agents.score_files import score_file
from tests.helpers import REPO_ROOT
from tests.test_score_incidents import CSV_RUN, T, fault_rows, read_csv, write_csv
from utils.core.errors import DataError

WAIT_S = 90  # a busy machine starts python + torch slowly


@pytest.fixture(scope="module")
def run(tiny_runs):
    run_dir = tiny_runs.of_config(*CSV_RUN)
    return {"dir": run_dir, "detector": Detector.load(run_dir, device="cpu")}


class Live:
    """The live scorer in a subprocess: rows go in through its stdin, its stdout lines come out on a queue."""

    def __init__(self, run_dir, output="-", *args):
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "main.py"), str(run_dir / "config.json"), "--mode", "score",
             "--input", "-", "--output", str(output), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT)
        self.lines: queue.Queue[str] = queue.Queue()
        self.err: list[bytes] = []
        threading.Thread(target=lambda: [self.lines.put(line.decode()) for line in self.proc.stdout],
                         daemon=True).start()
        threading.Thread(target=lambda: self.err.extend(self.proc.stderr), daemon=True).start()
        self.sent = 0

    def send(self, rows, pause=0.0, every=10):
        """Write rows (lists of text), ``every`` at a time with ``pause`` seconds between."""
        for i in range(0, len(rows), every):
            self.proc.stdin.write("".join(",".join(r) + "\n" for r in rows[i: i + every]).encode())
            self.proc.stdin.flush()
            self.sent += len(rows[i: i + every])
            time.sleep(pause)

    def line(self, timeout=WAIT_S) -> str:
        return self.lines.get(timeout=timeout)

    def end(self, timeout=WAIT_S) -> int:
        """Close stdin and wait; the exit code."""
        self.proc.stdin.close()
        return self.proc.wait(timeout)

    def rest(self) -> list[str]:
        time.sleep(0.2)  # the reader thread has seen EOF once the process ended
        out = []
        while not self.lines.empty():
            out.append(self.lines.get())
        return out

    @property
    def stderr(self) -> str:
        return b"".join(self.err).decode()


def wait_for_lines(path, n, timeout=WAIT_S):
    """Wait until ``path`` holds at least ``n`` complete lines; its lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        lines = text.splitlines(keepends=True)
        complete = [line for line in lines if line.endswith("\n")]
        if len(complete) >= n:
            return complete
        time.sleep(0.05)
    raise AssertionError(f"{path}: fewer than {n} lines after {timeout} s: {text[-300:]!r}")


def batch(run, tmp_path, rows, name="batch"):
    """The batch scores and incidents of the same rows (score_file, in-process)."""
    src = write_csv(tmp_path / f"{name}_in.csv", rows)
    out = tmp_path / f"{name}.csv"
    score_file(run["detector"], src, out)
    return read_csv(out), read_csv(tmp_path / f"{name}.incidents.csv")


def assert_same_rows(live, expected):
    """Same rows, columns and text: live windows are scored at the batch scorer's places in its padded batches
    (agents.score_loop.PlacedScoring), however the reads cut them."""
    assert live and live == expected


def test_rows_are_scored_as_they_arrive_like_the_batch(run, tmp_path):
    rows = fault_rows(600)
    live = Live(run["dir"])
    live.send(rows[: 1 + T + 10], pause=0.01)
    header, first = live.line(), live.line()  # the first window, while 560 rows are still to come
    assert live.sent == 1 + T + 10 and live.proc.poll() is None
    assert header.startswith("window,start_row,start_timestamp,score_reconstruction")
    assert first.startswith(f"0,0,{rows[1][0]},")
    live.send(rows[1 + T + 10:], pause=0.005, every=20)
    assert live.end() == 0, live.stderr
    text = [header, first, *live.rest()]
    scores, incidents = batch(run, tmp_path, rows)
    assert_same_rows(list(csv.DictReader(text)), scores)
    said = re.findall(r"incident (\d+): (\w+), rows (\d+)-(\d+), from (\S+) to (\S+) \((\d+) s\), peak score",
                      live.stderr)
    assert incidents and [(int(n), f, int(a), int(b), t0, t1, float(d)) for n, f, a, b, t0, t1, d in said] == [
        (int(i["incident"]), i["top_feature"], int(i["start_row"]), int(i["end_row"]), i["start_time"],
         i["end_time"], float(i["duration_s"])) for i in incidents]
    assert re.search(rf"ended at the end of input: {len(scores)} windows of {T} rows \(stride {T}\) from 600 rows",
                     live.stderr), live.stderr


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130),
                                         pytest.param(signal.SIGTERM, 143, marks=pytest.mark.slow)])
def test_a_file_grows_line_by_line_and_a_stop_signal_keeps_every_line(run, tmp_path, signum, code):
    rows = fault_rows(900, faults=((100, 130), (300, 900)))  # the second fault lasts: open when the signal comes
    out, incidents_file = tmp_path / "live.csv", tmp_path / "live.incidents.csv"
    live = Live(run["dir"], out)
    live.send(rows[: 1 + 500], pause=0.002, every=20)
    n_windows = 500 // T
    wait_for_lines(out, 1 + n_windows)
    first = wait_for_lines(incidents_file, 2)  # incident 1 closed and written while the input goes on
    assert live.proc.poll() is None and len(first) == 2 and first[1].startswith("1,")
    live.proc.send_signal(signum)
    assert live.proc.wait(WAIT_S) == code, live.stderr
    with open(out, newline="") as handle:
        header, *lines = list(csv.reader(handle))
    assert len(lines) == n_windows and all(len(line) == len(header) for line in lines)
    assert [int(line[0]) for line in lines] == list(range(n_windows))
    scores, expected = batch(run, tmp_path, rows[: 1 + n_windows * T])  # the rows it had windows of, scored whole
    assert_same_rows(read_csv(out), scores)
    incidents = read_csv(incidents_file)  # the open incident closed at the last scored row, and written
    assert len(expected) == 2 and incidents[-1]["end_row"] == str(n_windows * T - 1)
    assert_same_rows(incidents, expected)
    assert f"stopped by {signal.Signals(signum).name}" in live.stderr and "Traceback" not in live.stderr
    assert f"incidents to {incidents_file}" in live.stderr


def test_a_bad_row_mid_stream_exits_2_naming_its_line(run, tmp_path, monkeypatch, capsys):
    rows = fault_rows(130)
    bad = list(rows[101])
    bad[1] = "4x.5"
    text = "".join(",".join(r) + "\n" for r in [*rows[:101], bad, *rows[102:]])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(text.encode()))))
    out = tmp_path / "live.csv"
    assert main.main([str(run["dir"] / "config.json"), "--mode", "score", "--input", "-", "--output", str(out)]) == 2
    assert "error: <stdin>: row 100 (line 102), column 'voltage': '4x.5' is not a number" in capsys.readouterr().err
    with open(out, newline="") as handle:  # the windows of rows 0-89 are written, whole
        header, *lines = list(csv.reader(handle))
    assert len(lines) == 100 // T and all(len(line) == len(header) for line in lines)
    assert [line[1] for line in lines] == [str(i * T) for i in range(100 // T)]


def test_a_closed_output_pipe_ends_it_quietly(run, monkeypatch, capsys):
    rows = fault_rows(2000)
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `| head` does once it has its lines
    text = "".join(",".join(r) + "\n" for r in rows)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(text.encode()))))
    with open(write_end, "w") as pipe:
        monkeypatch.setattr(sys, "stdout", pipe)
        assert main.main([str(run["dir"] / "config.json"), "--mode", "score", "--input", "-", "--output", "-"]) == 0
        monkeypatch.undo()
    assert capsys.readouterr().err == ""


def test_memory_does_not_grow_with_the_stream(run, tmp_path):
    """Peak resident memory (VmHWM) after 20k rows and after 200k more, in one process sent rows as fast as it reads."""
    example = fault_rows(7200, faults=())
    header, body = example[0], example[1:]
    out = tmp_path / "m.csv"
    proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "main.py"), str(run["dir"] / "config.json"), "--mode",
                             "score", "--input", "-", "--output", str(out)], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO_ROOT)
    proc.stdin.write((",".join(header) + "\n").encode())
    peaks, sent = [], 0
    for n in (20_000, 200_000):
        stamps = (np.datetime64("2024-05-01T08:00:00") + np.arange(sent, sent + n)).astype(str)
        proc.stdin.write("".join(f"{stamps[i]},{','.join(body[(sent + i) % len(body)][1:])}\n"
                                 for i in range(n)).encode())
        proc.stdin.flush()
        sent += n
        wait_for_lines(out, 1 + sent // T)  # every window scored so far
        with open(f"/proc/{proc.pid}/status") as handle:  # not getrusage: it counts the forking parent's pages
            status = handle.read()
        peaks.append(int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)))
    proc.stdin.close()
    assert proc.wait(WAIT_S) == 0
    # holding the 200k extra rows as float64 alone would take 200_000 * 3 * 8 B = 4.6 MiB, their timestamps more
    assert peaks[1] - peaks[0] < 2 * 1024, peaks


CONTENTS = [
    b"t,a,b\n0,1,2\n1,3,4\n",
    b"\xef\xbb\xbft,a,b\r\n0,1,2\r\n\r\n1,3,4\r\n2,5,6",  # byte-order mark, CRLF, a blank line, no final newline
    b't,a,b\n0,"1",2\n1,3,"4"\n',
    b"t,a,b\n0,1,2\n1,nan,4\n",
    b"t,a,b\n0,1,2\n1,3\n",
    b"t,a,b\n0,1,2\n1,3,4,5\n",
    b"t,a,b\n0,1,2\n1,3,4e39\n",
    b"t,a,b\n0,1,2\n1,,4\n",
    b"t,a,b\n0,1,2\n1,3,\xff\n",
    b"t,a,b\r0,1,2\r1,3,4\r",  # old Mac line ends
    b"", b"\n\nt,a,b\n0,1,2\n",  # no header
    b"t,a,b\n0,1,2\n1,x,4\n2,5\n",  # the first bad line is named, whatever fault comes after it
    b"t;a;b\n0;1,5;2\n",  # ';'-separated with decimal commas, said from line 2
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03",  # gzip
    "t,a,b\n0,1,2\n".encode("utf-16"),
]


@pytest.mark.parametrize("content", CONTENTS)
def test_a_stream_is_read_and_refused_as_the_same_file(tmp_path, content):
    """CsvStream, fed 3 bytes per read, gives the values iter_csv_blocks reads of a file, or the same error."""
    from datasets.csv_reading import CsvStream, iter_csv_blocks, read_header

    path = tmp_path / "in.csv"
    path.write_bytes(content)

    def where(err):  # the message but for the name
        return str(err).replace(str(path), "<stdin>")

    try:
        header = read_header(path)
        expected = np.concatenate([b.values for b in iter_csv_blocks(path, header, ["a", "b"], ["t"])])
    except DataError as err:
        expected = where(err)

    class Trickle(io.BytesIO):
        def read1(self, n=-1):
            return super().read1(3)

    stream = CsvStream(Trickle(content))
    try:
        assert stream.read_header() == header
        got = np.concatenate([b.values for b in stream.blocks(header, ["a", "b"], ["t"])])
    except DataError as err:
        got = where(err)
    if isinstance(expected, str):
        assert got == expected
    else:
        np.testing.assert_array_equal(got, expected)


def test_incidents_dash_are_lines_on_stderr_live_and_refused_in_batch(run, tmp_path, monkeypatch, capsys):
    rows = fault_rows(1000)
    text = "".join(",".join(r) + "\n" for r in rows)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(text.encode()))))
    out = tmp_path / "live.csv"
    argv = [str(run["dir"] / "config.json"), "--mode", "score", "--input", "-", "--output", str(out)]
    assert main.main([*argv, "--incidents", "-"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"^incident 1: \w+, rows \d+-\d+", err, re.M), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.csv"]  # no file named "-", none beside it
    src = write_csv(tmp_path / "in.csv", rows)
    batch_argv = [str(run["dir"] / "config.json"), "--mode", "score", "--input", str(src), "--output",
                  str(tmp_path / "b.csv"), "--incidents", "-"]
    assert main.main(batch_argv) == 2
    assert "--incidents -: standard error takes incidents of live scoring only" in capsys.readouterr().err
    assert not (tmp_path / "b.csv").exists()
