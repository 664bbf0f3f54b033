"""Constrained types for the keyword arguments a config may set; the config validator reads them. Integers end at
:data:`MAX_INT` (a C ``int``): larger sizes overflow inside torch and NumPy without a message."""
import os
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, PlainValidator
from annotated_types import Ge, Gt, Interval, Le, Len, Lt

MAX_INT = 2**31 - 1
PositiveInt = Annotated[int, Gt(0), Le(MAX_INT)]
NonNegativeInt = Annotated[int, Ge(0), Le(MAX_INT)]
#: NumPy's legacy seeding (``np.random.seed``) takes 0 <= seed < 2**32.
Seed = Annotated[int, Ge(0), Lt(2**32)]
PositiveFloat = Annotated[float, Gt(0)]
NonNegativeFloat = Annotated[float, Ge(0)]
Fraction = Annotated[float, Interval(gt=0, lt=1)]
UnitInterval = Annotated[float, Interval(ge=0, le=1)]
PositiveFraction = Annotated[float, Interval(gt=0, le=1)]
Percentile = Annotated[float, Interval(gt=0, le=100)]
Dropout = Annotated[float, Interval(ge=0, lt=1)]
FalseAlarmRate = Annotated[float, Interval(ge=0, lt=1)]
T = TypeVar("T")


def expand_home(value: Any) -> Any:
    """A path (or each of a list's) with a leading ``~`` or ``~user`` as that home folder, as a shell writes it."""
    return [expand_home(v) for v in value] if isinstance(value, list) else \
        os.path.expanduser(value) if isinstance(value, (str, os.PathLike)) else value


#: Paths a user gives where no shell expands ``~`` (a config file, a quoted ``--set``, a Python call): ``~/data`` is
#: the home folder's, not ./~/data. ``UserPath[str]``, ``UserPath[str | list[str] | None]`` (its checks unchanged).
UserPath = Annotated[T, BeforeValidator(expand_home)]
#: One character that separates a CSV file's fields (``";"``).
Separator = Annotated[str, Len(1, 1)]


def _train_end(value: object) -> int | float | str:
    """A row (1..MAX_INT), a share of the rows (0 < x < 1) or a time (non-empty text); one message otherwise."""
    if ((isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_INT)
            or (isinstance(value, float) and 0.0 < value < 1.0) or (isinstance(value, str) and value.strip())):
        return value
    time = (f" (a number as a time is text: \"{value}\", --set 'data.train_end=\"{value}\"')" if isinstance(value, float)
            and 1 <= value < float("inf") else "")
    raise ValueError("expected a row number above 0 (400: rows 0..399 train), a share of the rows strictly between "
                     f"0 and 1 (0.2), or a time as the timestamp column writes it{time}")


#: Where a recording's training part ends: a row, a share of its rows, or a time written as its timestamps are.
TrainEnd = Annotated[int | float | str, PlainValidator(_train_end, json_schema_input_type=int | float | str)]


def hex_digits(text: str, length: int) -> str | None:
    """``text`` stripped and lower-cased when it is ``length`` hex digits (a digest), else None."""
    digits = text.strip().lower()
    return digits if len(digits) == length and all(c in "0123456789abcdef" for c in digits) else None


def _sha256(value: object) -> str:
    """64 hex digits, optionally written ``sha256:<hex>``; one message otherwise."""
    if isinstance(value, str) and hex_digits(value.strip().lower().removeprefix("sha256:"), 64) is not None:
        return value
    raise ValueError("expected the archive's sha256: 64 hex digits (as sha256sum prints them), optionally written "
                     "sha256:<64 hex digits>, or null to skip the check")


#: The sha256 of a downloaded archive.
Sha256 = Annotated[str, PlainValidator(_sha256, json_schema_input_type=str)]
