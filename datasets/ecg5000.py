"""ECG5000 heartbeats (UCR archive; 500 TRAIN, 4500 TEST beats of 140 samples; class 1 normal, kinds ``"class_2"``
.. ``"class_5"`` anomalies): the ``ecg5000`` loader and the UCR readers of ``.txt``/``.tsv`` (label first), ``.ts`` and
``.arff`` (label last) files: float32 (N, T) series, int64 (N,) labels, or a DataError naming file, line and field."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np

from datasets.csv_reading import beyond_float64, first_bad_value
from datasets.download import DownloadLimits, download_archive
from datasets.splits import NORMAL, DataSplits, checked_args, split_normal_only, take_split
from utils.core.errors import DataError
from utils.core.registry import register_dataset
from utils.core.types import Fraction, PositiveFloat, Sha256, UserPath

DEFAULT_URL = "https://www.timeseriesclassification.com/aeon-toolkit/ECG5000.zip"
TRAIN_TXT_SHA256 = "0d96aff193311a6dc6111bf0dbd2f7d2313987fbf7a1da4a383d92563876057b"
TRAIN_TXT_GITBLOB = "7f0d711c984c79616e09a430dbd2c5d89fed2416"
TRAIN_TS_GITBLOB = "30af38036519f907e4567b2ecf24edad86700a0a"  # the archive's other formats, for tests
TRAIN_ARFF_GITBLOB = "c089f63755f348005ba0477df6ec53d59975bafb"
DEFAULT_FILE_CHECKSUMS = {"ECG5000_TRAIN.txt": f"gitblob:{TRAIN_TXT_GITBLOB}",
                          "ECG5000_TEST.txt": "gitblob:305ae1c597012624060310dbc529484767b2b2e3"}
SPLITS = ("TRAIN", "TEST")
NORMAL_LABEL = 1
LABELS = (1, 2, 3, 4, 5)
_MAX_LABEL = 2**53  # whole numbers beyond this are not exact in float64


def find_split_file(data_dir: Path, split: str) -> Path | None:
    """The first of ECG5000_{split}.txt, .tsv, .ts, .arff in ``data_dir``, or None; a suffix in another case
    (``.TXT``, as :func:`read_ucr` reads it) counts too, the exact name first."""
    stem = f"ECG5000_{split.upper()}"
    files = [path for path in sorted(Path(data_dir).glob(f"{stem}.*"))
             if path.stem == stem and path.suffix.lower() in SUFFIXES and path.is_file()]
    return min(files, key=lambda path: (SUFFIXES.index(path.suffix.lower()), path.suffix != path.suffix.lower()),
               default=None)


@register_dataset("ecg5000")
@checked_args
def load_ecg5000(seed: int, data_dir: UserPath[str] = "data/ECG5000", protocol: Literal["official", "merged"] = "official",
                 val_fraction: Fraction = 0.2, test_fraction: Fraction = 0.2, download: bool = False,
                 url: str = DEFAULT_URL, sha256: Sha256 | None = None, progress: bool = True,
                 download_deadline_s: PositiveFloat = 600.0, download_max_mb: PositiveFloat = 200.0,
                 unzip_max_mb: PositiveFloat = 1024.0) -> DataSplits:
    """ECG5000 as (N, 140, 1) normal-only train/val splits and a mixed test split (keys: docs/configuration.md)."""
    folder = Path(data_dir)
    limits = DownloadLimits(download_deadline_s, download_max_mb, unzip_max_mb, key_prefix="data.")
    files = _locate_files(folder, protocol, download, (url, sha256, progress, limits))
    arrays = {split: _read_split(path) for split, path in files.items() if path is not None}
    if "TEST" in arrays and arrays["TEST"][0].shape[1] != arrays["TRAIN"][0].shape[1]:
        raise DataError(f"{files['TEST']}: series have {arrays['TEST'][0].shape[1]} values but those in "
                        f"{files['TRAIN']} have {arrays['TRAIN'][0].shape[1]}; both splits must match")
    notes: list[str] = []
    if protocol == "official":  # train/val from the normal TRAIN beats, test = the whole TEST file, all shuffled
        rng = np.random.default_rng(seed)
        (x_train, k_train), (x_test, k_test) = arrays["TRAIN"], arrays["TEST"]
        normal = rng.permutation(np.flatnonzero(k_train == NORMAL))
        n_val = int(round(val_fraction * len(normal)))
        if n_val < 1 or n_val >= len(normal):
            raise DataError(f"too few normal TRAIN beats ({len(normal)}) for val_fraction={val_fraction}")
        splits = (take_split(x_train, k_train, normal[n_val:]), take_split(x_train, k_train, normal[:n_val]),
                  take_split(x_test, k_test, rng.permutation(len(x_test))))
        notes.append(f"{int((arrays['TRAIN'][1] != NORMAL).sum())} TRAIN anomalies are not used")
    else:
        if files["TEST"] is None:
            notes.append(f"no ECG5000_TEST file in {folder}; the merged protocol used TRAIN alone")
        x, kind = (np.concatenate(parts) for parts in zip(*arrays.values()))
        splits = split_normal_only(x, kind, val_fraction, test_fraction, seed)
    info = {"dataset": "ecg5000", "protocol": protocol,
            "files": {split.lower(): (str(p) if p else None) for split, p in files.items()},
            "series_length": int(arrays["TRAIN"][0].shape[1]), "notes": notes}
    return DataSplits(*splits, feature_names=["ecg"], info=info)


def _read_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one split file: (N, T, 1) beats and their kind strings."""
    x, labels = read_ucr(path)
    if unknown := sorted(set(np.unique(labels).tolist()) - set(LABELS)):
        raise DataError(f"{path}: unexpected class labels {unknown}; ECG5000 has classes 1..5")
    kind = np.where(labels == NORMAL_LABEL, NORMAL, np.char.add("class_", labels.astype(str)))
    return x[:, :, None], kind.astype(str)


