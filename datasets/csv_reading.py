"""Reading a CSV file block by block: read right, or refused naming the file, row, line and column.

The format read: UTF-8 text (a leading byte-order mark is skipped), a header row
naming the columns, then one row per time step with exactly as many fields as the
header, ``,`` between fields and ``.`` as the decimal point (``48.012,10.05``).
Fields may be quoted as the stdlib :mod:`csv` module writes them. Blank lines
are skipped. Everything else is a :class:`~utils.core.errors.DataError`:

* a row with more or fewer fields than the header (a decimal comma, ``1,5``,
  splits a number in two and is named as the likely cause);
* a file separated by ``;``, tabs or ``|`` (named, with its decimal commas);
* a cell that is not a number (numbers as :func:`float` reads them, ASCII
  only, no ``_`` separators), is empty, NaN or infinite, or lies outside the
  float32 range (+-3.4e38) the models compute in;
* bytes that are not UTF-8 (the first such line is named).

Rows are counted from 0 (the first line after the header); lines from 1.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import BinaryIO

import numpy as np

from utils.core.errors import DataError

DEFAULT_CHUNK_ROWS = 8192  # rows read at a time when scoring: ~4 MiB above the fixed cost for 3 features
FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_RANGE = f"the float32 range the models compute in, +-{FLOAT32_MAX:.8g}"
OTHER_SEPARATORS = {";": "';'", "\t": "tab", "|": "'|'"}
EXPECTED_FORMAT = "the reader expects ',' between fields and '.' as the decimal point (e.g. 48.012,10.05)"
_DECIMAL_COMMA = re.compile(r"\d,\d")
_LINE_END = re.compile(rb"\r\n|\r|\n")  # as text mode with newline="" splits lines
_HEADER_BYTES = 16 * 2**20  # the header and the first data line must fit here


# ----- the header ------------------------------------------------------------------------
def read_header(path: str | Path) -> list[str]:
    """Column names from the first line of a CSV file.

    Raises:
        DataError: missing/unreadable/empty file, another separator than ``,``,
            empty or duplicate column names, a header of numbers only.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            start = _head(handle)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err})") from None
    lines = _LINE_END.split(start, maxsplit=2)
    try:
        first = lines[0].decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: line 1: bytes that are not UTF-8 text ({err.reason}); save the file as "
                        "UTF-8") from None
    if len(lines) == 1 and len(start) == _HEADER_BYTES:
        raise DataError(f"{path}: line 1 is longer than {_HEADER_BYTES // 2**20} MiB; expected a header row "
                        "naming the columns")
    second = lines[1].decode("utf-8", errors="replace") if len(lines) > 1 else ""
    if not first.strip():
        what = "the file is empty" if not start.strip() else "line 1 is blank"
        raise DataError(f"{path}: {what}; expected a header row naming the columns")
    header = [name.strip() for name in split_line(first, path, 1)]
    shown = first.strip()[:80]
    if len(header) == 1:
        _refuse_other_separator(path, first, second)
    if any(not name for name in header):
        raise DataError(f"{path}: line 1: the header has an empty column name ({shown!r})")
    dupes = sorted({name for name in header if header.count(name) > 1})
    if dupes:
        raise DataError(f"{path}: line 1: duplicate column names {dupes[:10]}")
    try:
        [float(name) for name in header]
    except ValueError:
        return header
    raise DataError(f"{path}: line 1 holds only numbers ({shown[:60]!r}); expected a header row naming the columns")


def _head(handle: BinaryIO) -> bytes:
    """The file's first bytes: up to the end of its second line, at most ``_HEADER_BYTES``."""
    pieces, size, ends = [], 0, 0
    while size < _HEADER_BYTES and ends < 3:
        piece = handle.read(1 << 16)
        if not piece:
            break
        pieces.append(piece)
        size += len(piece)
        ends += len(_LINE_END.findall(piece))
    return b"".join(pieces)[:_HEADER_BYTES]


