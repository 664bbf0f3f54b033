"""ECG5000 heartbeats from the UCR archive: the ``ecg5000`` loader (file parsers: :mod:`datasets.ucr_files`).

5000 beats of 140 samples, 500 TRAIN and 4500 TEST; class 1 is a normal beat, classes 2..5 anomalies (kinds
``"class_2"`` .. ``"class_5"``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from datasets.splits import NORMAL, DataSplits, Split, checked_args, split_normal_only, take_split
from datasets.download import DownloadLimits, download_archive
from datasets.ucr_files import SUFFIXES, read_ucr
from utils.core.errors import DataError
from utils.core.registry import register_dataset
from utils.core.types import Fraction, PositiveFloat

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


def find_split_file(data_dir: Path, split: str) -> Path | None:
    """Return the first of ECG5000_{split}.txt, .ts, .arff in ``data_dir``, or None."""
    paths = (Path(data_dir) / f"ECG5000_{split.upper()}{suffix}" for suffix in SUFFIXES)
    return next((path for path in paths if path.is_file()), None)


@register_dataset("ecg5000")
@checked_args
def load_ecg5000(seed: int, data_dir: str = "data/ECG5000", protocol: Literal["official", "merged"] = "official",
                 val_fraction: Fraction = 0.2, test_fraction: Fraction = 0.2, download: bool = False,
                 url: str = DEFAULT_URL, sha256: str | None = None, progress: bool = True,
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
    if protocol == "official":
        splits = _official_splits(arrays, val_fraction, seed)
        notes.append(f"{int((arrays['TRAIN'][1] != NORMAL).sum())} TRAIN anomalies are not used")
    else:
        if files["TEST"] is None:
            notes.append(f"no ECG5000_TEST file in {folder}; the merged protocol used TRAIN alone")
        x = np.concatenate([pair[0] for pair in arrays.values()])
        kind = np.concatenate([pair[1] for pair in arrays.values()])
        splits = split_normal_only(x, kind, val_fraction, test_fraction, seed)
    info = {"dataset": "ecg5000", "protocol": protocol,
            "files": {split.lower(): (str(p) if p else None) for split, p in files.items()},
            "series_length": int(arrays["TRAIN"][0].shape[1]), "notes": notes}
    return DataSplits(*splits, feature_names=["ecg"], info=info)


def _read_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one split file: (N, T, 1) beats and their kind strings."""
    x, labels = read_ucr(path)
    unknown = sorted(set(np.unique(labels).tolist()) - set(LABELS))
    if unknown:
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
            raise DataError(f"{err}. {_offline_step(folder, found['TRAIN'], url)}") from None
        found = {split: find_split_file(folder, split) for split in SPLITS}
    required = SPLITS if protocol == "official" else ("TRAIN",)
    absent = [split for split in required if found[split] is None]
    if absent:
        raise DataError(_missing_message(folder, absent, protocol, found["TRAIN"]))
    return found


def _offline_step(folder: Path, train: Path | None, url: str) -> str:
    """The next step after a failed download: train on the TRAIN file alone, or fetch the zip by hand."""
    if train is not None:
        local = f"set data.download=false and data.protocol=merged to train on {train} alone"
    else:
        local = (f"put ECG5000_TRAIN.txt (or .ts/.arff) into {folder} and set data.download=false and "
                 "data.protocol=merged, which works on the TRAIN file alone")
    return f"Next step: {local}; or download {url} by hand and unzip it into {folder}"


def _missing_message(folder: Path, absent: list[str], protocol: str, train: Path | None) -> str:
    """Say which files are missing, where they were looked for and how to get them."""
    wanted = "; ".join(" or ".join(f"ECG5000_{s}{x}" for x in SUFFIXES) for s in absent)
    message = (f"ECG5000 data not found in {folder} (resolved: {folder.resolve()}): the {protocol} protocol "
               f"needs {wanted}. Set `data.download: true` in the config to fetch them, or download the "
               f"UCR archive ECG5000.zip ({DEFAULT_URL}) and unzip it into {folder}")
    if train is not None:
        return f"{message}; or set data.protocol=merged, which works on the TRAIN file alone ({train})"
    if protocol == "official":
        return f"{message} (the merged protocol, data.protocol=merged, needs ECG5000_TRAIN alone)"
    return message


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
    return (take_split(x_train, k_train, normal[n_val:]), take_split(x_train, k_train, normal[:n_val]),
            take_split(x_test, k_test, order))

