"""Which run fits a data file (by the configs' ``data.path``): the hint for a CSV whose columns are not the run's."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


def configs_reading(data_file: str | Path) -> list[Path]:
    """The configs in ``configs/`` whose ``data.path`` is ``data_file`` (unreadable configs are skipped)."""
    found = []
    for config in sorted(Path("configs").glob("*.json")):
        try:
            path = json.loads(config.read_text(encoding="utf-8")).get("data", {}).get("path")
        except (OSError, ValueError, AttributeError):
            continue
        with contextlib.suppress(OSError):
            if isinstance(path, str) and os.path.samefile(path, data_file):
                found.append(config)
    return found


def trained_on(config: dict[str, Any]) -> str:
    """A run's data in words, from its saved config: ``data.name='converter'`` or ``data.path='x.csv'``."""
    data = config.get("data", {})
    where = f", data.path={json.dumps(data['path'])}" if isinstance(data.get("path"), str) else ""
    return f"data.name={json.dumps(data.get('name'))}{where}"
