"""Fuzzing the data readers: whatever bytes come in, a correct read or a DataError comes out.

The CSV reader (``datasets.csv_reading``, used by the csv dataset and --mode
score) and the --mode score input (``agents.score_files._Input``: CSV and NPY)
get random bytes and valid files mutated with the characters that break CSV
readers (separators, quotes, line ends, decimal commas, BOMs, NUL, invalid UTF-8,
huge numbers). A successful read must equal what a plain reference parser
(stdlib ``csv`` and ``float``) makes of the same bytes; anything else must be a
``DataError``. ``FUZZ_EXAMPLES=2000`` for a deeper search, as in test_config_fuzz.py.
"""
from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.score_files import _Input
from datasets.csv_reading import FLOAT32_MAX, iter_csv_blocks, read_header
from agents.detector.scaler import Scaler
from datasets.csv_recordings import read_csv_series
from utils.core.errors import ConfigError, DataError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
FEATURES = ["a", "b"]
WINDOW = 3
#: What breaks CSV readers: separators, quotes, line ends, decimal commas, BOMs, NUL, bad UTF-8, huge numbers.
TOKENS = [b",", b";", b".", b'"', b"\n", b"\r", b"\r\n", b"\t", b" ", b"e", b"-", b"+", b"nan", b"inf", b"1e39",
          b"-4e38", b"1,5", b"\xef\xbb\xbf", b"\x00", b"\xff", b"\xc3", b"0", b"9", b"_", "\u0661".encode(), b"NaT",
          b"2024-05-01T08:00:00", b"2024-05-01 08:00:00", b"a", b"t", b"#", b"'"]


def detector(time_column: str | None = "t") -> SimpleNamespace:
    """What :class:`_Input` reads of a detector: window length, features, the run's data columns, and a scaler of
    a run whose sensors span 1e30 (so the scaled-magnitude check never refuses what the reader passes)."""
    scaler = Scaler("none")
    scaler.offset, scaler.scale = np.zeros(len(FEATURES)), np.full(len(FEATURES), 1e30)
    return SimpleNamespace(window_length=WINDOW, feature_names=FEATURES, scaler=scaler, config={"exp_name": "fuzz"},
                           data_columns={"timestamp_column": time_column, "label_column": None,
                                         "missing_values": "refuse", "decimal": ".", "header": True},
                           trained_period=None)


def reference(content: bytes, columns: list[str]) -> np.ndarray:
    """The values of ``columns`` as the stdlib reads ``content``; raises when a row does not fit the format."""
    text = content.decode("utf-8-sig")
    lines = io.StringIO(text, newline="").readlines()
    header = [name.strip() for name in next(csv.reader([lines[0]]))]
    idx = [header.index(c) for c in columns]
    rows = []
    for line in lines[1:]:
        if not line.strip():
            continue
        fields = next(csv.reader([line]))
        assert len(fields) == len(header), (line, header)
        cells = [fields[i].strip() for i in idx]
        assert all(cell.isascii() and "_" not in cell for cell in cells), cells
        rows.append([float(cell) for cell in cells])
    values = np.array(rows, dtype=np.float64).reshape(len(rows), len(idx))
    assert (np.abs(values) <= FLOAT32_MAX).all(), values
    return values


def read_csv_checked(content: bytes, chunk_rows: int) -> None:
    """Read ``content`` every way the project does; each must succeed with the reference values or raise DataError."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.csv"
        path.write_bytes(content)
        try:
            header = read_header(path)
            values = np.concatenate([b.values for b in iter_csv_blocks(path, header, header, [], chunk_rows)]
                                    or [np.zeros((0, len(header)))])
        except DataError as err:
            assert str(err).startswith(str(path))
        else:
            np.testing.assert_array_equal(values, reference(content, header))
        try:
            series = read_csv_series(path)
        except DataError:
            pass
        else:
            np.testing.assert_array_equal(series[0], reference(content, series[1]).astype(np.float32))
        if b"t" in content.split(b"\n", 1)[0]:
            timestamps_checked(path)
        score_input(path, chunk_rows)


def timestamps_checked(path: Path) -> None:
    """The csv dataset with a timestamp column: times that are one format, finite and in order, or a DataError."""
    try:
        times = read_csv_series(path, timestamp_column="t")[3]
    except ConfigError as err:  # the config's columns do not fit the mutated header: no t, or nothing but t
        assert str(err).startswith(("data.timestamp_column:", "data.feature_columns:"))
    except DataError as err:
        assert str(err).startswith(str(path))
    else:
        assert times.dtype.kind in "fM" and not np.any(times[1:] < times[:-1])
        assert not (np.isnat(times).any() if times.dtype.kind == "M" else np.isnan(times).any())


def score_input(path: Path, chunk_rows: int) -> None:
    """--mode score's input reading: every window or a DataError, never another exception."""
    for time_column in ("t", None):
        try:
            source = _Input(path, detector(time_column), None, chunk_rows)
            for _, windows, _ in source.windows(batch=2):
                assert windows.shape[1:] == (WINDOW, len(FEATURES)) and (np.abs(windows) <= FLOAT32_MAX).all()
        except DataError as err:
            assert str(err)


