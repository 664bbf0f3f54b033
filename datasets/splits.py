"""What every dataset loader returns (:class:`DataSplits`: train and validation hold normal windows only, test
held-out normals plus every anomaly), the normal-only split, and the check of a loader's typed arguments."""
from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import TypeAdapter, ValidationError

from utils.core.errors import ConfigError, DataError

NORMAL = "normal"


@dataclass
class Split:
    """One split of windows.

    Attributes:
        x: windows, shape (N, T, F), float32.
        y: binary labels, shape (N,), int64, 1 = anomaly.
        kind: anomaly type per window, shape (N,), str (``"normal"`` for normals).
    """

    x: np.ndarray
    y: np.ndarray
    kind: np.ndarray

    def __post_init__(self) -> None:
        self.x = np.ascontiguousarray(self.x, dtype=np.float32)
        self.y = np.asarray(self.y, dtype=np.int64)
        self.kind = np.asarray(self.kind, dtype=str)
        if self.x.ndim != 3:
            raise DataError(f"windows must have shape (N, T, F), got {self.x.shape}")
        if not (len(self.x) == len(self.y) == len(self.kind)):
            raise DataError(f"x, y and kind differ in length: {len(self.x)}, {len(self.y)}, {len(self.kind)}")

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class StreamPart:
    """A contiguous stretch of one recording; the split of the same name holds its windows at ``starts``, in order.

    Attributes:
        values: (n, F) float32 raw rows.
        labels: (n,) int64, 1 = anomalous.
        kinds: (n,) str anomaly type, ``"normal"`` for normal rows.
        starts: (N,) int64 window start rows within the stretch, increasing; every row is covered.
        first_row: row of ``values[0]`` in the whole recording.
        sample_period_s: seconds between rows (None: unknown).
        times: (n,) float64 seconds since the recording's first row, or None.
        time_text: (n,) str timestamps as written, or None.
    """

    values: np.ndarray
    labels: np.ndarray
    kinds: np.ndarray
    starts: np.ndarray
    first_row: int = 0
    sample_period_s: float | None = None
    times: np.ndarray | None = None
    time_text: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.values = np.ascontiguousarray(self.values, dtype=np.float32)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.kinds = np.asarray(self.kinds, dtype=str)
        self.starts = np.asarray(self.starts, dtype=np.int64)
        n = len(self.values)
        if self.values.ndim != 2 or len(self.labels) != n or len(self.kinds) != n:
            raise DataError(f"a stream part needs values (n, F), labels (n,) and kinds (n,), got "
                            f"{self.values.shape}, {self.labels.shape}, {self.kinds.shape}")
        for name in ("times", "time_text"):
            if getattr(self, name) is not None and len(getattr(self, name)) != n:
                raise DataError(f"a stream part's {name} has {len(getattr(self, name))} rows, not {n}")

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class DataSplits:
    """Train / validation / test splits plus what a report needs to name things.

    A stream dataset lists its ``recordings``, whose test stretches' windows the test split holds in order;
    ``streams`` (one recording's ``"test"`` and ``"val"``), given alone, fills ``recordings``.
    """

    train: Split
    val: Split
    test: Split
    feature_names: list[str]
    info: dict = field(default_factory=dict)
    streams: dict[str, StreamPart] = field(default_factory=dict)
    recordings: list[Recording] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.info.setdefault("counts", {name: kind_counts(split.kind) for name, split in
                                        (("train", self.train), ("val", self.val), ("test", self.test))})
        if not self.recordings and "test" in self.streams:
            self.recordings = [Recording(str(self.info.get("path", "recording")), self.streams["test"],
                                         self.streams.get("val"))]
        expected = sum(len(r.test.starts) for r in self.recordings)
        if self.recordings and expected != len(self.test):
            raise DataError(f"the test split holds {len(self.test)} windows, but its recordings' test stretches "
                            f"start {expected}")

    @property
    def anomaly_kinds(self) -> list[str]:
        """Sorted anomaly type names present in the test split."""
        return sorted(set(self.test.kind.tolist()) - {NORMAL})


@dataclass
class Recording:
    """One recording (one file) of a stream dataset: its evaluated stretches.

    Attributes:
        name: what reports call it (the file's path, or ``valve1/3.csv``).
        train_windows: how many windows of the train split (recording after recording) are its own, or None.
    """

    name: str
    test: StreamPart
    val: StreamPart | None = None
    train_windows: int | None = None


def kind_counts(kind: np.ndarray) -> dict[str, int]:
    """Windows per kind (``normal`` and each anomaly kind), sorted by name."""
    names, counts = np.unique(np.asarray(kind).astype(str), return_counts=True)
    return {str(n): int(c) for n, c in zip(names, counts)}