def _locate_files(folder: Path, protocol: str, download: bool,
                  fetch: tuple[str, str | None, bool, DownloadLimits]) -> dict[str, Path | None]:
    """Find (or download: ``fetch`` = url, sha256, progress, limits) the split files; DataError if one is missing."""
    if folder.exists() and not folder.is_dir():
        raise DataError(f"data.data_dir: {folder} is a file, not a folder; give the folder that holds (or will hold) "
                        "ECG5000_TRAIN.txt")
    found = {split: find_split_file(folder, split) for split in SPLITS}
    missing = [split for split in SPLITS if found[split] is None]
    if download and missing:
        url, sha256, progress, limits = fetch
        checksums = {f"ECG5000_{s}.txt": DEFAULT_FILE_CHECKSUMS[f"ECG5000_{s}.txt"] for s in missing}
        try:
            download_archive(url, folder, sha256, checksums, progress, limits)
        except DataError as err:
            if (train := found["TRAIN"]) is not None:
                local = f"set data.download=false and data.protocol=merged to train on {train} alone"
            else:
                local = (f"put ECG5000_TRAIN.txt (or .tsv/.ts/.arff) into {folder} and set data.download=false and "
                         "data.protocol=merged, which works on the TRAIN file alone")
            raise DataError(f"{err}. Next step: {local}; or download {url} by hand and unzip it into "
                            f"{folder}") from None
        found = {split: find_split_file(folder, split) for split in SPLITS}
    required = SPLITS if protocol == "official" else ("TRAIN",)
    if absent := [split for split in required if found[split] is None]:  # say where and how to get them
        wanted = "; ".join(" or ".join(f"ECG5000_{s}{x}" for x in SUFFIXES) for s in absent)
        message = (f"ECG5000 data not found in {folder} (resolved: {folder.resolve()}): the {protocol} protocol "
                   f"needs {wanted}. Set `data.download: true` in the config to fetch them, or download the "
                   f"UCR archive ECG5000.zip ({DEFAULT_URL}) and unzip it into {folder}")
        if (train := found["TRAIN"]) is not None:
            message += f"; or set data.protocol=merged, which works on the TRAIN file alone ({train})"
        elif protocol == "official":
            message += " (the merged protocol, data.protocol=merged, needs ECG5000_TRAIN alone)"
        raise DataError(message)
    return found


