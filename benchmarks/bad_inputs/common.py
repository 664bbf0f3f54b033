"""What every part of the bad-input sweep shares: the :class:`Case`, the constants, and the helpers that write files
and list the values a config key must refuse."""
from __future__ import annotations

import hashlib
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
ECG_TRAIN = ROOT.parent / "shared" / "data" / "ECG5000" / "ECG5000_TRAIN.txt"
CLASSES = ("config", "csv", "npy", "checkpoint", "output", "run_folder", "ecg5000")
OUTCOMES = ("answered", "traceback", "accepted", "hang", "other")
MAX_MESSAGE_LINES = 4
TINY = ["--set", "data.n_samples=200", "--set", "data.time_steps=25", "--set", "trainer.epochs=1",
        "--set", "trainer.progress_bar=false", "--set", "evaluation.make_plots=false"]
QUIET = ["--set", "trainer.epochs=1", "--set", "trainer.progress_bar=false", "--set", "evaluation.make_plots=false"]
FEATURES = ("voltage", "current", "temperature")


@dataclass
class Case:
    """One bad input: the ``main.py`` arguments, made ready by ``prepare`` just before it runs."""

    cls: str
    name: str
    argv: list[str]
    prepare: Callable[[], None] | None = None
    #: files and folders whose content must be the same after the run (hashed before and after)
    watch: list[Path] = field(default_factory=list)
    #: paths that must not exist after the run (e.g. the marker a malicious pickle would create)
    must_not_exist: list[Path] = field(default_factory=list)
    #: a command started first and held running while this case runs (a second run of a folder in use)
    background: list[str] | None = None
    background_ready: Callable[[], bool] | None = None
    timeout: float = 60.0
    #: address-space limit of the case's process (GiB): a case that reads without end fails instead of eating the
    #: shared machine's memory
    mem_gb: float = 8.0


# ----------------------------------------------------------------------------------------------- helpers
def tree_hash(path: Path) -> dict[str, str]:
    """sha256 of every file under ``path`` (or of ``path`` itself), lock files left out; absent: {}."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    out = {}
    for p in files:
        if p.name == ".lock":
            continue
        try:
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        except OSError as err:
            out[str(p)] = f"unreadable: {err}"
    return out


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def good_csv_rows(n: int = 400, label: bool = True, timestamp: bool = True) -> list[list[str]]:
    """A valid converter-telemetry-like table: header + n rows."""
    header = (["timestamp"] if timestamp else []) + list(FEATURES) + (["label"] if label else [])
    rows = [header]
    for i in range(n):
        row = [f"2024-05-01T{8 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}"] if timestamp else []
        row += [f"{48 + math.sin(i / 5):.3f}", f"{10 + math.cos(i / 7):.3f}", f"{40 + i / 100:.3f}"]
        if label:
            row.append("1" if 300 <= i % 400 < 310 else "0")
        rows.append(row)
    return rows


def to_csv(rows: list[list[str]], sep: str = ",", end: str = "\n") -> str:
    return end.join(sep.join(r) for r in rows) + end


def json_arg(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


def bad_values(hint: Any, default: Any) -> list[tuple[str, str]]:
    """(label, --set text) pairs that a key of this annotated type must refuse."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return _bounds(args[1:]) + bad_values(args[0], default)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        inner = [a for a in args if a is not type(None)]
        return bad_values(inner[0], default) if inner else []
    if origin is typing.Literal:
        return [("bogus literal", "bogus"), ("wrong case", str(args[0]).upper() if isinstance(args[0], str)
                                             else "x"), ("number", "3")]
    if origin is list:
        (item,) = args or (Any,)
        vals = [("dict not list", '{"a":1}'), ("string not list", "abc")]
        if typing.get_origin(item) is typing.Literal:
            vals.append(("unknown item", '["bogus"]'))
        elif item is str:
            vals.append(("number item", "[1]"))
        else:
            vals += [("empty list", "[]"), ("item zero", "[0]"), ("item text", '["x"]')]
        return vals
    if hint is bool:
        return [("string yes", "yes"), ("integer 1", "1")]
    if hint is int:
        return [("string", "eight"), ("float 1.5", "1.5"), ("boolean", "true"), ("NaN", "NaN")]
    if hint is float:
        return [("string", "x"), ("NaN", "NaN"), ("Infinity", "Infinity"), ("boolean", "true")]
    if hint is str:
        return [("number", "5"), ("list", "[1]"), ("object", '{"a":1}')]
    return [("object", '{"a":1}')]


def _bounds(metadata: tuple) -> list[tuple[str, str]]:
    out = []
    for m in metadata:
        for attr, label, delta in (("gt", "at gt bound", 0), ("ge", "below ge bound", -1), ("lt", "at lt bound", 0),
                                   ("le", "above le bound", 1)):
            bound = getattr(m, attr, None)
            if bound is not None:
                value = bound + delta if isinstance(bound, int) and delta else bound
                if attr == "ge" and isinstance(bound, float):
                    value = bound - 0.5
                out.append((f"{label} {value}", json.dumps(value)))
    return out
