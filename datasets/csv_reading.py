"""CSV rows from a file or a pipe: the header, the rows block by block, the timestamps, windows over the blocks;
refused naming the file, row (from 0, after the header) and line (from 1): docs/data.md."""
from __future__ import annotations

import csv
import logging
import math
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from itertools import chain, repeat
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from utils.core.errors import DataError

logger = logging.getLogger("anomaly")

DEFAULT_CHUNK_ROWS = 8192  # rows read at a time when scoring: ~4 MiB above the fixed cost for 3 features
FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_RANGE = f"the float32 range the models compute in, +-{FLOAT32_MAX:.8g}"
MAX_LINE_CHARS = 2**20  # a data line may be longer when the header is (16 characters per header character)
SEPARATOR_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
DECIMAL_COMMA = re.compile(r"\d,\d")
THOUSANDS = re.compile(r"^[+-]?\d{1,3}([,' _]\d{3})+(\.\d+)?$")  # 1,234.5  1'234.5  1 234.5
WITH_UNIT = re.compile(r"^[^\w\s+\-.]{0,3}\s*([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)\s*[^\d\s,;]{1,6}$|"
                       r"^[^\w\s+\-.]{1,3}\s*([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$")  # 51.5%  3.2 kW  $12
ISO_EXAMPLE = "e.g. 2024-05-01T08:00:00"
#: Cells that say a value is missing (any case), besides an empty cell.
MISSING_CELLS = frozenset({"nan", "null", "none", "na", "n/a", "?"})
MISSING_HINT = ("; clean or fill these cells (data.missing_values: \"previous\" carries each sensor's last value "
                "forward)")
#: The same where a trained run reads (--mode score): its data.missing_values is kept as trained.
RUN_MISSING_HINT = ("; the run was trained refusing missing cells: fill the cell, or train a run with "
                    "data.missing_values \"previous\" (it carries each sensor's last value forward)")
#: What a file separated otherwise than the csv loader's ``data.separator`` says to do.
SEPARATOR_HINT = "; set data.separator to null (detected from the header) or to the file's separator"
DECIMAL_HINT = ', and data.decimal to ","'
READ_DECIMAL_HINT = ', or read them with data.decimal: ","'
GAP_PERIODS = 10  # a step of time this many sample periods long is a gap in the recording (time_jumps)
RATE_RATIO = 1.5  # sample periods further apart than this ratio are other rates (between files, or run and input)
_HEADER_BYTES = 16 * 2**20  # the header must fit here
FILE_READ_BYTES = 1 << 20  # a file is read this much at a time (a pipe: what has come, up to 64 KiB)
_DIGITS = str.maketrans("0123456789", "9" * 10)
_FRACTION = re.compile(r"(:99)\.9+")


# ----- the header -------------------------------------------------------------------------
#: Files users mistake for CSV, by their first bytes: what each is and what to do.
_BINARY_FORMATS = {
    b"\x1f\x8b": ("gzip-compressed", "decompress it first (gunzip)"),
    b"PK\x03\x04": ("a zip archive or an Excel workbook (.xlsx)", "unzip it, or save the sheet as CSV UTF-8"),
    b"\xd0\xcf\x11\xe0": ("an Excel workbook (.xls)", "save the sheet as CSV UTF-8"),
    b"PAR1\x15": ("a Parquet file", "write it as CSV (e.g. pandas.read_parquet(path).to_csv(out, index=False))"),
    b"\x93NUMPY": ("a NumPy .npy array", "write it as CSV with a header naming the columns"),
    b"\xfd7zXZ\x00": ("xz-compressed", "decompress it first (unxz)"),
    b"\x28\xb5\x2f\xfd": ("zstd-compressed", "decompress it first (unzstd)"),
}


def expected_format(separator: str) -> str:
    """What the reader expects of a row, for messages."""
    return (f"the reader expects {SEPARATOR_NAMES.get(separator, repr(separator))} between fields and '.' as the "
            f"decimal point (e.g. 48.012{separator}10.05)")


def read_header(path: str | Path) -> list[str]:
    """Column names from the first line of a comma-separated file (:func:`read_layout` with ``,``)."""
    return read_layout(path, ",")[0]