# ----- UCR files ---------------------------------------------------------------------------------
def read_ucr_txt(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a UCR ``.txt`` or ``.tsv`` file (whitespace-separated, label in column 0): ``(x (N, T), labels (N,))``."""
    path = Path(path)
    return _rows_to_arrays(*_parsed_rows(path, lambda no, text: text.split() if text else None), path, label_col=0)


def read_ucr_ts(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a univariate sktime ``.ts`` file (``#``/``@`` header, then ``v1,...,vT:label``): ``(x, labels)``."""
    path = Path(path)

    def row(no: int, text: str) -> list[str] | None:
        if not text or text[0] in "#@":
            return None
        values, sep, label = text.rpartition(":")
        if not sep or ":" in values:
            raise DataError(f"{path}: line {no}: expected one univariate series and its label as 'v1,...,vT:label', "
                            f"got {text[:60]!r}")
        return values.split(",") + [label]

    return _rows_to_arrays(*_parsed_rows(path, row), path, label_col=-1)


def read_ucr_arff(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a Weka ``.arff`` file (header up to ``@data``, then comma rows, label last): ``(x, labels)``."""
    path = Path(path)
    in_data = False

    def row(no: int, text: str) -> list[str] | None:
        nonlocal in_data
        if not text or text.startswith("%"):
            return None
        if in_data:
            return text.split(",")
        in_data = text.lower() == "@data"
        return None

    rows, line_nos = _parsed_rows(path, row)
    if not in_data:
        raise DataError(f"{path}: no '@data' line; expected an ARFF header ending in @data, "
                        "then one comma-separated row per series with the label last")
    return _rows_to_arrays(rows, line_nos, path, label_col=-1)


#: The UCR readers by file suffix, in the order :func:`find_split_file` prefers them.
READERS = {".txt": read_ucr_txt, ".tsv": read_ucr_txt, ".ts": read_ucr_ts, ".arff": read_ucr_arff}
SUFFIXES = tuple(READERS)


def read_ucr(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a UCR file, picking the parser from its suffix: float32 (N, T) series, int64 (N,) labels."""
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unknown file suffix {path.suffix!r}; valid suffixes: {', '.join(SUFFIXES)}")
    return reader(path)


def _parsed_rows(path: Path, parse: Callable[[int, str], list[str] | None]) -> tuple[list[list[str]], list[int]]:
    """The rows ``parse(1-based line number, stripped line)`` returns (None skips the line), with their line numbers."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file: {exc}") from exc
    try:
        text = raw.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line}: bytes that are not UTF-8 text ({exc.reason}); save the file as "
                        "UTF-8") from None
    parsed = [(fields, no) for no, line in enumerate(text.split("\n"), start=1)
              if (fields := parse(no, line.strip())) is not None]
    return [fields for fields, _ in parsed], [no for _, no in parsed]


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
    try:
        table = np.array(rows, dtype=np.float64)
    except ValueError:
        for row, no in zip(rows, line_nos):
            for col, token in enumerate(row, start=1):
                try:
                    float(token)
                except ValueError:
                    raise DataError(f"{path}: line {no}, field {col}: cannot read {token!r} "
                                    "as a number; expected a decimal number") from None
        raise DataError(f"{path}: holds text that cannot be read as numbers") from None
    labels = table[:, label_col]
    x = np.delete(table, label_col, axis=1)
    first_field = 2 if label_col == 0 else 1  # the file's field number of x[:, 0]
    bad = ~np.isfinite(x)
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        field = c + first_field
        where = f"{path}: line {line_nos[r]}, field {field}"
        if overflow := beyond_float64(rows[r][field - 1], float(x[r, c])):
            raise DataError(f"{where}: {overflow}")
        n_bad = int(bad.any(axis=1).sum())
        raise DataError(f"{where} holds {x[r, c]:g}, not a finite number ({n_bad} bad rows in all); clean or drop "
                        "these rows")
    found = first_bad_value(x)
    if found is not None:
        (r, c), what = found
        raise DataError(f"{path}: line {line_nos[r]}, field {c + first_field}: value {what}")
    bad = ~np.isfinite(labels) | (labels != np.round(labels)) | (np.abs(labels) > _MAX_LABEL)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "is too large for a class number" if np.abs(labels[i]) > _MAX_LABEL else "is not a whole number"
        raise DataError(f"{path}: line {line_nos[i]}: label {labels[i]:g} {what}")
    return x.astype(np.float32), labels.astype(np.int64)
