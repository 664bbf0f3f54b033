"""What every loader returns (:class:`DataSplits`: train and val normal windows only, test held-out normals plus every
anomaly), the normal-only split, the check of typed loader arguments, and one recording's contiguous stretches."""
from __future__ import annotations

import functools
import inspect
import logging
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import TypeAdapter, ValidationError

from utils.core.errors import ConfigError, DataError
from utils.core.types import Fraction, PositiveInt
from utils.metrics.ranges import covering_starts, kind_runs, window_starts

logger = logging.getLogger("anomaly")

NORMAL = "normal"


@dataclass
class Split:
    """One split of windows: ``x`` (N, T, F) float32, ``y`` (N,) int64 1 = anomaly, ``kind`` (N,) str anomaly type."""

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

    ``values`` (n, F) float32 raw rows, ``labels`` (n,) int64 1 = anomalous, ``kinds`` (n,) str (``"normal"``),
    ``starts`` (N,) int64 increasing window starts covering every row, ``first_row``: row of ``values[0]`` in the
    recording, ``sample_period_s`` (None: unknown), ``times`` (n,) float64 seconds since the recording's first row
    and ``time_text`` (n,) str as written, or None.
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
    """One recording (file) of a stream dataset: its evaluated stretches, ``name`` as reports call it (its path, or
    ``valve1/3.csv``), ``train_windows``: how many train-split windows (recording after recording) are its own."""

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
    """Split (N, T, F) windows ``x`` by their (N,) ``kind`` into train/val normals and a test mix of normals and all
    anomalies, each shuffled by ``seed``; ``val_fraction`` and ``test_fraction`` are shares of the normals."""
    rng = np.random.default_rng(seed)
    kind = np.asarray(kind, dtype=str)
    normal_idx = rng.permutation(np.flatnonzero(kind == NORMAL))
    n_val, n_test = (int(round(share * len(normal_idx))) for share in (val_fraction, test_fraction))
    if len(normal_idx) - n_val - n_test < 1 or n_val < 1:
        raise DataError(f"too few normal windows ({len(normal_idx)}) for val_fraction={val_fraction} "
                        f"and test_fraction={test_fraction}")
    val_idx, test_normal_idx, train_idx = np.split(normal_idx, [n_val, n_val + n_test])
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
    """Check the constrained keyword arguments of ``func`` against their types on every call, as the config does:
    a bad value given in Python is refused as a ConfigError naming ``data.<key>``, so no loader checks it by hand;
    ``func`` gets the values as the config would give them (a :data:`~utils.core.types.UserPath`'s ``~`` expanded)."""
    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        adapters = _adapters(func)
        bound = signature.bind(*args, **kwargs)
        for name, value in bound.arguments.items():
            if name in adapters:
                hint, adapter = adapters[name]
                plain = value.item() if isinstance(value, np.generic) else list(value) if isinstance(value, tuple) \
                    else value
                try:
                    bound.arguments[name] = adapter.validate_python(plain, strict=True)
                except ValidationError as err:
                    raise ConfigError(f"data.{name}: invalid value {value!r}; {_valid(hint, err)}") from None
        return func(*bound.args, **bound.kwargs)

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


# ----- one long recording: contiguous stretches -------------------------------------------------------
# No window crosses a stretch boundary, so no row is shared by two splits (a random split of overlapping windows
# would flatter the test). Ranges are ``[start, end)`` rows.
def stretch_bounds(n_rows: int, val_fraction: float, test_fraction: float | None = None,
                   train_end: int | None = None) -> list[tuple[int, int]]:
    """``[(0, a), (a, b), (b, n_rows)]``: the train, validation and test stretches' rows; with ``train_end``, the
    validation stretch is the last ``val_fraction`` of rows ``[0, train_end)``, the rest test."""
    if train_end is not None:
        a = train_end - int(round(val_fraction * train_end))
        return [(0, a), (a, train_end), (train_end, n_rows)]
    n_val, n_test = int(round(val_fraction * n_rows)), int(round(test_fraction * n_rows))
    a, b = n_rows - n_val - n_test, n_rows - n_test
    return [(0, max(a, 0)), (max(a, 0), max(b, 0)), (max(b, 0), n_rows)]


def kind_ranges(labels: np.ndarray, kinds: np.ndarray, offset: int = 0) -> list[dict]:
    """Runs of anomalous rows of one kind in (n,) ``labels``/``kinds``, plus ``offset``: ``[{start, end, kind}]``."""
    return [{"start": s + offset, "end": e + offset, "kind": kind} for s, e, kind in kind_runs(labels, kinds)]