def read_layout(path: str | Path, separator: str | None = None, hint: str = ". Write it comma-separated",
                has_header: bool = True) -> tuple[list[str], str]:
    """``(column names, separator)`` from the first line of a CSV file (:meth:`CsvStream.read_header`); ``separator``
    None: :func:`detect_separator`'s; ``hint``: what to do about a file separated otherwise."""
    with open_csv(path) as handle:
        rows = CsvStream(handle, path, FILE_READ_BYTES, separator, hint, has_header=has_header)
        return rows.read_header(), rows.separator


def open_csv(path: str | Path) -> BinaryIO:
    """``path`` opened for :class:`CsvStream`; DataError naming it if it cannot be."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err})") from None


def check_names(header: list[str], line: str, source: Path | str) -> None:
    """DataError unless ``header`` (the fields of ``line``, line 1 of ``source``) names distinct columns."""
    shown = line.strip()[:80]
    if len(header) == 1 and line.lstrip().startswith("#"):
        raise DataError(f"{source}: line 1 ({shown!r}) looks like a comment, not a header naming the columns; the "
                        "reader takes the first line as the header: remove the lines above it")
    if any(not name for name in header):
        raise DataError(f"{source}: line 1: the header has an empty column name ({shown!r}){_unnamed_hint(header)}")
    dupes = sorted(name for name, count in Counter(header).items() if count > 1)
    if dupes:
        raise DataError(f"{source}: line 1: duplicate column names {dupes[:10]}")
    try:
        [float(name) for name in header]
    except ValueError:
        return
    raise DataError(f"{source}: line 1 holds only numbers ({shown[:60]!r}); expected a header row naming the columns; if "
                    "the file has no header row, set data.header to false")


def _unnamed_hint(header: list[str]) -> str:
    """Why a header may have an empty name, for the message: a pandas index or a separator ending each line."""
    if not header[0] and all(header[1:]):
        return ("; the first column has no name, as pandas' DataFrame.to_csv writes its index: save the file with "
                "index=False, or name the column and list it in data.ignore_columns")
    if not header[-1] and all(header[:-1]):
        return "; the line ends with the separator: remove the separator at the end of each line"
    return ""


def header_fields(first: str, second: str, path: Path, separator: str | None, hint: str, named: bool = True,
                  ) -> tuple[list[str], str]:
    """``(column names, separator)`` of a header line ``first`` (``second``: the line after it, for messages);
    ``named`` False (``data.header``): ``first`` is a row of data, its columns named ``"1"``, ``"2"``... by their
    number from 1 as a spreadsheet counts them: names a JSON config writes as it writes any name, that read well in
    messages and reports (pandas' 0, 1... are integers, and column 0 reads as a row number)."""
    if separator is None:
        separator = detect_separator(first, path)
    header = [name.strip() for name in split_line(first, path, 1, separator)]
    found = [(sep, name) for sep, name in SEPARATOR_NAMES.items() if sep != separator and sep in first]
    if len(header) == 1 and found:  # a one-column header holding another separator: the file uses that one
        sep, name = found[0]
        decimal = [cell.strip() for cell in second.split(sep) if sep != "," and DECIMAL_COMMA.search(cell)]
        commas = f" with decimal commas (line 2: {decimal[0][:20]!r})" if decimal else ""
        if decimal and hint == SEPARATOR_HINT:  # the csv loader's: its config also reads the decimal commas
            hint += DECIMAL_HINT
        raise DataError(f"{path}: line 1: the file looks {name}-separated{commas}; {expected_format(separator)}{hint}")
    if not named:
        if not any(_is_number(cell) for cell in header):  # a row of data holds a number: its sensors' values
            raise DataError(f"{path}: line 1 ({first.strip()[:60]!r}) holds no number: a header row, not data; set "
                            "data.header to true (the default) for a file whose line 1 names the columns")
        return [str(i) for i in range(1, len(header) + 1)], separator
    check_names(header, first, path)
    return header, separator


def _is_number(cell: str) -> bool:
    """``cell`` reads as a number (with a decimal point or comma)."""
    try:
        float(cell.replace(",", "."))
    except ValueError:
        return False
    return True


def detect_separator(first: str, path: Path) -> str:
    """The one of ``, ; tab |`` the header line holds most often (``,`` if none); DataError when two tie."""
    counts = {sep: first.count(sep) for sep in SEPARATOR_NAMES}
    most = max(counts.values())
    if most == 0:
        return ","
    tied = [sep for sep, count in counts.items() if count == most]
    if len(tied) > 1:
        names = " and ".join(SEPARATOR_NAMES[sep] for sep in tied)
        raise DataError(f"{path}: line 1 holds {names} equally often ({most} each), so the field separator is "
                        f"unclear; set data.separator (e.g. \";\")")
    return tied[0]


def split_line(line: str, path: Path, line_no: int, separator: str = ",") -> list[str]:
    """The fields of one line as the :mod:`csv` module reads them; DataError if it cannot."""
    try:
        return next(csv.reader([line], delimiter=separator), [])
    except csv.Error as err:
        raise DataError(f"{path}: line {line_no}: cannot split the line into fields ({err})") from None


def header_text(header: list[str], limit: int = 12) -> str:
    """The column names for a message, at most ``limit`` of them."""
    more = f", ... ({len(header)} in all)" if len(header) > limit else ""
    return ", ".join(header[:limit]) + more


# ----- the rows ---------------------------------------------------------------------------
@dataclass
class Block:
    """Rows ``first_row ..`` of a file (from 0): ``values`` (rows, F) float64 of the numeric columns, ``text`` (rows, K)
    str of the text columns or None, ``line_nos`` (rows,) int64 file line of each row (1 = the header)."""

    first_row: int
    values: np.ndarray
    text: np.ndarray | None = None
    line_nos: np.ndarray | None = None


@dataclass
class Lines:
    """Non-blank lines of a file and where they are, for messages."""

    path: Path
    header: list[str]
    first_row: int
    line_nos: Sequence[int]
    lines: list[str]
    separator: str = ","
    text_hint: str = ""  # said after a cell of text where a number belongs
    missing: bool = False  # missing cells (empty, NaN, MISSING_CELLS) read as NaN, not refused
    decimal: str = "."  # the decimal mark of the numbers ("," in a file not separated by commas)

    def where(self, r: int) -> str:
        """``"FILE: row R (line L)"`` of the ``r``-th line here."""
        return f"{self.path}: row {self.first_row + r} (line {self.line_nos[r]})"

    def missing_hint(self) -> str:
        """What to do about a missing cell: a training file's config (``text_hint`` set) can fill it, a run cannot."""
        return MISSING_HINT if self.text_hint else RUN_MISSING_HINT


def iter_csv_blocks(path: str | Path, header: list[str], columns: list[str], text_columns: list[str] = (),
                    chunk_rows: int = DEFAULT_CHUNK_ROWS, separator: str = ",", text_hint: str = "",
                    fill: PreviousFill | None = None, decimal: str = ".", has_header: bool = True) -> Iterator[Block]:
    """The rows of a CSV file after its header as :meth:`CsvStream.blocks` reads them (at most ``chunk_rows`` a block);
    ``text_hint``: said after text in a numeric column; ``fill``: fills missing cells (None refuses them)."""
    with open_csv(path) as handle:
        rows = CsvStream(handle, path, FILE_READ_BYTES, separator, fill=fill, decimal=decimal, text_hint=text_hint,
                         has_header=has_header)
        rows.read_header()
        yield from rows.blocks(header, columns, text_columns, chunk_rows)


def checked_block(block: Lines, idx: list[int], text_idx: list[int]) -> Block:
    """The rows of ``block`` checked (field counts, numbers, finite) as a :class:`Block`."""
    fields = _split_checked(block)
    values, text = _numbers(block, fields, idx), None
    if text_idx:
        if fields is None:
            text = np.loadtxt(block.lines, delimiter=block.separator, usecols=text_idx, dtype=str, ndmin=2,
                              comments=None)
        else:
            text = np.array([[f[i] for i in text_idx] for f in fields], dtype=str).reshape(len(fields), -1)
        text = np.char.strip(text)
    return Block(block.first_row, values, text, np.asarray(block.line_nos, dtype=np.int64))


def _split_checked(block: Lines) -> list[list[str]] | None:
    """Check every line has as many fields as the header; the split fields when quotes need the csv module."""
    n, fields = len(block.header), None
    if '"' in "".join(block.lines):
        fields = [split_line(line, block.path, no, block.separator)
                  for no, line in zip(block.line_nos, block.lines, strict=True)]
    seps = [len(f) - 1 for f in fields] if fields else list(map(str.count, block.lines, repeat(block.separator)))
    if min(seps) == max(seps) == n - 1:  # separators: fields - 1
        return fields
    r = next(r for r, count in enumerate(seps) if count != n - 1)
    count = seps[r] + 1
    raise DataError(f"{block.where(r)}: {count} field{'s' if count != 1 else ''}, but the header has {n} columns "
                    f"({header_text(block.header)}){_row_hint(block.lines[r], count - n, block.separator)}")


def _row_hint(line: str, extra: int, separator: str) -> str:
    """Why a row may have ``extra`` fields more than the header: a separator ending it, another one, decimal commas."""
    if extra == 1 and not line.rsplit(separator, 1)[-1].strip():
        return "; the line ends with the separator: remove the separator at the end of each row"
    for sep, name in SEPARATOR_NAMES.items():
        if sep not in (separator, ",") and sep in line:
            return f"; the row looks {name}-separated: {expected_format(separator)}"
    if separator == "," and extra > 0 and "." not in line and DECIMAL_COMMA.search(line):
        return f"; if the file writes decimal commas ('1,5' for 1.5), each splits a number into two fields: " \
               f"{expected_format(separator)}"
    return ""


def _numbers(block: Lines, fields: list[list[str]] | None, idx: list[int]) -> np.ndarray:
    """(rows, len(idx)) float64 of the chosen columns; DataError on the first bad cell."""
    values = None
    # with decimal commas a dot may be a thousands separator (1.234,5): such lines are read cell by cell, refused
    if fields is None and not (block.decimal != "." and any("." in line for line in block.lines)):
        lines = block.lines if block.decimal == "." else [line.replace(",", ".") for line in block.lines]
        with suppress(ValueError):
            values = np.loadtxt(lines, delimiter=block.separator, usecols=idx, dtype=np.float64, ndmin=2, comments=None)
    if values is None or values.shape != (len(block.lines), len(idx)):
        fields = fields or [line.split(block.separator) for line in block.lines]
        values = np.array([[_cell_number(block, r, f[i], i) for i in idx] for r, f in enumerate(fields)],
                          dtype=np.float64).reshape(len(fields), len(idx))
    bad = first_bad_value(np.where(np.isnan(values), 0.0, values) if block.missing else values)
    if bad is not None:
        (r, c), what = bad
        where = f"{block.where(r)}, column {block.header[idx[c]]!r}"
        overflow = beyond_float64((fields[r] if fields is not None else block.lines[r].split(block.separator))[idx[c]],
                                  float(values[r, c]))
        if overflow:
            raise DataError(f"{where}: {overflow}")
        fix = block.missing_hint() if what == "NaN" else "; clean or fill these cells" if what in ("inf", "-inf") else ""
        raise DataError(f"{where}: value is {what}{fix}")
    return values


def _cell_number(block: Lines, r: int, cell: str, i: int) -> float:
    """One cell as a number (ASCII, as :func:`float` reads it, no ``_``); DataError naming it if not."""
    text = cell.strip()
    if block.missing and (not text or text.lower() in MISSING_CELLS):
        return math.nan
    with suppress(ValueError):
        if text.isascii() and "_" not in text and not (block.decimal != "." and "." in text):
            return float(text.replace(block.decimal, "."))
    shown = (f"{text[:40]!r} is not a number{_not_a_number_hint(block, text)}" if text
             else f"is empty (missing value){block.missing_hint()}")
    raise DataError(f"{block.where(r)}, column {block.header[i]!r}: {shown}")


def _not_a_number_hint(block: Lines, text: str) -> str:
    """What to do about a cell ``text`` of ``block`` that is not a number (see :func:`number_hint`)."""
    if block.decimal != ".":
        return (" (the numbers are read with decimal commas, data.decimal=\",\": write 1234,5, without a thousands "
                "separator)") if "." in text else block.text_hint
    hint = number_hint(text, block.separator)
    if block.text_hint and block.separator != "," and DECIMAL_COMMA.search(text):  # a training file's config
        return hint.removesuffix(")") + READ_DECIMAL_HINT + ")"  # can read decimal commas
    if not hint or WITH_UNIT.match(text):  # a unit may also be an identifier's letter ("12A"): a text column
        return hint + block.text_hint
    return hint


def number_hint(text: str, separator: str = ",") -> str:
    """What a cell that is not a number may be: thousands separators, a decimal comma, a unit or sign around it."""
    if THOUSANDS.match(text) and not (separator != "," and DECIMAL_COMMA.search(text)):
        digits = re.sub(r"[,' _]", "", text)
        if re.fullmatch(r"[+-]?\d{1,3},\d{3}", text):  # 47,949: either reading
            return f" (a decimal comma, or a thousands separator? write {text.replace(',', '.')} or {digits})"
        return f" (thousands separators? write {digits} for {text})"
    if DECIMAL_COMMA.search(text):
        return " (a decimal comma? write 1.5 for 1,5)"
    unit = WITH_UNIT.match(text)
    if unit:
        number = unit.group(1) or unit.group(4)
        return f" (a number with a unit or sign around it? write {number} alone, and the unit in the column's name)"
    return ""


def beyond_float64(text: str, value: float) -> str | None:
    """Why a cell read as +-inf although it is written as a number (``1e400``), or None if it says inf."""
    text = text.strip()
    if not math.isinf(value) or text.lower().lstrip("+-") in ("inf", "infinity"):
        return None
    return (f"{text[:40]!r} is beyond the largest float (+-1.8e+308; it reads as {value:g}); rescale it "
            "(e.g. other units)")


def first_bad_value(values: np.ndarray) -> tuple[tuple[int, ...], str] | None:
    """``(index, what)`` of the first value (row-major) float32 cannot hold (NaN, +-inf, beyond +-3.4e38), or None."""
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


# ----- the timestamps ---------------------------------------------------------------------
def parse_times(texts: np.ndarray, path: Path, column: str, line_nos: np.ndarray | None = None,
                hint: str = "") -> np.ndarray:
    """Timestamps as float64 numbers or datetime64[ns] (ISO 8601 in row 0's layout), checked never to go backwards.

    ``texts`` (rows,) stripped cells; ``line_nos`` (rows,) or None and ``hint`` (appended) for messages."""
    def where(row: int) -> str:
        line = "" if line_nos is None else f" (line {int(line_nos[row])})"
        return f"{path}: row {row}{line}, column {column!r}"

    if len(empty := np.flatnonzero(texts == "")):
        raise DataError(f"{where(int(empty[0]))}: the timestamp is empty; every row needs its time, a number or an ISO "
                        f"8601 date/time ({ISO_EXAMPLE}) written as the other rows write theirs")
    times = _as_numbers(texts, where)
    if times is None:
        if _as_numbers(texts[:1], where) is None:
            _as_datetimes(texts[:1], where, hint)  # row 0 is readable, so its layout is the one to follow
        signatures = np.char.translate(texts, _DIGITS)  # 2024-05-01T08:00:00.25 -> 9999-99-99T99:99:99.99
        uniques, inverse = np.unique(signatures, return_inverse=True)
        layouts = np.array([_FRACTION.sub(r"\1", str(u)) for u in uniques])[inverse.reshape(-1)]
        other = np.flatnonzero(layouts != layouts[0])
        if len(other):
            row = int(other[0])
            raise DataError(f"{where(row)}: timestamp {texts[row][:40]!r} is written in another format than row 0 "
                            f"({texts[0][:40]!r}); write every timestamp in one format ({ISO_EXAMPLE}) or as numbers")
        times = _as_datetimes(texts, where, hint)
    back = np.flatnonzero(times[1:] < times[:-1])
    if len(back):
        row = int(back[0]) + 1
        clock_set_back = times.dtype.kind == "M" and times[row - 1] - times[row] <= np.timedelta64(1, "h")
        fix = ("if a clock was set back (daylight saving time ending repeats an hour of local time), write the times "
               "in UTC or with their UTC offset (2024-10-27T02:00:00+01:00); else sort the file by time"
               ) if clock_set_back else "sort the file by time"
        raise DataError(f"{where(row)}: time goes backwards ({times[row - 1]} then {times[row]}); {fix}")
    return times


def _as_numbers(texts: np.ndarray, where: Callable[[int], str]) -> np.ndarray | None:
    """float64 timestamps, or None when some cell is not a number."""
    try:
        times = texts.astype(np.float64)
    except ValueError:
        return None
    bad = np.flatnonzero(~np.isfinite(times))
    if len(bad):
        row = int(bad[0])
        raise DataError(f"{where(row)}: timestamp {texts[row][:40]!r} is not a finite number; every row needs its time")
    return times


def _as_datetimes(texts: np.ndarray, where: Callable[[int], str], hint: str = "") -> np.ndarray:
    """datetime64[ns] timestamps; DataError naming the first unreadable or NaT row."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "no explicit representation of timezones": read as UTC
        try:
            times = texts.astype("datetime64[ns]")
            rows = np.flatnonzero(np.isnat(times))
        except (ValueError, OverflowError):
            rows = range(len(texts))
        if not len(rows):
            return times
        for row in rows:
            text, ok = str(texts[row]), False
            with suppress(ValueError, OverflowError):
                ok = not np.isnat(np.datetime64(text, "ns"))
            if not ok:
                raise DataError(f"{where(row)}: {text[:40]!r} is neither a number nor an "
                                f"ISO 8601 date/time ({ISO_EXAMPLE}){hint}")
    raise DataError(f"{where(0)}: the timestamps cannot be read as ISO 8601 dates/times ({ISO_EXAMPLE}){hint}")


def seconds_since_first(times: np.ndarray) -> np.ndarray:
    """(n,) float64 seconds since the first timestamp (numbers as they are; datetimes via their differences)."""
    if np.issubdtype(times.dtype, np.datetime64):
        return (times - times[0]) / np.timedelta64(1, "s")
    return np.asarray(times, dtype=np.float64) - float(times[0])


def sample_period(seconds: np.ndarray | None, file: Path, column: str | None) -> float | None:
    """Seconds between rows: the median step, else the mean one (coarse timestamps); None if they never advance."""
    if seconds is None or len(seconds) < 2:
        return None
    for period in (float(np.median(np.diff(seconds))), float(seconds[-1] - seconds[0]) / (len(seconds) - 1)):
        if np.isfinite(period) and period > 0:
            return period
    logger.warning("data: %s: the timestamp column %r never advances, so the stream's false alarms per hour are "
                   "not computed", file, column)
    return None


def time_jumps(seconds: np.ndarray | None, period: float | None) -> str | None:
    """The gaps (:data:`GAP_PERIODS` periods or more) and repeats in (n,) ``seconds``, in words, or None."""
    if seconds is None or period is None or len(seconds) < 2:
        return None
    steps = np.diff(seconds)
    if not np.median(steps) > 0:  # coarse timestamps (several rows per logged second): repeats are their layout
        return None
    gaps, repeats = np.flatnonzero(steps >= GAP_PERIODS * period), np.flatnonzero(steps == 0)
    said = []
    if len(gaps):
        widest = int(gaps[np.argmax(steps[gaps])])
        said.append(f"{len(gaps)} jump(s) of {GAP_PERIODS} sample periods ({period:.6g} s) or more, the largest "
                    f"{float(steps[widest]):.6g} s after row {widest}")
    if len(repeats):
        said.append(f"{len(repeats)} row(s) repeating the time before them (first: row {int(repeats[0]) + 1})")
    return "; ".join(said) or None


class PreviousFill:
    """Carry each sensor's last value forward over its missing (NaN) cells across the blocks of one file or stream;
    ``counts``: ``{column: cells filled}`` so far, for the columns with any."""

    def __init__(self, source: str | Path, columns: list[str]) -> None:
        self.source, self.columns = source, list(columns)
        self.counts: dict[str, int] = {}
        self._last: np.ndarray | None = None

    def __call__(self, blocks: Iterable[Block]) -> Iterator[Block]:
        """The blocks with their missing cells filled; DataError for one before its column's first value."""
        for block in blocks:
            values = block.values
            gaps = np.isnan(values)
            if gaps.any():
                values = values.copy()
                for c in np.flatnonzero(gaps.any(axis=0)):
                    # index of the latest known row at or before each row (-1: none in this block)
                    latest = np.maximum.accumulate(np.where(gaps[:, c], -1, np.arange(len(values))))
                    before = self._last[c] if self._last is not None else math.nan
                    values[:, c] = np.where(latest >= 0, values[np.maximum(latest, 0), c], before)
                    if np.isnan(values[0, c]):
                        line = f" (line {int(block.line_nos[0])})" if block.line_nos is not None else ""
                        raise DataError(f"{self.source}: row {block.first_row}{line}, column {self.columns[c]!r}: the "
                                        "value is missing and no earlier row has one to carry forward "
                                        "(data.missing_values=\"previous\"); give the first rows a value, or drop them")
                self.counts.update({self.columns[c]: self.counts.get(self.columns[c], 0) + int(n)
                                    for c, n in enumerate(gaps.sum(axis=0)) if n})
            self._last = values[-1] if len(values) else self._last
            yield Block(block.first_row, values, block.text, block.line_nos)


# ----- a file or a pipe ------------------------------------------------------------------
class CsvStream:
    """CSV rows from a binary stream as they arrive (a pipe, e.g. ``sys.stdin.buffer``, or a file from
    :func:`open_csv`): the header (:meth:`read_header`), then the rows in checked blocks (:meth:`blocks`).

    Each read takes the bytes there are (``read1``), so the complete lines among them make a block at once.
    ``has_header`` False: line 1 is row 0 (its columns named ``"1"``, ``"2"``...: :func:`header_fields`)."""

    def __init__(self, stream: BinaryIO, name: str | Path = "<stdin>", read_bytes: int = 1 << 16,
                 separator: str | None = ",", hint: str = ". Write it comma-separated",
                 fill: PreviousFill | None = None, decimal: str = ".", text_hint: str = "",
                 has_header: bool = True) -> None:
        self.stream, self.name, self.path, self.read_bytes = stream, name, Path(name), read_bytes
        self.separator, self.hint, self.fill, self.decimal = separator, hint, fill, decimal
        self.text_hint, self.has_header = text_hint, has_header  # text_hint: said after text where a number belongs
        self.line_no = 0  # lines split so far (1 = the header, or row 0 without one)
        self._max_chars = 0  # of a data line, once the header is read
        self._reads = self._lines()
        self._rest: list[tuple[int, bytes]] = []

    def read_header(self) -> list[str]:
        """The column names of the first line; DataError for an empty stream or a header that is no header."""
        lines = next(self._reads, [])
        raw = lines[0][1] if lines else b""
        binary = next((kind for magic, kind in _BINARY_FORMATS.items() if raw.startswith(magic)), None)
        if binary is not None:
            raise DataError(f"{self.path}: the file is {binary[0]}, not CSV text; {binary[1]}")
        if raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):  # before UTF-16: FF FE starts both
            raise DataError(f"{self.path}: the file is UTF-32 text (it starts with a UTF-32 byte-order mark); save it "
                            "as CSV UTF-8")
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise DataError(f"{self.path}: the file is UTF-16 text (it starts with a UTF-16 byte-order mark, as "
                            "Excel's 'Unicode Text' writes); save it as CSV UTF-8")
        if b"\x00" in raw:  # UTF-16/32 without a byte-order mark reads as text with a NUL between the letters
            wide = " (every other byte is NUL: UTF-16 text without a byte-order mark?)" if raw.count(b"\x00") >= \
                len(raw) // 3 else ""
            raise DataError(f"{self.path}: line 1 holds NUL bytes{wide}; expected a header row of UTF-8 text naming "
                            "the columns; save the file as CSV UTF-8")
        if len(raw.rstrip(b"\r\n")) >= _HEADER_BYTES:
            raise self._too_long(1)
        first = self._decoded(1, raw).removeprefix("\ufeff")
        if not first.strip():
            raise DataError(f"{self.path}: {'line 1 is blank' if lines else 'the input is empty'}; expected "
                            f"{'a header row naming the columns' if self.has_header else 'a row of data'}")
        self._rest = lines[1:] if self.has_header else [(1, first.encode()), *lines[1:]]
        try:
            header, self.separator = header_fields(first, "", self.path, self.separator, self.hint, self.has_header)
        except DataError:  # said again with line 2, which the message may quote (e.g. its decimal commas)
            lines += next(self._reads, []) if len(lines) == 1 else []
            second = lines[1][1].decode("utf-8", errors="replace") if len(lines) > 1 else ""
            header_fields(first, second, self.path, self.separator, self.hint, self.has_header)
            raise
        self._max_chars = max(MAX_LINE_CHARS, 16 * sum(len(name) + 1 for name in header))
        return header

    def blocks(self, header: list[str], columns: list[str], text_columns: list[str] = (),
               chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Block]:
        """The rows after the header (read it first): the numeric ``columns`` (and raw ``text_columns``) in blocks of
        the lines that have arrived, at most ``chunk_rows``; blank lines are skipped."""
        position = {name: i for i, name in enumerate(header)}
        idx, text_idx = [position[c] for c in columns], [position[c] for c in text_columns]

        def checked(part: list[tuple[int, str]], row: int) -> Iterator[Block]:
            try:
                block = checked_block(Lines(self.path, header, row, [no for no, _ in part], [line for _, line in part],
                                            self.separator, self.text_hint, self.fill is not None, self.decimal),
                                      idx, text_idx)
            except DataError:  # the good lines before the first bad one, found by halving (their windows are scored)
                if len(part) == 1:
                    raise
                half = len(part) // 2
                yield from checked(part[:half], row)
                yield from checked(part[half:], row + half)
                return
            yield block

        def read() -> Iterator[Block]:
            row = 0
            for lines in chain([self._rest], self._reads):
                kept = [(no, line) for no, raw in lines if (line := self._decoded(no, raw)).strip()]
                for i in range(0, len(kept), chunk_rows):
                    for block in checked(kept[i: i + chunk_rows], row):
                        yield block
                        row += len(block.values)

        return self.fill(read()) if self.fill is not None else read()

    def _lines(self) -> Iterator[list[tuple[int, bytes]]]:
        """``(line number, line)`` of the complete lines (ending kept) of each read."""
        held: list[bytes] = []  # reads of a line not yet ended: joined once it ends (linear in a long line)
        held_bytes = 0
        while True:
            try:
                chunk = self.stream.read1(self.read_bytes)
            except OSError as err:
                raise DataError(f"{self.path}: cannot read the file ({err})") from None
            held.append(chunk)
            held_bytes += len(chunk)
            raw = []
            if not chunk or b"\n" in chunk or b"\r" in chunk:
                raw = b"".join(held).splitlines(keepends=True)
                # the unfinished line is held (a last \r may be the first half of \r\n)
                held = [raw.pop()] if chunk and raw and not raw[-1].endswith(b"\n") else []
                held_bytes = len(held[0]) if held else 0
            first, self.line_no = self.line_no + 1, self.line_no + len(raw)
            if held_bytes > (4 * self._max_chars or _HEADER_BYTES):  # UTF-8: at most 4 bytes per character
                raise self._too_long(self.line_no + 1)
            if raw:
                yield list(zip(range(first, self.line_no + 1), raw))
            if not chunk:
                return

    def _decoded(self, no: int, raw: bytes) -> str:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{self.path}: line {no}: bytes that are not UTF-8 text ({err.reason}); save the file as "
                            "UTF-8") from None
        if self._max_chars and len(line.rstrip("\r\n")) >= self._max_chars:
            raise self._too_long(no)
        return line

    def _too_long(self, no: int) -> DataError:
        if no == 1:
            return DataError(f"{self.path}: line 1 is longer than {_HEADER_BYTES // 2**20} MiB; expected a header row "
                             "naming the columns")
        return DataError(f"{self.path}: line {no} is longer than {self._max_chars} characters; expected one row per "
                         "line")


