"""ECG5000 heartbeats from the UCR archive: file parsers and the ``ecg5000`` loader.

5000 beats of 140 samples in 5 classes, split by UCR into 500 TRAIN and 4500 TEST
rows. Class 1 is a normal beat; classes 2..5 are anomalies (kinds ``"class_2"``
.. ``"class_5"``). The files come as UCR ``.txt`` (label first), sktime ``.ts``
(``v1,...,vT:label``) or Weka ``.arff`` (label last); rows are sorted by class.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from datasets.base import NORMAL, DataSplits, Split, split_normal_only
from datasets.download import download_archive
from utils.core.errors import ConfigError, DataError
from utils.core.registry import register_dataset
from utils.core.types import Fraction

DEFAULT_URL = "https://www.timeseriesclassification.com/aeon-toolkit/ECG5000.zip"
TRAIN_TXT_SHA256 = "0d96aff193311a6dc6111bf0dbd2f7d2313987fbf7a1da4a383d92563876057b"
TRAIN_TXT_GITBLOB = "7f0d711c984c79616e09a430dbd2c5d89fed2416"
TEST_TXT_GITBLOB = "305ae1c597012624060310dbc529484767b2b2e3"
TRAIN_TS_SHA256 = "1935be5cc08203aa7c0de288fbceb48997d475f43ee610fa373fd6f4a0d66775"
TRAIN_TS_GITBLOB = "30af38036519f907e4567b2ecf24edad86700a0a"
TEST_TS_GITBLOB = "43151e9791994d5ddee2d2f909d6badba48da34d"
TRAIN_ARFF_SHA256 = "f2d793c998d853cbef4fed91f44792d680e51ed238cc51e8197a982b6520f4c6"
TRAIN_ARFF_GITBLOB = "c089f63755f348005ba0477df6ec53d59975bafb"
TEST_ARFF_GITBLOB = "02c1e2e49822dd2fd0664790ba3397e22c220852"
KNOWN_FILE_CHECKSUMS = {
    "ECG5000_TRAIN.txt": f"gitblob:{TRAIN_TXT_GITBLOB}",
    "ECG5000_TEST.txt": f"gitblob:{TEST_TXT_GITBLOB}",
    "ECG5000_TRAIN.ts": f"gitblob:{TRAIN_TS_GITBLOB}",
    "ECG5000_TEST.ts": f"gitblob:{TEST_TS_GITBLOB}",
    "ECG5000_TRAIN.arff": f"gitblob:{TRAIN_ARFF_GITBLOB}",
    "ECG5000_TEST.arff": f"gitblob:{TEST_ARFF_GITBLOB}",
}
DEFAULT_FILE_CHECKSUMS = {
    "ECG5000_TRAIN.txt": f"gitblob:{TRAIN_TXT_GITBLOB}",
    "ECG5000_TEST.txt": f"gitblob:{TEST_TXT_GITBLOB}",
}
SUFFIXES = (".txt", ".ts", ".arff")
SPLITS = ("TRAIN", "TEST")
PROTOCOLS = ("official", "merged")
NORMAL_LABEL = 1
LABELS = (1, 2, 3, 4, 5)


def read_ucr_txt(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a UCR ``.txt`` file (whitespace-separated, label in column 0).

    Returns:
        ``(x, labels)``: float32 (N, T) series and int64 (N,) labels.
    """
    path = Path(path)
    rows, line_nos = [], []
    for no, line in _numbered_lines(path):
        if line.strip():
            rows.append(line.split())
            line_nos.append(no)
    return _rows_to_arrays(rows, line_nos, path, label_col=0)


