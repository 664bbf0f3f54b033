"""Which CSV files a ``data.path`` names, and that they share one header.

``data.path`` is a file, a folder (its ``*.csv`` files, sorted by name, not its sub-folders),
a glob (``data/SKAB/valve1/*.csv``, sorted), or a list of these (in the order given). Each file
is one recording; a file named twice is read once.
"""
from __future__ import annotations

import glob
from pathlib import Path

from datasets.csv_header import header_text
from utils.core.errors import ConfigError, DataError
from utils.core.paths import unreadable_file

__all__ = ["check_same_header", "csv_paths"]

_GLOB_CHARS = frozenset("*?[")
_EXAMPLE = '"examples/converter_telemetry.csv", a folder of CSV files, or a glob such as "data/SKAB/valve1/*.csv"'


def csv_paths(path: str | list[str] | None) -> list[Path]:
    """The CSV files ``data.path`` names, in order, each once.

    Raises:
        ConfigError: no path, a file not found or unreadable, a folder or glob without CSV files.
    """
    if not path:
        raise ConfigError(f"data.path: required for the csv dataset: the CSV file(s) to read, e.g. {_EXAMPLE}")
    entries = [path] if isinstance(path, str) else list(path)
    files: list[Path] = []
    for entry in entries:
        files.extend(_files_of(str(entry)))
    return list(dict.fromkeys(files))


def _files_of(entry: str) -> list[Path]:
    """The files of one ``data.path`` entry: the file itself, a folder's ``*.csv``, a glob's matches."""
    if _GLOB_CHARS & set(entry):
        found = sorted(Path(p) for p in glob.glob(entry) if Path(p).is_file())
        if not found:
            raise ConfigError(f"data.path: the pattern {entry!r} matches no file (relative paths are relative to "
                              f"the current directory, {Path.cwd()})")
        return found
    target = Path(entry)
    if target.is_dir():
        found = sorted(p for p in target.glob("*.csv") if p.is_file())
        if not found:
            raise ConfigError(f"data.path: the folder {target} holds no *.csv file (sub-folders are not searched; "
                              f"give a glob such as \"{target}/*/*.csv\" for them)")
        return found
    problem = unreadable_file(target)
    if problem == "not found":
        raise ConfigError(f"data.path: file not found: {target} (relative paths are relative to the current "
                          f"directory, {Path.cwd()})")
    if problem is not None:
        raise ConfigError(f"data.path: {target} {problem}; give a CSV file")
    return [target]


def check_same_header(headers: dict[Path, list[str]]) -> None:
    """DataError naming the first file whose header differs from the first file's, and the columns that differ."""
    (first, expected), *rest = headers.items()
    for path, header in rest:
        if header == expected:
            continue
        have, want = set(header), set(expected)  # sets: headers may hold 100,000 columns
        missing = [c for c in expected if c not in have]
        extra = [c for c in header if c not in want]
        what = "; ".join(part for part in (f"it lacks {missing}" if missing else "",
                                           f"it has {extra} besides" if extra else "") if part)
        raise DataError(f"{path}: its header differs from that of {first} ({what or 'the columns are in another order'}"
                        f"); every file of data.path needs the same columns ({header_text(expected)})")
