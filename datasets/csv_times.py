"""The timestamp column of a CSV time series: one format, readable, never going backwards.

Timestamps are either numbers (seconds, sample counts: any finite float) or
ISO 8601 dates/times (``2024-05-01T08:00:00``, with or without a UTC offset)
in one layout for the whole column: a row written in another layout
(``2024-05-01 08:00:00`` after ``2024-05-01T08:00:00``, a date without the
time, a number among dates) is refused naming the first row that differs.
Fractional seconds may come and go (``datetime.isoformat`` drops them when zero).
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from utils.core.errors import DataError

_DIGITS = str.maketrans("0123456789", "9" * 10)
_FRACTION = re.compile(r"(:99)\.9+")
ISO_EXAMPLE = "e.g. 2024-05-01T08:00:00"


def parse_times(texts: np.ndarray, path: Path, column: str, line_nos: np.ndarray | None = None) -> np.ndarray:
    """Timestamps as float64 numbers or datetime64[ns], checked to never go backwards.

    Args:
        texts: the column's cells, stripped (rows,).
        path: the file, for messages.
        column: the column's name, for messages.
        line_nos: the file line of each row, for messages (None: not named).

    Raises:
        DataError: naming the row of the first timestamp in another format than
            row 0, unreadable, NaN/NaT/infinite, or earlier than the row before.
    """
    def where(row: int) -> str:
        line = "" if line_nos is None else f" (line {int(line_nos[row])})"
        return f"{path}: row {row}{line}, column {column!r}"

    times = _as_numbers(texts, where)
    if times is None:
        if _as_numbers(texts[:1], where) is None:
            _as_datetimes(texts[:1], where)  # row 0 is readable, so its format is the one to follow
        _check_one_format(texts, where)
        times = _as_datetimes(texts, where)
    back = np.flatnonzero(times[1:] < times[:-1])
    if len(back):
        row = int(back[0]) + 1
        raise DataError(f"{where(row)}: time goes backwards "
                        f"({times[row - 1]} then {times[row]}); sort the file by time")
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
        raise DataError(f"{where(row)}: timestamp {texts[row][:40]!r} is not a finite "
                        "number; every row needs its time")
    return times


def _layout(text: str) -> str:
    """``2024-05-01T08:00:00.25`` -> ``9999-99-99T99:99:99``: the format of a timestamp."""
    return _FRACTION.sub(r"\1", text.translate(_DIGITS))


def _check_one_format(texts: np.ndarray, where: Callable[[int], str]) -> None:
    """DataError naming the first row whose timestamp is laid out differently from row 0's."""
    signatures = np.char.translate(texts, _DIGITS)
    uniques, inverse = np.unique(signatures, return_inverse=True)
    layouts = np.array([_FRACTION.sub(r"\1", str(u)) for u in uniques])[inverse.reshape(-1)]
    other = np.flatnonzero(layouts != layouts[0])
    if len(other):
        row = int(other[0])
        raise DataError(f"{where(row)}: timestamp {texts[row][:40]!r} is written in "
                        f"another format than row 0 ({texts[0][:40]!r}); write every timestamp in one "
                        f"format ({ISO_EXAMPLE}) or as numbers")


def _as_datetimes(texts: np.ndarray, where: Callable[[int], str]) -> np.ndarray:
    """datetime64[ns] timestamps; DataError naming the first unreadable or NaT row."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "no explicit representation of timezones": read as UTC
        try:
            times = texts.astype("datetime64[ns]")
        except (ValueError, OverflowError):
            times = None
    if times is not None:
        bad = np.flatnonzero(np.isnat(times))
        if not len(bad):
            return times
        rows = bad
    else:
        rows = range(len(texts))
    for row in rows:
        text = str(texts[row])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                ok = not np.isnat(np.datetime64(text, "ns"))
        except (ValueError, OverflowError):
            ok = False
        if not ok:
            raise DataError(f"{where(row)}: {text[:40]!r} is neither a number nor an "
                            f"ISO 8601 date/time ({ISO_EXAMPLE})")
    raise DataError(f"{where(0)}: the timestamps cannot be read as ISO 8601 dates/times ({ISO_EXAMPLE})")
