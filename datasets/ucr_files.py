"""UCR time-series files: ``.txt`` (label first), sktime ``.ts`` and Weka ``.arff`` (label last).

Every reader returns float32 ``(N, T)`` series and int64 ``(N,)`` labels, or raises DataError naming the file,
line and field (ragged rows, text, NaN/inf, values beyond float32, labels that are not whole numbers).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from datasets.csv_reading import beyond_float64, first_bad_value
from utils.core.errors import DataError

SUFFIXES = (".txt", ".ts", ".arff")
_MAX_LABEL = 2**53  # whole numbers beyond this are not exact in float64


def read_ucr_txt(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a UCR ``.txt`` file (whitespace-separated, label in column 0): ``(x (N, T), labels (N,))``."""
    path = Path(path)
    rows, line_nos = _parsed_rows(path, lambda no, text: text.split() if text else None)
    return _rows_to_arrays(rows, line_nos, path, label_col=0)


def read_ucr_ts(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a univariate sktime ``.ts`` file (``#``/``@`` header, then ``v1,...,vT:label``): ``(x, labels)``."""
    path = Path(path)

    def row(no: int, text: str) -> list[str] | None:
        if not text or text[0] in "#@":
            return None
        values, sep, label = text.rpartition(":")
        if not sep or ":" in values:
            raise DataError(f"{path}: line {no}: expected one univariate series and its label as 'v1,...,vT:label', "
                            f"got {text[:60]!r}")
        return values.split(",") + [label]

    rows, line_nos = _parsed_rows(path, row)
    return _rows_to_arrays(rows, line_nos, path, label_col=-1)


def read_ucr_arff(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a Weka ``.arff`` file (header up to ``@data``, then comma rows, label last): ``(x, labels)``."""
    path = Path(path)
    in_data = False

    def row(no: int, text: str) -> list[str] | None:
        nonlocal in_data
        if not text or text.startswith("%"):
            return None
        if in_data:
            return text.split(",")
        in_data = text.lower() == "@data"
        return None

    rows, line_nos = _parsed_rows(path, row)
    if not in_data:
        raise DataError(f"{path}: no '@data' line; expected an ARFF header ending in @data, "
                        "then one comma-separated row per series with the label last")
    return _rows_to_arrays(rows, line_nos, path, label_col=-1)


_READERS = {".txt": read_ucr_txt, ".ts": read_ucr_ts, ".arff": read_ucr_arff}


def read_ucr(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a UCR file, picking the parser from its suffix: float32 (N, T) series, int64 (N,) labels."""
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unknown file suffix {path.suffix!r}; valid suffixes: {', '.join(SUFFIXES)}")
    return reader(path)


def _parsed_rows(path: Path, parse: Callable[[int, str], list[str] | None]) -> tuple[list[list[str]], list[int]]:
    """The rows ``parse(1-based line number, stripped line)`` returns (None skips the line), with their line numbers.

    DataError if the file cannot be read or is not UTF-8 text.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file: {exc}") from exc
    try:
        text = raw.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line}: bytes that are not UTF-8 text ({exc.reason}); save the file as "
                        "UTF-8") from None
    rows, line_nos = [], []
    for no, line in enumerate(text.split("\n"), start=1):
        fields = parse(no, line.strip())
        if fields is not None:
            rows.append(fields)
            line_nos.append(no)
    return rows, line_nos


def _rows_to_arrays(rows: list[list[str]], line_nos: list[int], path: Path,
                    label_col: int) -> tuple[np.ndarray, np.ndarray]:
    """Turn token rows into float32 series and int64 labels, checking everything."""
    if not rows:
        raise DataError(f"{path}: holds no data rows; expected one series and its label per line")
    widths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    if (widths != widths[0]).any():
        i = int(np.flatnonzero(widths != widths[0])[0])
        raise DataError(f"{path}: line {line_nos[i]} has {widths[i]} fields, expected {widths[0]} "
                        f"like line {line_nos[0]} (rows of different lengths)")
    if widths[0] < 2:
        raise DataError(f"{path}: line {line_nos[0]} has {widths[0]} field; expected a label and values")
    table = _parse_numbers(rows, line_nos, path)
    labels = table[:, label_col]
    x = np.delete(table, label_col, axis=1)
    first_field = 2 if label_col == 0 else 1  # the file's field number of x[:, 0]
    bad = ~np.isfinite(x)
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        field = c + first_field
        where = f"{path}: line {line_nos[r]}, field {field}"
        overflow = beyond_float64(rows[r][field - 1], float(x[r, c]))
        if overflow:
            raise DataError(f"{where}: {overflow}")
        n_bad = int(bad.any(axis=1).sum())
        raise DataError(f"{where} holds {x[r, c]:g}, not a finite number ({n_bad} bad rows in all); clean or drop "
                        "these rows")
    found = first_bad_value(x)
    if found is not None:
        (r, c), what = found
        raise DataError(f"{path}: line {line_nos[r]}, field {c + first_field}: value {what}")
    bad = ~np.isfinite(labels) | (labels != np.round(labels)) | (np.abs(labels) > _MAX_LABEL)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "is too large for a class number" if np.abs(labels[i]) > _MAX_LABEL else "is not a whole number"
        raise DataError(f"{path}: line {line_nos[i]}: label {labels[i]:g} {what}")
    return x.astype(np.float32), labels.astype(np.int64)


def _parse_numbers(rows: list[list[str]], line_nos: list[int], path: Path) -> np.ndarray:
    """Parse token rows as float64; DataError naming the first unreadable token."""
    try:
        return np.array(rows, dtype=np.float64)
    except ValueError:
        for row, no in zip(rows, line_nos):
            for col, token in enumerate(row, start=1):
                try:
                    float(token)
                except ValueError:
                    raise DataError(f"{path}: line {no}, field {col}: cannot read {token!r} "
                                    "as a number; expected a decimal number") from None
        raise DataError(f"{path}: holds text that cannot be read as numbers") from None