def read_ucr_ts(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a univariate sktime ``.ts`` file (``#``/``@`` header, then ``v1,...,vT:label``).

    Returns:
        ``(x, labels)``: float32 (N, T) series and int64 (N,) labels.
    """
    path = Path(path)
    rows, line_nos = [], []
    for no, line in _numbered_lines(path):
        text = line.strip()
        if not text or text[0] in "#@":
            continue
        values, sep, label = text.rpartition(":")
        if not sep or ":" in values:
            raise DataError(
                f"{path}: line {no}: expected one univariate series and its label "
                f"as 'v1,...,vT:label', got {text[:60]!r}"
            )
        rows.append(values.split(",") + [label])
        line_nos.append(no)
    return _rows_to_arrays(rows, line_nos, path, label_col=-1)


def read_ucr_arff(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a Weka ``.arff`` file (header up to ``@data``, then comma rows, label last).

    Returns:
        ``(x, labels)``: float32 (N, T) series and int64 (N,) labels.
    """
    path = Path(path)
    rows, line_nos, in_data = [], [], False
    for no, line in _numbered_lines(path):
        text = line.strip()
        if not text or text.startswith("%"):
            continue
        if in_data:
            rows.append(text.split(","))
            line_nos.append(no)
        elif text.lower() == "@data":
            in_data = True
    if not in_data:
        raise DataError(f"{path}: no '@data' line; expected an ARFF header ending in @data, "
                        "then one comma-separated row per series with the label last")
    return _rows_to_arrays(rows, line_nos, path, label_col=-1)


_READERS = {".txt": read_ucr_txt, ".ts": read_ucr_ts, ".arff": read_ucr_arff}


def read_ucr(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a UCR file, picking the parser from its suffix (.txt, .ts or .arff).

    Returns:
        ``(x, labels)``: float32 (N, T) series and int64 (N,) labels.
    """
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unknown file suffix {path.suffix!r}; valid suffixes: {', '.join(SUFFIXES)}")
    return reader(path)


def find_split_file(data_dir: Path, split: str) -> Path | None:
    """Return the first of ECG5000_{split}.txt, .ts, .arff in ``data_dir``, or None."""
    for suffix in SUFFIXES:
        path = Path(data_dir) / f"ECG5000_{split.upper()}{suffix}"
        if path.is_file():
            return path
    return None


@register_dataset("ecg5000")
def load_ecg5000(
    seed: int,
    data_dir: str = "data/ECG5000",
    protocol: Literal["official", "merged"] = "official",
    val_fraction: Fraction = 0.2,
    test_fraction: Fraction = 0.2,
    download: bool = False,
    url: str = DEFAULT_URL,
    sha256: str | None = None,
    progress: bool = True,
) -> DataSplits:
    """Load ECG5000 as normal-only train/val splits and a mixed test split.

    Args:
        seed: fixes every shuffle.
        data_dir: folder holding ECG5000_TRAIN/TEST as .txt, .ts or .arff.
        protocol: ``"official"``: train/val are the normal TRAIN beats, test is the
            whole TEST file; ``"merged"``: TRAIN and TEST (if present) pooled and
            cut by :func:`datasets.base.split_normal_only`.
        val_fraction: share of the normal beats held out for validation.
        test_fraction: share of the normal beats held out for test (merged only).
        download: fetch the archive from ``url`` when files are missing.
        url: where the UCR ECG5000.zip lives.
        sha256: expected sha256 of the zip, or None to check only its files.
        progress: show a download progress bar.

    Returns:
        Splits with x of shape (N, 140, 1) and feature name ``"ecg"``.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown ECG5000 protocol {protocol!r}; valid protocols: {', '.join(PROTOCOLS)}")
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"data.val_fraction must be in (0, 1), got {val_fraction}")
    folder = Path(data_dir)
    files = _locate_files(folder, protocol, download, url, sha256, progress)
    arrays = {split: _read_split(path) for split, path in files.items() if path is not None}
    _check_lengths(arrays, files)
    notes: list[str] = []
    if protocol == "official":
        splits = _official_splits(arrays, val_fraction, seed)
        notes.append(f"{int((arrays['TRAIN'][1] != NORMAL).sum())} TRAIN anomalies are not used")
    else:
        if files["TEST"] is None:
            notes.append(f"no ECG5000_TEST file in {folder}; the merged protocol used TRAIN alone")
        x = np.concatenate([pair[0] for pair in arrays.values()])[:, :, None]
        kind = np.concatenate([pair[1] for pair in arrays.values()])
        splits = split_normal_only(x, kind, val_fraction, test_fraction, seed)
    info = {
        "dataset": "ecg5000",
        "protocol": protocol,
        "files": {split.lower(): (str(p) if p else None) for split, p in files.items()},
        "series_length": int(arrays["TRAIN"][0].shape[1]),
        "class_counts": {name: _class_counts(s.kind) for name, s in zip(("train", "val", "test"), splits)},
        "notes": notes,
    }
    return DataSplits(*splits, feature_names=["ecg"], info=info)


def _numbered_lines(path: Path) -> list[tuple[int, str]]:
    """Return ``(1-based line number, line)`` pairs; DataError if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the file as UTF-8 text: {exc}") from exc
    return list(enumerate(text.splitlines(), start=1))


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
    x = np.delete(table, label_col if label_col >= 0 else table.shape[1] + label_col, axis=1)
    with np.errstate(over="ignore"):
        x = x.astype(np.float32)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise DataError(f"{path}: line {line_nos[int(np.flatnonzero(bad)[0])]} holds NaN or inf "
                        f"({int(bad.sum())} bad rows in all); clean or drop these rows")
    bad = ~np.isfinite(labels) | (labels != np.round(labels))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}: line {line_nos[i]}: label {labels[i]} is not a whole number")
    return x, labels.astype(np.int64)


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


def _read_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one split file and map labels to kind strings."""
    x, labels = read_ucr(path)
    unknown = sorted(set(np.unique(labels).tolist()) - set(LABELS))
    if unknown:
        raise DataError(f"{path}: unexpected class labels {unknown}; ECG5000 has classes 1..5")
    kind = np.where(labels == NORMAL_LABEL, NORMAL, np.char.add("class_", labels.astype(str)))
    return x, kind.astype(str)


def _locate_files(folder: Path, protocol: str, download: bool, url: str,
                  sha256: str | None, progress: bool) -> dict[str, Path | None]:
    """Find (or download) the split files; DataError if a required one is missing."""
    found = {split: find_split_file(folder, split) for split in SPLITS}
    missing = [split for split in SPLITS if found[split] is None]
    if download and missing:
        checksums = {f"ECG5000_{s}.txt": DEFAULT_FILE_CHECKSUMS[f"ECG5000_{s}.txt"] for s in missing}
        download_archive(url, folder, sha256, checksums, progress)
        found = {split: find_split_file(folder, split) for split in SPLITS}
    required = SPLITS if protocol == "official" else ("TRAIN",)
    absent = [split for split in required if found[split] is None]
    if absent:
        raise DataError(_missing_message(folder, absent, protocol))
    return found


def _missing_message(folder: Path, absent: list[str], protocol: str) -> str:
    """Say which files are missing, where they were looked for and how to get them."""
    wanted = "; ".join(" or ".join(f"ECG5000_{s}{x}" for x in SUFFIXES) for s in absent)
    return (
        f"ECG5000 data not found in {folder} (resolved: {folder.resolve()}): the {protocol} protocol "
        f"needs {wanted}. Set `data.download: true` in the config to fetch them, or download the "
        f"UCR archive ECG5000.zip ({DEFAULT_URL}) and unzip it into {folder}"
    )


def _check_lengths(arrays: dict[str, tuple[np.ndarray, np.ndarray]], files: dict[str, Path | None]) -> None:
    """DataError if TEST series differ in length from TRAIN series."""
    if "TEST" in arrays and arrays["TEST"][0].shape[1] != arrays["TRAIN"][0].shape[1]:
        raise DataError(f"{files['TEST']}: series have {arrays['TEST'][0].shape[1]} values but those in "
                        f"{files['TRAIN']} have {arrays['TRAIN'][0].shape[1]}; both splits must match")


def _official_splits(arrays: dict[str, tuple[np.ndarray, np.ndarray]], val_fraction: float,
                     seed: int) -> tuple[Split, Split, Split]:
    """Train/val from the normal TRAIN beats, test = the whole TEST file, all shuffled."""
    rng = np.random.default_rng(seed)
    (x_train, k_train), (x_test, k_test) = arrays["TRAIN"], arrays["TEST"]
    normal = rng.permutation(np.flatnonzero(k_train == NORMAL))
    n_val = int(round(val_fraction * len(normal)))
    if n_val < 1 or n_val >= len(normal):
        raise DataError(f"too few normal TRAIN beats ({len(normal)}) for val_fraction={val_fraction}")
    order = rng.permutation(len(x_test))
    return (_split(x_train, k_train, normal[n_val:]), _split(x_train, k_train, normal[:n_val]),
            _split(x_test, k_test, order))


def _split(x: np.ndarray, kind: np.ndarray, idx: np.ndarray) -> Split:
    """Build a Split of rows ``idx``, adding the feature axis."""
    return Split(x=x[idx, :, None], y=(kind[idx] != NORMAL).astype(np.int64), kind=kind[idx])


def _class_counts(kind: np.ndarray) -> dict[str, int]:
    """Count windows per kind as plain Python types."""
    names, counts = np.unique(kind, return_counts=True)
    return {str(n): int(c) for n, c in zip(names, counts)}