# ----- windows ---------------------------------------------------------------------------
def iter_windows(blocks: Iterable[Block], window_length: int, stride: int, batch: int, cover: bool = False,
                 ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """``(starts (n,), windows (n, window_length, F) float64, text at each start (n, K) or None)``, ``batch`` at a
    time: consecutive windows every ``stride`` rows across blocks, carrying over only the rows a later one needs.

    ``cover``: end with a window over the final ``window_length`` rows where the stride stopped short of them, so every
    row is covered (per-step scoring; stride <= ``window_length``)."""
    buf = text_buf = None
    buf_start = next_start = 0  # buf_start: the absolute row of buf[0]
    for block in blocks:
        buf = block.values if buf is None else np.concatenate([buf, block.values])
        text_buf = block.text if text_buf is None or block.text is None else np.concatenate([text_buf, block.text])
        last_start = buf_start + len(buf) - window_length
        if last_start >= next_start:
            starts = np.arange(next_start, last_start + 1, stride, dtype=np.int64)
            view = sliding_window_view(buf, window_length, axis=0)  # (n, F, T), no copy
            for i in range(0, len(starts), batch):
                s = starts[i: i + batch]
                local = s - buf_start
                text = None if text_buf is None else text_buf[local]
                yield s, np.ascontiguousarray(view[local].transpose(0, 2, 1)), text
            next_start = int(starts[-1]) + stride
        drop = min(next_start - buf_start, len(buf) - (min(len(buf), window_length) if cover else 0))
        buf = buf[drop:].copy() if drop < len(buf) else buf[:0]
        text_buf = None if text_buf is None else text_buf[drop:].copy()
        buf_start += drop
    last = next_start - stride  # the last window's start (negative: no window)
    if cover and last >= 0 and buf_start + len(buf) - window_length != last:
        text = None if text_buf is None else text_buf[-window_length:][:1]
        yield np.array([buf_start + len(buf) - window_length], dtype=np.int64), buf[None, -window_length:].copy(), text