def _clean_starts(anomalous_before: np.ndarray, starts: np.ndarray, window_length: int) -> np.ndarray:
    """The starts whose window ``[s, s + T)`` holds no anomalous row (``anomalous_before``: cumulative counts)."""
    return starts[anomalous_before[starts + window_length] == anomalous_before[starts]]


def training_windows(values: np.ndarray, excluded: np.ndarray, rows: int, window_length: int,
                     stride: int) -> np.ndarray:
    """A recording's training windows (N, T, F) in its first ``rows`` rows, none holding an ``excluded`` row."""
    anomalous_before = np.concatenate([[0], np.cumsum(excluded[:rows])])
    rows = min(rows, len(values))
    starts = _clean_starts(anomalous_before, window_starts(rows, window_length, stride), window_length)
    return windows_at(values, starts, window_length)


def windows_at(values: np.ndarray, starts: np.ndarray, window_length: int) -> np.ndarray:
    """(N, T, F) windows ``values[s : s + T]`` (a view into ``values``)."""
    if len(starts) == 0:
        return np.zeros((0, window_length, values.shape[1]), dtype=values.dtype)
    return sliding_window_view(values, window_length, axis=0)[starts].transpose(0, 2, 1)


def window_labels(labels: np.ndarray, kinds: np.ndarray, starts: np.ndarray, window_length: int,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per window at ``starts``: ``(y (N,) int64 1 = holds an anomalous row, kind (N,) str: the first one's kind)``."""
    flags = sliding_window_view(np.asarray(labels) != 0, window_length)[starts]  # (N, T)
    hit = flags.any(axis=1)
    kind = np.full(len(starts), NORMAL, dtype=object)
    kind[hit] = np.asarray(kinds)[starts[hit] + flags[hit].argmax(axis=1)]
    return hit.astype(np.int64), kind.astype(str)


@checked_args
def split_stream(values: np.ndarray, labels: np.ndarray, kinds: np.ndarray, window_length: PositiveInt,
                 stride: PositiveInt, eval_stride: PositiveInt, val_fraction: Fraction,
                 test_fraction: Fraction | None = None,
                 times: np.ndarray | None = None, time_text: np.ndarray | None = None,
                 sample_period_s: float | None = None, *, train_end: int | None = None,
                 train_labels: Literal["exclude", "ignore"] = "exclude", length_key: str = "window_length",
                 size_hint: str = "a longer recording", source: str | None = None, min_train_windows: int = 1,
                 min_val_windows: int = 4) -> tuple[Split, Split, Split, dict[str, StreamPart], dict]:
    """Cut a recording into contiguous train, validation and test stretches and window each.

    ``values`` (n, F) rows in physical units; ``labels``, ``kinds``, ``times``, ``time_text`` (n,) as in StreamPart.
    ``train_end``: rows ``[0, train_end)`` are the training part (:func:`stretch_bounds`), or None. ``train_labels``
    "exclude" leaves out training and validation windows holding a labelled row; "ignore" ignores the labels before
    the test stretch. For messages: ``length_key`` (``window_length``, ``time_steps``), ``size_hint`` (what gives
    more rows), ``source`` (the recording's name; None: not named). ``min_train_windows``/``min_val_windows``: the
    fewest accepted (0 where many recordings' pooled counts are checked).
    Returns ``(train, val, test, {"val": StreamPart, "test": StreamPart}, info)``: val holds the normal windows at
    ``streams["val"].starts``, test all at ``streams["test"].starts``; ``info`` the stretches, windows per split, and
    anomalous rows and labelled ranges per stretch and in all.
    """
    values, labels = np.asarray(values), (np.asarray(labels) != 0)
    kinds = np.where(labels, np.asarray(kinds, dtype=str), NORMAL)
    n, T = len(values), int(window_length)
    if eval_stride > T:
        raise ConfigError(f"data.eval_stride: invalid value {eval_stride}; it must be at most "
                          f"data.{length_key}={T}, so the test windows cover every test row")
    if train_end is None:
        check_shares(val_fraction, test_fraction)
    bounds = stretch_bounds(n, val_fraction, test_fraction, train_end)
    (_, a), (_, b), _ = bounds
    used = labels.copy()
    if train_labels == "ignore":
        used[:b] = False
    anomalous_before = np.concatenate([[0], np.cumsum(used)])
    where = f"{source}: " if source else ""
    if train_end is None:
        keys = f"data.val_fraction={val_fraction}, data.test_fraction={test_fraction}"
        test_fix, fit_fix = "raise data.test_fraction", "lower data.val_fraction / data.test_fraction"
    else:
        keys = f"data.train_end (row {train_end}), data.val_fraction={val_fraction}"
        test_fix, fit_fix = "lower data.train_end", "raise data.train_end"
    if n - b < T:
        raise DataError(f"{where}the test stretch (rows {b}..{n - 1}, {n - b} rows) is shorter than one window of "
                        f"data.{length_key}={T}; {test_fix}, lower data.{length_key} or use "
                        f"{size_hint} ({n} rows, {keys})")
    train_x = training_windows(values, used, a, T, stride)
    if len(train_x) < min_train_windows:
        raise DataError(f"{where}the train stretch (rows 0..{a - 1}) holds no window of data.{length_key}={T} rows "
                        f"without an anomalous row; {fit_fix} or lower data.{length_key}, or use {size_hint} "
                        f"({keys})")
    val_starts = _clean_starts(anomalous_before, a + covering_starts(b - a, T, eval_stride), T) - a
    if len(val_starts) < min_val_windows:
        raise DataError(f"{where}the validation stretch (rows {a}..{b - 1}) holds {len(val_starts)} windows of "
                        f"data.{length_key}={T} rows without an anomalous row, fewer than the {min_val_windows} the "
                        f"thresholds need; raise data.val_fraction, lower data.eval_stride or data.{length_key}, "
                        f"or use {size_hint} ({keys})")
    test_starts = covering_starts(n - b, T, eval_stride)
    train = Split(x=train_x, y=np.zeros(len(train_x)), kind=np.full(len(train_x), NORMAL))
    val = Split(x=windows_at(values[a:b], val_starts, T), y=np.zeros(len(val_starts)),
                kind=np.full(len(val_starts), NORMAL))
    test_y, test_kind = window_labels(labels[b:], kinds[b:], test_starts, T)
    test = Split(x=windows_at(values[b:], test_starts, T), y=test_y, kind=test_kind)

    def part(flags: np.ndarray, names: np.ndarray, lo: int, hi: int, starts: np.ndarray) -> StreamPart:
        return StreamPart(values=values[lo:hi], labels=flags[lo:hi].astype(np.int64), kinds=names[lo:hi], starts=starts,
                          first_row=lo, sample_period_s=sample_period_s,
                          times=None if times is None else np.asarray(times, dtype=np.float64)[lo:hi],
                          time_text=None if time_text is None else np.asarray(time_text, dtype=str)[lo:hi])

    streams = {"val": part(used, np.where(used, kinds, NORMAL), a, b, val_starts),
               "test": part(labels, kinds, b, n, test_starts)}
    parts = list(zip(("train", "val", "test"), bounds))
    info = {"split": "contiguous", "rows": n, "window_length": T, "stride": int(stride),
            "eval_stride": int(eval_stride), "stretches": {name: [lo, hi] for name, (lo, hi) in parts},
            "windows": {"train": len(train), "val": len(val), "test": len(test)},
            "anomalous_rows": {name: int(labels[lo:hi].sum()) for name, (lo, hi) in parts},
            "labelled_ranges": {name: len(kind_ranges(labels[lo:hi], kinds[lo:hi])) for name, (lo, hi) in parts},
            "labelled_ranges_all": len(kind_ranges(labels, kinds))}
    if train_end is not None:
        info.update(train_end=int(train_end), train_labels=train_labels)
    return train, val, test, streams, info


def warn_about_labels(recordings: list[dict]) -> None:
    """Log one line per finding over the recordings' split infos (:func:`split_stream`'s, plus ``"name"``)."""
    def names(found: list[str]) -> str:
        return ", ".join(found[:12]) + (f", ... ({len(found)} in all)" if len(found) > 12 else "")

    no_test = [f"{r['name']} (rows {r['stretches']['test'][0]}..{r['stretches']['test'][1] - 1})"
               for r in recordings if r["anomalous_rows"]["test"] == 0]
    cut = [r for r in recordings if "train_end" in r]
    few = [f"{r['name']} ({r['labelled_ranges']['test']} of {r['labelled_ranges_all']})" for r in cut
           if 0 < r["labelled_ranges"]["test"] < r["labelled_ranges_all"] / 2]
    unseen = [f"{r['name']} ({r['anomalous_rows']['train'] + r['anomalous_rows']['val']} rows before row "
              f"{r['train_end']})" for r in cut if r["anomalous_rows"]["train"] + r["anomalous_rows"]["val"]]
    how = {"ignore": "trained on as normal (data.train_labels=ignore)",
           "exclude": "left out of training (data.train_labels=exclude)"}[cut[0]["train_labels"]] if cut else ""
    for found, text in ((no_test, "the test stretch holds no anomalous row, so only false alarms can be measured "
                                  "there"),
                        (few, "the test stretch holds fewer than half of the labelled ranges (the rest lie before "
                              "data.train_end)"),
                        (unseen, f"labelled rows inside the training part are never evaluated, {how}")):
        if found:
            logger.warning("data: %s: %s", text, names(found))
