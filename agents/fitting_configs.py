"""Which run fits a data file: the hint of a scoring command given a CSV whose columns are not the run's.

Configs name their data file in ``data.path`` (a CSV run); a file read by such a config is scored by the
run that config trains. The shipped configs live in ``configs/`` of the folder the commands run from.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CONFIG_FOLDER = Path("configs")


def configs_reading(data_file: str | Path, folder: Path = CONFIG_FOLDER) -> list[Path]:
    """The configs in ``folder`` whose ``data.path`` is ``data_file`` (unreadable configs are skipped)."""
    found = []
    for config in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        path = _data_path(config)
        if path is not None and _same_file(path, data_file):
            found.append(config)
    return found


def trained_on(config: dict[str, Any]) -> str:
    """A run's data in words, from its saved config: ``data.name='converter'`` or ``data.path='x.csv'``."""
    data = config.get("data", {})
    where = f", data.path={json.dumps(data['path'])}" if isinstance(data.get("path"), str) else ""
    return f"data.name={json.dumps(data.get('name'))}{where}"


def _data_path(config: Path) -> str | None:
    try:
        path = json.loads(config.read_text(encoding="utf-8")).get("data", {}).get("path")
    except (OSError, ValueError, AttributeError):
        return None
    return path if isinstance(path, str) else None


def _same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
