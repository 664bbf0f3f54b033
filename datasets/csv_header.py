"""The header of a CSV file: its column names and separator, or a DataError saying what the file looks like instead.

:func:`read_header` reads only the file's first lines (at most 16 MiB). The
separator is ``,`` unless the caller gives another or asks for it to be detected
(:func:`read_layout`: the one of ``,`` ``;`` tab ``|`` the header line holds most
often). A header that holds another of them than the separator expected, and no
expected one, is refused naming the separator it looks like and, when the next
line has them, its decimal commas (see :mod:`datasets.csv_reading` for the
format the rows must follow).
"""
from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path
from typing import BinaryIO

from utils.core.errors import DataError

SEPARATOR_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
OTHER_SEPARATORS = {sep: name for sep, name in SEPARATOR_NAMES.items() if sep != ","}
EXPECTED_FORMAT = "the reader expects ',' between fields and '.' as the decimal point (e.g. 48.012,10.05)"
DECIMAL_COMMA = re.compile(r"\d,\d")
_LINE_END = re.compile(rb"\r\n|\r|\n")  # as text mode with newline="" splits lines
_HEADER_BYTES = 16 * 2**20  # the header and the first data line must fit here


def expected_format(separator: str) -> str:
    """What the reader expects of a row, for messages (:data:`EXPECTED_FORMAT` for ``,``)."""
    if separator == ",":
        return EXPECTED_FORMAT
    return (f"the reader expects {SEPARATOR_NAMES.get(separator, repr(separator))} between fields and '.' as the "
            f"decimal point (e.g. 48.012{separator}10.05)")


def read_header(path: str | Path) -> list[str]:
    """Column names from the first line of a comma-separated file (:func:`read_layout` with ``,``).

    Raises:
        DataError: missing/unreadable/empty file, another separator than ``,``,
            empty or duplicate column names, a header of numbers only.
    """
    return read_layout(path, ",")[0]


def read_layout(path: str | Path, separator: str | None = None, hint: str = ". Write it comma-separated",
                ) -> tuple[list[str], str]:
    """Column names and the field separator from the first line of a CSV file.

    Args:
        path: the file.
        separator: the one-character field separator, or None: the one of ``, ; tab |`` the header holds
            most often (``,`` when it holds none, a one-column file).
        hint: what to do when the file looks separated by another character, for the message.

    Returns:
        ``(column names, separator)``.

    Raises:
        DataError: missing/unreadable/empty file, another separator than the one given, a header where two
            separators tie, empty or duplicate column names, a header of numbers only.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            start = _head(handle)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err})") from None
    if start.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):  # before UTF-16: FF FE starts both
        raise DataError(f"{path}: the file is UTF-32 text (it starts with a UTF-32 byte-order mark); save it as "
                        "CSV UTF-8")
    if start.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{path}: the file is UTF-16 text (it starts with a UTF-16 byte-order mark, as Excel's "
                        "'Unicode Text' writes); save it as CSV UTF-8")
    lines = _LINE_END.split(start, maxsplit=2)
    if b"\x00" in lines[0]:  # UTF-16/32 without a byte-order mark reads as text with a NUL between the letters
        wide = " (every other byte is NUL: UTF-16 text without a byte-order mark?)" if lines[0].count(b"\x00") >= \
            len(lines[0]) // 3 else ""
        raise DataError(f"{path}: line 1 holds NUL bytes{wide}; expected a header row of UTF-8 text naming the "
                        "columns; save the file as CSV UTF-8")
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
    if separator is None:
        separator = detect_separator(first, path)
    header = [name.strip() for name in split_line(first, path, 1, separator)]
    shown = first.strip()[:80]
    if len(header) == 1:
        _refuse_other_separator(path, first, second, separator, hint)
    if any(not name for name in header):
        raise DataError(f"{path}: line 1: the header has an empty column name ({shown!r})")
    dupes = sorted(name for name, count in Counter(header).items() if count > 1)
    if dupes:
        raise DataError(f"{path}: line 1: duplicate column names {dupes[:10]}")
    try:
        [float(name) for name in header]
    except ValueError:
        return header, separator
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


def _refuse_other_separator(path: Path, first: str, second: str, separator: str = ",",
                            hint: str = ". Write it comma-separated") -> None:
    """DataError if a one-column header holds another separator than ``separator``: the file uses that one."""
    found = [(sep, name) for sep, name in SEPARATOR_NAMES.items() if sep != separator and sep in first]
    if not found:
        return
    sep, name = found[0]
    decimal = [cell.strip() for cell in second.split(sep) if sep != "," and DECIMAL_COMMA.search(cell)]
    commas = f" with decimal commas (line 2: {decimal[0][:20]!r})" if decimal else ""
    raise DataError(f"{path}: line 1: the file looks {name}-separated{commas}; {expected_format(separator)}{hint}")


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