def _refuse_other_separator(path: Path, first: str, second: str) -> None:
    """DataError if a one-column header holds ``;``, a tab or ``|``: the file uses another separator."""
    found = [(sep, name) for sep, name in OTHER_SEPARATORS.items() if sep in first]
    if not found:
        return
    sep, name = found[0]
    decimal = [cell.strip() for cell in second.split(sep) if _DECIMAL_COMMA.search(cell)]
    commas = f" with decimal commas (line 2: {decimal[0][:20]!r})" if decimal else ""
    example = f"sep={sep!r}" + (", decimal=','" if decimal else "")
    raise DataError(f"{path}: line 1: the file looks {name}-separated{commas}; {EXPECTED_FORMAT}. Write it "
                    f"comma-separated, e.g. pandas.read_csv(path, {example}).to_csv('new.csv', index=False)")


def split_line(line: str, path: Path, line_no: int) -> list[str]:
    """The fields of one line as the :mod:`csv` module reads them; DataError if it cannot."""
    try:
        return next(csv.reader([line]), [])
    except csv.Error as err:
        raise DataError(f"{path}: line {line_no}: cannot split the line into fields ({err})") from None


def header_text(header: list[str], limit: int = 12) -> str:
    """The column names for a message, at most ``limit`` of them."""
    more = f", ... ({len(header)} in all)" if len(header) > limit else ""
    return ", ".join(header[:limit]) + more


# ----- the rows --------------------------------------------------------------------------
@dataclass
class Block:
    """Rows ``first_row .. first_row + len(values) - 1`` of a file (data rows counted from 0).

    Attributes:
        first_row: index of the first row (0 = the first line after the header).
        values: float64 (rows, F) values of the requested numeric columns.
        text: str (rows, K) values of the requested text columns, or None.
        line_nos: int64 (rows,) file line of each row (1 = the header), for messages.
    """

    first_row: int
    values: np.ndarray
    text: np.ndarray | None = None
    line_nos: np.ndarray | None = None


@dataclass
class _Lines:
    """Non-blank lines of a file and where they are, for messages."""

    path: Path
    header: list[str]
    first_row: int
    line_nos: list[int]
    lines: list[str]

    def where(self, r: int) -> str:
        """``"FILE: row R (line L)"`` of the ``r``-th line here."""
        return f"{self.path}: row {self.first_row + r} (line {self.line_nos[r]})"


def iter_csv_blocks(path: str | Path, header: list[str], columns: list[str], text_columns: list[str] = (),
                    chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Block]:
    """Read the numeric ``columns`` (and raw ``text_columns``) block by block.

    At most ``chunk_rows`` lines are held at a time. Blank lines are skipped.

    Raises:
        DataError: naming the row (0-based, after the header), the file line and
            the column of the first bad cell or row (see the module docstring).
    """
    path = Path(path)
    idx = [header.index(c) for c in columns]
    text_idx = [header.index(c) for c in text_columns]
    row = 0
    for line_nos, lines in _line_blocks(path, chunk_rows):
        block = _Lines(path, header, row, line_nos, lines)
        fields = _split_checked(block)
        values = _numbers(block, fields, idx)
        text = None
        if text_idx:
            if fields is None:
                text = np.loadtxt(lines, delimiter=",", usecols=text_idx, dtype=str, ndmin=2, comments=None)
            else:
                text = np.array([[f[i] for i in text_idx] for f in fields], dtype=str).reshape(len(fields), -1)
            text = np.char.strip(text)
        yield Block(row, values, text, np.asarray(line_nos, dtype=np.int64))
        row += len(lines)


def _line_blocks(path: Path, chunk_rows: int) -> Iterator[tuple[list[int], list[str]]]:
    """``(line numbers, lines)`` of up to ``chunk_rows`` non-blank lines after the header."""
    line_no = 1
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            handle.readline()
            while lines := list(islice(handle, chunk_rows)):
                kept = [(line_no + 1 + i, line) for i, line in enumerate(lines) if line.strip()]
                line_no += len(lines)
                if kept:
                    yield [k for k, _ in kept], [line for _, line in kept]
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: line {_first_undecodable_line(path)}: bytes that are not UTF-8 text "
                        f"({err.reason}); save the file as UTF-8") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err})") from None