def split_normal_only(x: np.ndarray, kind: np.ndarray, val_fraction: float, test_fraction: float,
                      seed: int) -> tuple[Split, Split, Split]:
    """Split windows into train/val normals and a test mix of normals and all anomalies, each shuffled by ``seed``.

    Args:
        x: (N, T, F) windows.
        kind: (N,) anomaly type per window, ``"normal"`` for normals.
        val_fraction: share of normals held out for validation.
        test_fraction: share of normals held out for the test split.
    """
    rng = np.random.default_rng(seed)
    kind = np.asarray(kind, dtype=str)
    normal_idx = rng.permutation(np.flatnonzero(kind == NORMAL))
    n_val = int(round(val_fraction * len(normal_idx)))
    n_test = int(round(test_fraction * len(normal_idx)))
    if len(normal_idx) - n_val - n_test < 1 or n_val < 1:
        raise DataError(f"too few normal windows ({len(normal_idx)}) for val_fraction={val_fraction} "
                        f"and test_fraction={test_fraction}")
    val_idx = normal_idx[:n_val]
    test_normal_idx = normal_idx[n_val : n_val + n_test]
    train_idx = normal_idx[n_val + n_test :]
    test_idx = rng.permutation(np.concatenate([test_normal_idx, np.flatnonzero(kind != NORMAL)]))
    return tuple(take_split(x, kind, idx) for idx in (train_idx, val_idx, test_idx))  # type: ignore[return-value]


def take_split(x: np.ndarray, kind: np.ndarray, idx: np.ndarray) -> Split:
    """The Split of windows ``x[idx]`` (N, T, F), labelled from their kinds."""
    return Split(x=x[idx], y=(kind[idx] != NORMAL).astype(np.int64), kind=kind[idx])


def check_shares(val_fraction: float, test_fraction: float) -> None:
    """ConfigError when the validation and test shares leave nothing to train on."""
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(f"data.val_fraction: val_fraction + test_fraction must be below 1, got "
                          f"{val_fraction} + {test_fraction}")


# ----- the typed keyword arguments, checked at a direct call ------------------------------------------
def checked_args(func: Callable) -> Callable:
    """Check the constrained keyword arguments of ``func`` against their types on every call, as the config does.

    A bad value given in Python is refused as a ConfigError naming ``data.<key>``, so no loader checks it by hand.
    """
    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        adapters = _adapters(func)
        for name, value in signature.bind(*args, **kwargs).arguments.items():
            if name in adapters:
                hint, adapter = adapters[name]
                plain = value.item() if isinstance(value, np.generic) else list(value) if isinstance(value, tuple) \
                    else value
                try:
                    adapter.validate_python(plain, strict=True)
                except ValidationError as err:
                    raise ConfigError(f"data.{name}: invalid value {value!r}; {_valid(hint, err)}") from None
        return func(*args, **kwargs)

    return wrapper


@functools.cache
def _adapters(func: Callable) -> dict[str, tuple[Any, TypeAdapter]]:
    """The parameters whose type carries a constraint (a range, a set of names): ``{name: (hint, adapter)}``."""
    hints = typing.get_type_hints(func, include_extras=True)
    return {name: (hint, TypeAdapter(hint)) for name, hint in hints.items() if _constrained(hint)}


def _constrained(hint: Any) -> bool:
    return typing.get_origin(hint) in (Annotated, Literal) or any(_constrained(a) for a in typing.get_args(hint))


def _valid(hint: Any, err: ValidationError) -> str:
    """What a value of ``hint`` must be, in words (pydantic's message where the type says nothing simpler)."""
    args = typing.get_args(hint)
    optional = type(None) in args and len(args) == 2
    described = _described(next(a for a in args if a is not type(None)) if optional else hint)
    if described is None:
        return err.errors()[0]["msg"].removeprefix("Value error, ")
    return f"expected {described}{' or null' if optional else ''}"


def _described(hint: Any) -> str | None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return f"one of: {', '.join(map(str, args))}"
    if origin is list and typing.get_origin(args[0]) is Literal:
        return f"a list of names from: {', '.join(map(str, typing.get_args(args[0])))}"
    if origin is not Annotated:
        return None
    bounds = {k: getattr(m, k) for m in args[1:] for k in ("gt", "ge", "lt", "le") if getattr(m, k, None) is not None}
    low, high = bounds.get("gt", bounds.get("ge")), bounds.get("lt", bounds.get("le"))
    if bounds.get("gt") == 0 and (args[0] is int or high is None):
        return "a positive integer" if args[0] is int else "a positive finite number"
    if low is None or high is None:
        return None
    if "gt" in bounds and "lt" in bounds:
        return f"a number strictly between {low:g} and {high:g}"
    return f"a number in {'(' if 'gt' in bounds else '['}{low:g}, {high:g}{')' if 'lt' in bounds else ']'}"
