"""SKAB (Skoltech Anomaly Benchmark) water-pump recordings, the ``skab`` loader (docs/data.md), read by the ``csv``
loader; per file the first 400 rows train, taken as anomaly-free (``other/2.csv`` is labelled in rows 104..487).
Missing files are fetched from ``waico/SKAB`` at :data:`COMMIT` and checked against :data:`CHECKSUMS`."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from datasets.splits import DataSplits, checked_args
from datasets.csv_reading import DECIMAL_HINT, READ_DECIMAL_HINT, SEPARATOR_HINT
from datasets.csv_recordings import TEXT_HINT, load_csv
from datasets.download import DownloadLimits, download_file, file_checksum
from utils.core.errors import ConfigError, DataError
from utils.core.registry import register_dataset
from utils.core.types import Fraction, PositiveFloat, PositiveInt, TrainEnd, UserPath

COMMIT = "b2c0d46c2971dcbfe71e26087b6d231998bb91c2"
DEFAULT_URL = f"https://raw.githubusercontent.com/waico/SKAB/{COMMIT}/data"
ANOMALY_FREE = "anomaly-free/anomaly-free.csv"
EXPERIMENTS = ([f"valve1/{i}.csv" for i in range(16)] + [f"valve2/{i}.csv" for i in range(4)]
               + [f"other/{i}.csv" for i in range(1, 15)])
#: sha256 of each file at :data:`COMMIT` (paths relative to the repository's ``data/`` folder).
CHECKSUMS = {
    "anomaly-free/anomaly-free.csv": "7641a8742957100ef424dd97adfb3eeab27d4d180645fe2b3c49b7f7146ae9a6",
    "other/1.csv": "3beaf861bdfe9b4f4eff8e7567c1dd3f506fbd0ce667fc9399d04bd2dc70623d",
    "other/10.csv": "72683644f6f17689f619076a66a9ec02cbc0502bd669924c4c33951d1bdad9b0",
    "other/11.csv": "98a2fff3b6516205ae2e12f2dd30d7f08465fe4321a1bd5cf823396985ecb37b",
    "other/12.csv": "b0882efbcf2669223ae78bee61c9f10074a9b2375f0e86b8957ae5ce4aad1e72",
    "other/13.csv": "b3f1da02064d11234836a9fa1a2536bb0d3b6c6998ab60b0b71869b98e94d860",
    "other/14.csv": "c7f361e55397cc9efd4a76b6876111eda79b650d10aeb007342ca5972152eaef",
    "other/2.csv": "951c326bf36366fa7615b8f28d22f80b3878036069a690f42b3e223737a6a8d1",
    "other/3.csv": "f3c19a89f74f62a475c246b9263f161f7a734dd88304de803939cebaa55c7ebd",
    "other/4.csv": "56ca23f4eb61d1347d079eb9a35c60a59b8b64e160c00dd0c2ec69e0df0b2a4b",
    "other/5.csv": "7347b326df3a92c0810c69add0e5621939af7a1c1cb4755081d088e72d36920f",
    "other/6.csv": "eb8f05622a62c855040ea358b87be35fb1a4a3720ba0610569bab384db4b6e04",
    "other/7.csv": "1bee14f49bfc817ba2c335fb427baa71153d8f8ab52e72652f15f74e4b77daec",
    "other/8.csv": "12c138ed99c198e0a7ece886fe01bfd16bbdde206fad6c5d74322b6b9d6488d0",
    "other/9.csv": "11c4514b0bc706acff637fea6707ad9258ac878fe9dff3d0b11d2b618d94d8ea",
    "valve1/0.csv": "16af3f71313a23dd33d9b7b8065d836d05c3f9257588881cc7fbe07c076d9dc8",
    "valve1/1.csv": "fe4493bf805baef4e6dfb864094275d8cc2ea80a16b3735e2752b18b6aefd812",
    "valve1/10.csv": "ee16be8e4b870c779491e3d1dc9e0ecbfaf29eb013e032abff7a33f2cbbfe2ad",
    "valve1/11.csv": "89660fae4ed5c918db014409bbbc29f498fd99c7e956fab2620d18dea700a973",
    "valve1/12.csv": "90adfa9bc86d4556e6a4ce734436fd5685af79c189cd9828f8df75a7f468ce07",
    "valve1/13.csv": "d6cb6a97437215d3066a87e1fcc5fa4e68017629c043c5315920e3cf1060841c",
    "valve1/14.csv": "5f0bb9bc33c5e6c259263e32e25915c4d24c82b0a94554d48808626da05c1d71",
    "valve1/15.csv": "75cc86ab25d7091eee024739fa06d048753480d5d7d1507077231cab4f1b7a7e",
    "valve1/2.csv": "90492413469261886c8896c327241448df5da73fd7739cabfec8dd82de3c0ce4",
    "valve1/3.csv": "cb6afea108eddfd8447307e405f86bbb764b8d8e9130d7849a46e1303e19b8b2",
    "valve1/4.csv": "983aed9dc09991a57911091373c580e1b86d06aa983cd51678f108fd8d709654",
    "valve1/5.csv": "78974991ec87b7f9b9b6b2944f4b525468a9beb36c59b06cd7650d9a15eca14a",
    "valve1/6.csv": "97469c0e0c9c0e0ee5d30794f1f36c6785df5816a112a8b16c59637e8c894685",
    "valve1/7.csv": "ca2c9c6d6fa302c642acec6fbedac495bd12fececeee0a755d45a54e340e0f30",
    "valve1/8.csv": "0c4afb92248b5b35b4c9d734a91ed8318346901f04579074903730569e60416c",
    "valve1/9.csv": "2aa1ae1b2ff505caecda24802b877dc686924bbbeeb7e7db4faa261efb5ed5bd",
    "valve2/0.csv": "a6670e7a68c7c6ba62c649bd9d350633e80db624578e9529f2b736ced5e32bde",
    "valve2/1.csv": "b35d27f664eb0851ab73e5eb06633404c7eeaf532edff7e40c68eb9379f2012b",
    "valve2/2.csv": "2c3005cf28b88db715b7f4694e826ff252cba4dbb1eba679b040961f80477e60",
    "valve2/3.csv": "86927555d5c523e587d41500bd5dee4e2468289ec1b988ac17755aeae697d7f8",
}
TRAIN_ROWS = 400  # the benchmark's training part of each experiment file
ANOMALY_FREE_TRAIN_SHARE = 0.2
_LABELS = {"label_columns": ["anomaly"], "ignore_columns": ["changepoint"]}

logger = logging.getLogger("anomaly")


# stride 1: a training part is 400 rows, so every start (~240 windows per file, 8k in all) is still a small set
@register_dataset("skab")
@checked_args
def load_skab(seed: int, data_dir: UserPath[str] = "data/SKAB", download: bool = True,
              files: Literal["all", "anomaly-free"] | list[str] = "all", window_length: PositiveInt = 60,
              stride: PositiveInt = 1, eval_stride: PositiveInt = 1, train_end: TrainEnd | None = None,
              train_labels: Literal["exclude", "ignore"] = "ignore", val_fraction: Fraction = 0.25,
              normalize: Literal["none", "per_recording", "per_recording_whitened"] = "per_recording",
              url: str = DEFAULT_URL, progress: bool = True, download_deadline_s: PositiveFloat = 600.0) -> DataSplits:
    """SKAB recordings as :func:`datasets.csv_recordings.load_csv`'s pooled windows, each file cut where its training
    part ends, recordings named as in :data:`CHECKSUMS` (keys: docs/configuration.md)."""
    names = _file_names(files)
    folder = Path(data_dir)
    _locate(folder, names, download, url, progress, DownloadLimits(download_deadline_s, key_prefix="data."))
    labelled = names != [ANOMALY_FREE]
    if train_end is None:
        train_end = TRAIN_ROWS if labelled else ANOMALY_FREE_TRAIN_SHARE
    altered = [name for name in names if file_checksum(folder / name, "sha256") != CHECKSUMS[name]]  # not SKAB's
    try:
        data = load_csv(seed, path=[str(folder / name) for name in names], window_length=window_length,
                        stride=stride, eval_stride=eval_stride, timestamp_column="datetime", separator=";",
                        val_fraction=val_fraction, train_end=train_end, train_labels=train_labels, normalize=normalize,
                        **(_LABELS if labelled else {}))
    except DataError as err:
        said = str(err).replace("data.path", "data.files")  # the csv loader's key for what skab calls data.files
        if not altered:
            raise DataError(said) from None
        for hint in (SEPARATOR_HINT + DECIMAL_HINT, SEPARATOR_HINT, READ_DECIMAL_HINT, TEXT_HINT):  # keys skab has not
            said = said.replace(hint, "")
        raise DataError(f"{said}; {_altered_text(folder, altered)}") from None
    if altered:
        logger.warning("data: %s; the results are then not those of the published benchmark (unless only the "
                       "line endings changed)", _altered_text(folder, altered))
    for recording, info, name in zip(data.recordings, data.info["recordings"], names, strict=True):
        recording.name = info["name"] = name
    data.info.update(dataset="skab", data_dir=str(folder), commit=COMMIT, files=names)
    return data


def _file_names(files: str | list[str]) -> list[str]:
    """The files asked for, as :data:`CHECKSUMS` names them; ConfigError naming data.files otherwise."""
    if files == "all":
        return list(EXPERIMENTS)
    if files == "anomaly-free":
        return [ANOMALY_FREE]
    unknown = [name for name in files if name not in CHECKSUMS]
    if unknown or not files:
        raise ConfigError(f"data.files: {unknown or files} names no SKAB file; give \"all\", \"anomaly-free\" or "
                          f"a list of {', '.join(EXPERIMENTS[:3])}, ... (valve1/0..15, valve2/0..3, other/1..14)")
    if ANOMALY_FREE in files and len(files) > 1:
        raise ConfigError(f"data.files: {ANOMALY_FREE} has no label columns, unlike the experiment files; run it "
                          "alone (data.files=\"anomaly-free\")")
    return list(dict.fromkeys(files))


def _locate(folder: Path, names: list[str], download: bool, url: str, progress: bool,
            limits: DownloadLimits) -> None:
    """Download the missing files (``download``), else DataError naming them and how to get them."""
    if folder.exists() and not folder.is_dir():
        raise DataError(f"data.data_dir: {folder} is a file, not a folder; give the folder that holds (or will "
                        "hold) SKAB's valve1/, valve2/, other/ and anomaly-free/")
    missing = [name for name in names if not (folder / name).is_file()]
    if missing and not download:
        shown = ", ".join(missing[:4]) + (", ..." if len(missing) > 4 else "")
        raise DataError(f"SKAB data not found in {folder} (resolved: {folder.resolve()}): {len(missing)} of the "
                        f"{len(names)} files are missing ({shown}). Set data.download=true to fetch them, or copy "
                        f"SKAB's data/ folder (commit {COMMIT}) into {folder}")
    for i, name in enumerate(missing):
        try:
            download_file(f"{url.rstrip('/')}/{name}", folder / name, f"sha256:{CHECKSUMS[name]}", progress, limits)
        except DataError as err:
            left = len(missing) - i
            retry = (f"or make {folder} writable, or set data.data_dir to a folder you can write to"
                     if isinstance(err.__cause__, OSError)  # staging or installing failed: the folder, not the network
                     else f"or check data.url ({url}) and run again once the network is back")
            raise DataError(f"{err}. Next step: copy SKAB's data/ folder (github.com/waico/SKAB, commit {COMMIT}) "
                            f"into {folder} and set data.download=false ({left} of the {len(names)} files are still "
                            f"missing; the ones fetched are kept), {retry}") from None


def _altered_text(folder: Path, altered: list[str]) -> str:
    """What to do about files that differ from SKAB's."""
    shown = ", ".join(altered[:4]) + (", ..." if len(altered) > 4 else "")
    return (f"{len(altered)} file(s) in {folder} differ from SKAB's at commit {COMMIT} (sha256: {shown}): delete "
            "them and run with data.download=true to restore SKAB's, or read your own version with the csv loader "
            "(data.name \"csv\", which takes data.separator)")
