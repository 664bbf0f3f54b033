"""Reading a CSV file block by block: read right, or refused naming the file, row, line and column.

The format read: UTF-8 text (a leading byte-order mark is skipped), a header row
naming the columns, then one row per time step with exactly as many fields as the
header, ``,`` (or the separator given) between fields and ``.`` as the decimal
point (``48.012,10.05``).
Fields may be quoted as the stdlib :mod:`csv` module writes them. Blank lines
are skipped. Everything else is a :class:`~utils.core.errors.DataError`:

* a row with more or fewer fields than the header (a decimal comma, ``1,5``,
  splits a number in two and is named as the likely cause);
* a file separated by another of ``,`` ``;`` tab ``|`` (named, with its decimal commas);
* a cell that is not a number (numbers as :func:`float` reads them, ASCII
  only, no ``_`` separators), is empty, NaN or infinite, or lies outside the
  float32 range (+-3.4e38) the models compute in;
* bytes that are not UTF-8 (the first such line is named);
* a line longer than 1 Mi characters (or 16 per character of the header):
  memory stays bounded even for a file without line breaks.

Rows are counted from 0 (the first line after the header); lines from 1.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import islice, repeat
from pathlib import Path
from typing import TextIO

import numpy as np

from datasets.csv_header import (
    DECIMAL_COMMA,
    SEPARATOR_NAMES,
    expected_format,
    header_text,
    read_header,
    read_layout,
    split_line,
)
from utils.core.errors import DataError

__all__ = ["DEFAULT_CHUNK_ROWS", "FLOAT32_MAX", "Block", "beyond_float64", "first_bad_value", "header_text",
           "iter_csv_blocks", "read_header", "read_layout"]

DEFAULT_CHUNK_ROWS = 8192  # rows read at a time when scoring: ~4 MiB above the fixed cost for 3 features
FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_RANGE = f"the float32 range the models compute in, +-{FLOAT32_MAX:.8g}"
_MAX_LINE_CHARS = 2**20  # a data line may be longer when the header is (16 characters per header character)


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
    line_nos: Sequence[int]
    lines: list[str]
    separator: str = ","
    text_hint: str = ""  # said after a cell of text where a number belongs

    def where(self, r: int) -> str:
        """``"FILE: row R (line L)"`` of the ``r``-th line here."""
        return f"{self.path}: row {self.first_row + r} (line {self.line_nos[r]})"


def iter_csv_blocks(path: str | Path, header: list[str], columns: list[str], text_columns: list[str] = (),
                    chunk_rows: int = DEFAULT_CHUNK_ROWS, separator: str = ",", text_hint: str = "",
                    ) -> Iterator[Block]:
    """Read the numeric ``columns`` (and raw ``text_columns``) block by block.

    At most ``chunk_rows`` lines are held at a time. Blank lines are skipped. ``separator`` splits the
    fields; ``text_hint`` is said after a cell of text in a numeric column (what to set instead).

    Raises:
        DataError: naming the row (0-based, after the header), the file line and
            the column of the first bad cell or row (see the module docstring).
    """
    path = Path(path)
    position = {name: i for i, name in enumerate(header)}
    idx = [position[c] for c in columns]
    text_idx = [position[c] for c in text_columns]
    row = 0
    max_chars = max(_MAX_LINE_CHARS, 16 * sum(len(name) + 1 for name in header))
    for line_nos, lines in _line_blocks(path, chunk_rows, max_chars):
        yield _checked_block(_Lines(path, header, row, line_nos, lines, separator, text_hint), idx, text_idx)
        row += len(lines)


def _checked_block(block: _Lines, idx: list[int], text_idx: list[int]) -> Block:
    """The rows of ``block`` checked (field counts, numbers, finite) as a :class:`Block`."""
    fields = _split_checked(block)
    values = _numbers(block, fields, idx)
    text = None
    if text_idx:
        if fields is None:
            text = np.loadtxt(block.lines, delimiter=block.separator, usecols=text_idx, dtype=str, ndmin=2,
                              comments=None)
        else:
            text = np.array([[f[i] for i in text_idx] for f in fields], dtype=str).reshape(len(fields), -1)
        text = np.char.strip(text)
    line_nos = block.line_nos
    numbers = (np.arange(line_nos.start, line_nos.stop) if isinstance(line_nos, range)
               else np.asarray(line_nos, dtype=np.int64))
    return Block(block.first_row, values, text, numbers)


def _line_blocks(path: Path, chunk_rows: int, max_chars: int) -> Iterator[tuple[Sequence[int], list[str]]]:
    """``(line numbers, lines)`` of up to ``chunk_rows`` non-blank lines after the header.

    A line is read at most ``max_chars`` characters at a time, so a file without
    line breaks cannot fill the memory: a longer line is a DataError.
    """
    line_no = 1
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            handle.readline()
            while lines := _read_lines(handle, chunk_rows, max_chars):
                if max(map(len, lines)) == max_chars:
                    _refuse_long_lines(path, lines, line_no + 1, max_chars)
                first, line_no = line_no + 1, line_no + len(lines)
                if all(map(str.strip, lines)):
                    yield range(first, first + len(lines)), lines
                    continue
                kept = [(first + i, line) for i, line in enumerate(lines) if line.strip()]
                if kept:
                    yield [k for k, _ in kept], [line for _, line in kept]
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: line {_first_undecodable_line(path)}: bytes that are not UTF-8 text "
                        f"({err.reason}); save the file as UTF-8") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err})") from None


def _refuse_long_lines(path: Path, lines: list[str], first: int, max_chars: int) -> None:
    """DataError naming the first of ``lines`` cut at ``max_chars`` before its end."""
    for i, line in enumerate(lines):
        if len(line) == max_chars and line[-1] not in "\r\n":
            raise DataError(f"{path}: line {first + i} is longer than {max_chars} characters; expected one row "
                            "per line")


def _read_lines(handle: TextIO, n: int, max_chars: int) -> list[str]:
    """Up to ``n`` lines of at most ``max_chars`` characters each."""
    return list(islice(iter(partial(handle.readline, max_chars), ""), n))


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
    if '"' in "".join(block.lines):
        fields = [split_line(line, block.path, no, block.separator)
                  for no, line in zip(block.line_nos, block.lines, strict=True)]
        counts = [len(f) for f in fields]
    else:  # fields = commas + 1
        fields, counts = None, list(map(str.count, block.lines, repeat(block.separator)))
    want = n if fields is not None else n - 1
    if min(counts) == max(counts) == want:
        return fields
    r = next(r for r, count in enumerate(counts) if count != want)
    count = counts[r] + (0 if fields is not None else 1)
    fields_text = f"{count} field{'s' if count != 1 else ''}"
    raise DataError(f"{block.where(r)}: {fields_text}, but the header has {n} columns "
                    f"({header_text(block.header)}){_row_hint(block.lines[r], count > n, block.separator)}")


def _row_hint(line: str, too_many: bool, separator: str) -> str:
    """Why a row may have the wrong number of fields: another separator or decimal commas."""
    for sep, name in SEPARATOR_NAMES.items():
        if sep not in (separator, ",") and sep in line:
            return f"; the row looks {name}-separated: {expected_format(separator)}"
    if separator == "," and too_many and "." not in line and DECIMAL_COMMA.search(line):  # decimal commas?
        return f"; if the file writes decimal commas ('1,5' for 1.5), each splits a number into two fields: " \
               f"{expected_format(separator)}"
    return ""


def _numbers(block: _Lines, fields: list[list[str]] | None, idx: list[int]) -> np.ndarray:
    """(rows, len(idx)) float64 of the chosen columns; DataError on the first bad cell."""
    values = None
    if fields is None:
        try:
            values = np.loadtxt(block.lines, delimiter=block.separator, usecols=idx, dtype=np.float64, ndmin=2,
                                comments=None)
        except ValueError:
            pass
    if values is None or values.shape != (len(block.lines), len(idx)):
        fields = fields or [line.split(block.separator) for line in block.lines]
        values = np.array([[_cell_number(block, r, f[i], i) for i in idx] for r, f in enumerate(fields)],
                          dtype=np.float64).reshape(len(fields), len(idx))
    bad = first_bad_value(values)
    if bad is not None:
        (r, c), what = bad
        where = f"{block.where(r)}, column {block.header[idx[c]]!r}"
        overflow = beyond_float64((fields[r] if fields is not None else block.lines[r].split(block.separator))[idx[c]],
                                  float(values[r, c]))
        if overflow:
            raise DataError(f"{where}: {overflow}")
        fix = "; clean or fill these cells" if what in ("NaN", "inf", "-inf") else ""
        raise DataError(f"{where}: value is {what}{fix}")
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
        comma = " (a decimal comma? write 1.5 for 1,5)" if DECIMAL_COMMA.search(text) else ""
        shown = f"{text[:40]!r} is not a number{comma or block.text_hint}"
    raise DataError(f"{block.where(r)}, column {block.header[i]!r}: {shown}")


def beyond_float64(text: str, value: float) -> str | None:
    """Why a cell read as +-inf although it is written as a number (``1e400``), or None if it says inf."""
    text = text.strip()
    if not math.isinf(value) or text.lower().lstrip("+-") in ("inf", "infinity"):
        return None
    return (f"{text[:40]!r} is beyond the largest float (+-1.8e+308; it reads as {value:g}); rescale it "
            "(e.g. other units)")


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
