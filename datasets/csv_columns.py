"""What each column of a CSV recording is (a sensor, a label, the timestamp, or ignored) and what its label cells say.

Without ``feature_columns``, a column looking like a label (a :data:`LABEL_WORDS` name part, or only 0 and 1) is
refused rather than learnt as a sensor. What a label cell means: docs/data.md.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasets.splits import NORMAL
from datasets.csv_reading import MISSING_CELLS, header_text
from utils.core.errors import ConfigError, DataError

LABEL_WORDS = ("label", "labels", "anomaly", "anomalies", "anomalous", "changepoint", "changepoints", "change_point",
               "change_points", "outlier", "outliers", "fault", "faults", "target", "class", "attack", "attacks",
               "is_anomaly")
NORMAL_LABELS = frozenset({"", "normal", "false", "no", "ok"})  # and any number equal to 0
ANOMALY_LABELS = frozenset({"true", "yes"})  # of kind "anomaly", as a number other than 0
MISSING_LABELS = MISSING_CELLS
VALID_LABELS = ("empty, 0, normal, false, no or ok for a normal row; 1, true, yes or any other text (e.g. a fault's "
                "name) for an anomalous one")
_LABEL_NAME = re.compile(r"(?<![a-z])(" + "|".join(sorted(LABEL_WORDS, key=len, reverse=True)) + r")(?![a-z])")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_KEYS = "data.label_columns, data.ignore_columns or data.feature_columns"


@dataclass(frozen=True)
class Columns:
    """The roles of a file's columns.

    Attributes:
        features: the sensor columns, in order.
        labels: the label columns (a row is anomalous where any marks it).
        timestamp: the timestamp column, or None.
        explicit_features: the features were listed by ``feature_columns`` (no label-looking check).
    """

    features: list[str]
    labels: list[str]
    timestamp: str | None
    explicit_features: bool

    @property
    def text(self) -> list[str]:
        """The columns read as text: the labels, then the timestamp."""
        return self.labels + ([self.timestamp] if self.timestamp else [])


def looks_like_label(name: str) -> bool:
    """Whether a column name has a label word as a word part (``is_anomaly``, ``FaultFlag``)."""
    return bool(_LABEL_NAME.search(_CAMEL.sub("_", name).lower()))


def choose_columns(header: list[str], path: Path, feature_columns: list[str] | None, label_columns: list[str],
                   timestamp_column: str | None, ignore_columns: list[str], label_key: str = "label_columns",
                   ) -> Columns:
    """The columns' roles; ConfigError naming the key for a column not in the header, a clash, a label-looking name.

    Args:
        feature_columns: the sensors in order, or None: every column not named elsewhere.
        label_key: the key the labels were given by (``label_columns``, or the older ``label_column``).
    """
    named = {label_key: label_columns, "timestamp_column": [timestamp_column] if timestamp_column else [],
             "ignore_columns": ignore_columns, "feature_columns": feature_columns or []}
    in_header = set(header)  # a 100,000-column header: membership in a list would be quadratic
    for key, columns in named.items():
        unknown = [c for c in columns if c not in in_header]
        if unknown:
            shown = f"column {unknown[0]!r} is" if key in ("label_column", "timestamp_column") else unknown
            raise ConfigError(f"data.{key}: {shown} not in the header of {path}; columns: {header_text(header)}")
        if len(set(columns)) != len(columns):
            raise ConfigError(f"data.{key}: duplicate names in {columns}")
    roles: dict[str, str] = {}
    for key, columns in named.items():
        for column in columns:
            if column in roles:
                raise ConfigError(f"data.{key}: {column!r} is also in data.{roles[column]}; a column has one role")
            roles[column] = key
    if feature_columns is None:
        features = [c for c in header if c not in roles]
        for column in features:
            if looks_like_label(column):
                raise ConfigError(f"{path}: column {column!r} looks like a label, not a sensor; name it in "
                                  f"{_KEYS} (a label column never becomes a feature)")
    else:
        features = list(feature_columns)
    if not features:
        raise ConfigError(f"data.feature_columns: {path} has no feature column left (columns: {header_text(header)})")
    return Columns(features, list(label_columns), timestamp_column, feature_columns is not None)


def refuse_flag_features(values: list[np.ndarray], columns: Columns, source: str) -> None:
    """ConfigError for an implicit feature whose values are only 0 and 1 (both present) in every file's rows (n_i, F)."""
    if columns.explicit_features:
        return
    only_flags = np.ones(len(columns.features), dtype=bool)
    has_zero, has_one = ~only_flags, ~only_flags
    for rows in values:
        zero, one = rows == 0, rows == 1
        only_flags &= (zero | one).all(axis=0)
        has_zero, has_one = has_zero | zero.any(axis=0), has_one | one.any(axis=0)
    flags = only_flags & has_zero & has_one
    if flags.any():
        column = columns.features[int(np.flatnonzero(flags)[0])]
        raise ConfigError(f"{source}: column {column!r} holds only 0 and 1, like a label, not a sensor; name it in "
                          f"{_KEYS} (list the sensors in data.feature_columns to keep it as one)")


def row_flags(texts: np.ndarray, names: list[str] | None = None, source: str | Path = "<input>",
              line_nos: np.ndarray | None = None, first_row: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-row labels of K label columns: anomalous where any marks it, its kind the first marking column's.

    Args:
        texts: (n, K) str label cells.
        names: the K label columns' names, for messages.
        line_nos: (n,) file line of each row, for messages, or None.
        first_row: the data row of ``texts[0]``, for messages.

    Returns:
        ``(labels (n,) int64 1 = anomalous, kinds (n,) str)``; DataError for a cell marking a missing label.
    """
    labels, kinds = np.zeros(len(texts), dtype=np.int64), np.full(len(texts), NORMAL, dtype=object)
    for k in range(texts.shape[1]):
        cells = texts[:, k].astype(str)
        missing = np.isin(np.char.lower(np.char.strip(cells)), list(MISSING_LABELS))
        if missing.any():
            r = int(np.argmax(missing))
            name = names[k] if names is not None else f"label column {k}"
            line = f" (line {int(line_nos[r])})" if line_nos is not None else ""
            raise DataError(f"{source}: row {first_row + r}{line}, column {name!r}: label {str(texts[r, k])!r} marks a "
                            f"missing label, neither normal nor anomalous; valid labels: {VALID_LABELS}")
        uniques, inverse = np.unique(np.char.strip(cells), return_inverse=True)  # few distinct labels: name each
        named = [_kind_name(t) for t in uniques]
        marks = np.array([name is not None for name in named])[inverse.reshape(-1)] & (labels == 0)
        labels[marks] = 1
        kinds[marks] = np.array(named, dtype=object)[inverse.reshape(-1)][marks]
    return labels, kinds.astype(str)


def _kind_name(text: str) -> str | None:
    """The anomaly kind a (stripped) label cell names, or None for a normal row."""
    if text.lower() in NORMAL_LABELS:
        return None
    if text.lower() in ANOMALY_LABELS:
        return "anomaly"
    try:  # a decimal comma (0,0 in a ';' file) reads as a number too
        return None if float(text.replace(",", ".") if text.count(",") == 1 else text) == 0 else "anomaly"
    except ValueError:
        return text
