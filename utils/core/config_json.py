"""Read a JSON config file and apply ``--set section.key=value`` overrides, refusing what JSON accepts silently
(a key given twice) or what cannot be a config (above :data:`MAX_CONFIG_BYTES`, a number of thousands of digits)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from utils.core.errors import ConfigError
from utils.core.paths import unreadable_file

#: A config is a small JSON object; a file larger than this (or a device that never ends, e.g. /dev/zero) is refused
#: before it is read into memory.
MAX_CONFIG_BYTES = 16 * 2**20


def read_json_config(path: str | Path) -> dict[str, Any]:
    """Parse a JSON object from ``path``; errors give file, line and column."""
    path = Path(path)
    problem = unreadable_file(path, allow_stream=True)  # python main.py <(...) reads a pipe
    if problem not in (None, "not found"):
        raise ConfigError(f"{path}: config file {problem}; expected a JSON file such as configs/vae_converter.json")
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: not a config file: more than {MAX_CONFIG_BYTES // 2**20} MiB; expected a small "
                              f"JSON object such as configs/vae_converter.json")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read config file ({err})") from None
    if not text.strip():
        raise ConfigError(f"{path}: config file is empty; expected a JSON object such as configs/vae_converter.json")
    try:
        raw = _parse(text, f"{path}: invalid JSON", twice=" (only one value can count)")
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top level, got {type(raw).__name__}")
    return raw


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``dotted.key=value`` override to ``raw`` in place."""
    key, sep, text = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. --set trainer.epochs=5")
    try:
        value = _parse(text, f"--set {key}", nested="value ")
    except json.JSONDecodeError:
        value = text
    node = raw
    for depth, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {item!r}: {'.'.join(parts[: depth + 1])} is not a section")
    node[parts[-1]] = value


def _parse(text: str, where: str, twice: str = "", nested: str = "") -> Any:
    """``json.loads`` of ``text`` refusing a key given twice; all but a JSONDecodeError as a ConfigError after
    ``where``."""
    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:  # json.loads would keep the last value silently
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ConfigError(f"{where}: key {json.dumps(key)} appears twice in one object{twice}; keep one")
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError:
        raise
    except ValueError as err:  # an integer of more digits than Python converts (4300)
        reason = (f"a number with more than {sys.get_int_max_str_digits()} digits; no config value is that large "
                  "(integers are at most 2**31 - 1)" if "digits" in str(err) else str(err))
        raise ConfigError(f"{where}: {reason}") from None
    except RecursionError:
        raise ConfigError(f"{where}: {nested}nested too deeply") from None