def _first_undecodable_line(path: Path) -> int | str:
    """1-based number of the first line that is not UTF-8 (``"?"`` if none is found)."""
    with open(path, "rb") as handle:
        for no, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return no
    return "?"


def _split_checked(block: _Lines) -> list[list[str]] | None:
    """Check every line has as many fields as the header; the split fields when quotes need the csv module."""
    n = len(block.header)
    if any('"' in line for line in block.lines):
        fields = [split_line(line, block.path, no) for no, line in zip(block.line_nos, block.lines)]
        counts = [len(f) for f in fields]
    else:
        fields, counts = None, [line.count(",") + 1 for line in block.lines]
    for r, count in enumerate(counts):
        if count != n:
            fields_text = f"{count} field{'s' if count != 1 else ''}"
            raise DataError(f"{block.where(r)}: {fields_text}, but the header has {n} columns "
                            f"({header_text(block.header)}){_row_hint(block.lines[r], count > n)}")
    return fields


def _row_hint(line: str, too_many: bool) -> str:
    """Why a row may have the wrong number of fields: another separator or decimal commas."""
    for sep, name in OTHER_SEPARATORS.items():
        if sep in line:
            return f"; the row looks {name}-separated: {EXPECTED_FORMAT}"
    if too_many and _DECIMAL_COMMA.search(line):
        return f"; decimal commas such as '1,5' split a number into two fields: {EXPECTED_FORMAT}"
    return ""


def _numbers(block: _Lines, fields: list[list[str]] | None, idx: list[int]) -> np.ndarray:
    """(rows, len(idx)) float64 of the chosen columns; DataError on the first bad cell."""
    values = None
    if fields is None:
        try:
            values = np.loadtxt(block.lines, delimiter=",", usecols=idx, dtype=np.float64, ndmin=2, comments=None)
        except ValueError:
            pass
    if values is None or values.shape != (len(block.lines), len(idx)):
        fields = fields or [line.split(",") for line in block.lines]
        values = np.array([[_cell_number(block, r, f[i], i) for i in idx] for r, f in enumerate(fields)],
                          dtype=np.float64).reshape(len(fields), len(idx))
    bad = first_bad_value(values)
    if bad is not None:
        (r, c), what = bad
        fix = "; clean or fill these cells" if what in ("NaN", "inf", "-inf") else ""
        raise DataError(f"{block.where(r)}, column {block.header[idx[c]]!r}: value is {what}{fix}")
    return values


def _cell_number(block: _Lines, r: int, cell: str, i: int) -> float:
    """One cell as a number (ASCII, as :func:`float` reads it, no ``_``); DataError naming it if not."""
    text = cell.strip()
    try:
        if text.isascii() and "_" not in text:
            return float(text)
    except ValueError:
        pass
    if not text:
        shown = "is empty (missing value)"
    else:
        comma = " (a decimal comma? write 1.5 for 1,5)" if _DECIMAL_COMMA.search(text) else ""
        shown = f"{text[:40]!r} is not a number{comma}"
    raise DataError(f"{block.where(r)}, column {block.header[i]!r}: {shown}")


def first_bad_value(values: np.ndarray) -> tuple[tuple[int, ...], str] | None:
    """The first value (row-major order) that float32 cannot hold, and what it is.

    Returns:
        ``(index, description)``: ``"NaN"``, ``"inf"``/``"-inf"``, or the value and
        the float32 range for a finite value beyond +-3.4e38; None when every value fits.
    """
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(values) <= FLOAT32_MAX)
    if not bad.any():
        return None
    index = tuple(int(v[0]) for v in np.nonzero(bad))
    value = float(values[index])
    if np.isnan(value):
        return index, "NaN"
    if np.isinf(value):
        return index, "inf" if value > 0 else "-inf"
    return index, f"{value:.8g}, outside {FLOAT32_RANGE}; rescale it (e.g. other units)"