def valid_csv(rows: list[list[float]], with_time: bool) -> bytes:
    header = ["t", *FEATURES] if with_time else FEATURES
    lines = [",".join(header)]
    for i, row in enumerate(rows):
        cells = [repr(v) for v in row]
        lines.append(",".join([f"2024-05-01T08:00:{i % 60:02d}", *cells] if with_time else cells))
    return ("\n".join(lines) + "\n").encode()


def mutate(content: bytes, edits: list[tuple[float, int, int]]) -> bytes:
    """Apply ``(where 0..1, op 0 insert / 1 replace a byte / 2 delete a byte, token index)`` edits."""
    data = bytearray(content)
    for where, op, token in edits:
        at = int(where * len(data))
        if op == 0:
            data[at:at] = TOKENS[token]
        elif op == 1:
            data[at:at + 1] = TOKENS[token]
        else:
            del data[at:at + 1]
    return bytes(data)


finite32 = st.floats(allow_nan=False, allow_infinity=False, width=32)
rows = st.lists(st.lists(finite32, min_size=2, max_size=2), min_size=0, max_size=12)
edits = st.lists(st.tuples(st.floats(0, 1), st.integers(0, 2), st.integers(0, len(TOKENS) - 1)), min_size=1,
                 max_size=6)


@FUZZ
@given(st.binary(max_size=300) | st.lists(st.sampled_from(TOKENS), max_size=40).map(b"".join),
       st.integers(1, 5))
def test_random_bytes_as_csv(content, chunk_rows):
    read_csv_checked(content, chunk_rows)


@FUZZ
@given(rows, st.booleans(), edits, st.integers(1, 5))
def test_mutated_valid_csv(values, with_time, changes, chunk_rows):
    read_csv_checked(mutate(valid_csv(values, with_time), changes), chunk_rows)


def test_valid_csv_reads_exactly():
    content = valid_csv([[1.5, -2.0], [3.4e38, -1e-45], [0.0, 7.25]], with_time=True)
    read_csv_checked(content, chunk_rows=2)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.csv"
        path.write_bytes(content)
        np.testing.assert_array_equal(read_csv_series(path, timestamp_column="t")[0],
                                      np.float32([[1.5, -2.0], [3.4e38, -1e-45], [0.0, 7.25]]))


# ----- NPY --------------------------------------------------------------------------------
DTYPES = ["float16", "float32", "float64", "int8", "int64", "uint64", "bool", "complex64", ">f8", "<i2"]


def read_npy_checked(content: bytes, expected: np.ndarray | None = None) -> None:
    """--mode score on an .npy file: the array's windows (when it is valid) or a DataError."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.npy"
        path.write_bytes(content)
        try:
            source = _Input(path, detector(None), None, chunk_rows=4)
            got = [w for _, w, _ in source.windows(batch=2)]
        except DataError as err:
            assert str(err).startswith(str(path))
            return
    if expected is not None and got:
        want = expected.astype(np.float64)
        if want.ndim == 2:
            want = np.lib.stride_tricks.sliding_window_view(want, WINDOW, axis=0)[::WINDOW].transpose(0, 2, 1)
        np.testing.assert_array_equal(np.concatenate(got), want)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def random_array(dtype: str, shape: tuple[int, ...], scale: float, seed: int) -> np.ndarray:
    """Normal values times ``scale`` cast to ``dtype`` (overflowing to inf or wrapping as the cast does)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return (np.random.default_rng(seed).normal(size=shape) * scale).astype(dtype)


arrays = st.builds(random_array, st.sampled_from(DTYPES),
                   st.sampled_from([(0, 2), (7, 2), (9, 2), (2, WINDOW, 2), (3, 2, 2), (7, 3), (7,), (2, 3, 3, 2)]),
                   st.sampled_from([1.0, 1e30, 1e39, 1e300]), st.integers(0, 2**16))


@FUZZ
@given(arrays)
def test_random_arrays(array):
    read_npy_checked(npy_bytes(array), array)


@FUZZ
@given(arrays, st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=4),
       st.floats(0, 1))
def test_mutated_npy(array, flips, keep):
    data = bytearray(npy_bytes(array))
    for where, byte in flips:
        data[int(where * (len(data) - 1))] = byte
    read_npy_checked(bytes(data[: max(1, int(keep * len(data)))] if keep < 0.3 else data))


@FUZZ
@given(st.binary(max_size=200), st.booleans())
def test_random_bytes_as_npy(content, with_magic):
    read_npy_checked((b"\x93NUMPY\x01\x00" if with_magic else b"") + content)
