"""How does ``python main.py`` answer hostile and mistaken input? (issue 12's closing figures)

Builds, in a temporary folder, well over 150 bad inputs in seven classes (config and ``--set`` values, CSV data,
NPY score input, damaged checkpoints, output paths, run-folder and resume misuse, the ECG5000 dataset offline),
runs each through ``python main.py ...`` in a fresh process with a timeout and classifies the outcome:

- **answered**: exit 2, no ``Traceback`` in stderr, a message of at most a few lines, nothing of the user's changed;
- **traceback**: any exit with a Python traceback in stderr;
- **accepted**: exit 0 for an input that should have been refused, or data silently changed (an input file or a
  run-folder file modified, code of a pickle run);
- **hang**: the timeout passed;
- **other**: anything else (exit 1 without a traceback, a long message, a signal...).

Every case is meant to be refused. Each row is printed as soon as it is measured, then the counts per class and
overall; ``--out`` writes them as JSON.

    OMP_NUM_THREADS=1 python benchmarks/bad_input_sweep.py --jobs 2 --out sweep.json
    python benchmarks/bad_input_sweep.py --only csv --list          # the case names of one class
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import typing
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
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


# ----------------------------------------------------------------------------------------------- the cases
class Builder:
    """Makes every case's files under ``tmp``; a case's ``prepare`` makes what needs the finished base run."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.exp = tmp / "exp"
        self.base = self.exp / "base"
        self.files = tmp / "files"
        self.cases: list[Case] = []
        self._n = 0

    # the base run every score/export/resume case reuses
    def base_argv(self) -> list[str]:
        return ["configs/vae_converter.json", *TINY, "--set", f"experiments_dir={self.exp}", "--set", "exp_name=base"]

    def run_of(self, exp_name: str) -> list[str]:
        return ["configs/vae_converter.json", *TINY, "--set", f"experiments_dir={self.exp}",
                "--set", f"exp_name={exp_name}"]

    def new_exp(self) -> str:
        self._n += 1
        return f"c{self._n:03d}"

    def add(self, cls: str, name: str, argv: list[str], **kw: Any) -> None:
        self.cases.append(Case(cls, name, argv, **kw))

    def build(self) -> list[Case]:
        self.files.mkdir(parents=True, exist_ok=True)
        self.exp.mkdir(parents=True, exist_ok=True)
        self.config_cases()
        self.csv_cases()
        self.npy_cases()
        self.checkpoint_cases()
        self.output_cases()
        self.run_folder_cases()
        self.ecg_cases()
        names = [(c.cls, c.name) for c in self.cases]
        assert len(names) == len(set(names)), "duplicate case names"
        return self.cases

    # ---- 1. config files and --set values
    def component_bases(self) -> dict[tuple[str, str], tuple[str, list[str]]]:
        csv_path = write(self.files / "cfg_good.csv", to_csv(good_csv_rows()))
        csv_cfg = ["configs/example_csv.json", "--set", f"data.path={csv_path}", "--set", "data.window_length=10",
                   "--set", "data.stride=10", *QUIET]
        ecg_cfg = ["configs/vae_ecg5000.json", "--set", f"data.data_dir={ECG_TRAIN.parent}",
                   "--set", "data.protocol=merged", "--set", "data.download=false", *QUIET]
        return {
            ("data", "converter"): ("configs/vae_converter.json", TINY),
            ("data", "csv"): (csv_cfg[0], csv_cfg[1:]),
            ("data", "ecg5000"): (ecg_cfg[0], ecg_cfg[1:]),
            ("model", "vae"): ("configs/vae_converter.json", TINY),
            ("model", "recurrent_ae"): ("configs/lstm_converter.json", TINY),
            ("model", "conv_ae"): ("configs/conv_ae_converter.json", TINY),
            ("loss", "vae"): ("configs/vae_converter.json", TINY),
        }

    def config_cases(self) -> None:
        sys.path.insert(0, str(ROOT))
        import agents  # noqa: F401  (fills the registries)
        from utils.core.config import EvaluationConfig, TrainerConfig, config_params
        from utils.core.registry import DATASETS, LOSSES, MODELS

        registries = {"data": DATASETS, "model": MODELS, "loss": LOSSES}

        def cfg_case(name: str, config: str, extra: list[str], sets: list[str]) -> None:
            argv = [config, *extra, "--set", f"experiments_dir={self.exp}", "--set", f"exp_name={self.new_exp()}",
                    *[a for s in sets for a in ("--set", s)]]  # the case's own values last: they win
            self.add("config", name, argv)

        for (section, comp), (config, extra) in self.component_bases().items():
            target = registries[section].get(comp)
            for key, (hint, default) in config_params(target).items():
                if comp == "ecg5000" and key in ("url", "sha256", "progress", "download_deadline_s",
                                                 "download_max_mb", "unzip_max_mb"):
                    extra_sets = ["data.download=true"]
                else:
                    extra_sets = []
                seen = set()
                for label, text in bad_values(hint, default)[: 1 if section == "data" else 2]:
                    if text in seen:
                        continue
                    seen.add(text)
                    cfg_case(f"{section}.{comp}.{key} {label} ({text})", config, extra, [*extra_sets,
                                                                                          f"{section}.{key}={text}"])
        for section, schema in (("trainer", TrainerConfig), ("evaluation", EvaluationConfig)):
            for key, fld in schema.model_fields.items():
                hint = fld.annotation
                if fld.metadata:
                    hint = typing.Annotated[(hint, *fld.metadata)]
                for label, text in bad_values(hint, fld.default)[:1]:
                    cfg_case(f"{section}.{key} {label} ({text})", "configs/vae_converter.json", TINY,
                             [f"{section}.{key}={text}"])
        base = "configs/vae_converter.json"
        for label, sets in [
            ("seed negative", ["seed=-1"]), ("seed 2**32", ["seed=4294967296"]), ("seed float", ["seed=1.0"]),
            ("seed huge 1e400", ["seed=1e400"]), ("device tpu", ["device=tpu"]), ("device cuda without GPU", ["device=cuda"]),
            ("exp_name with slash", ["exp_name=../escape"]), ("exp_name unicode", ["exp_name=r\u00e9sum\u00e9"]),
            ("exp_name empty", ["exp_name="]), ("exp_name 200 chars", ["exp_name=" + "a" * 200]),
            ("agent unknown", ["agent=vea"]), ("agent as list", ["agent=[\"vae\"]"]),
            ("data section a list", ["data=[1,2]"]), ("model section a string", ["model=vae"]),
            ("loss section null", ["loss=null"]), ("trainer section a number", ["trainer=5"]),
            ("evaluation section a list", ["evaluation=[]"]), ("section nested in key", ["trainer.epochs.x=1"]),
            ("unknown top-level key", ["epochs=5"]), ("unknown section", ["optimizer.lr=1"]),
            ("data.name null", ["data.name=null"]), ("model.name number", ["model.name=5"]),
            ("loss mse with vae model keys", ["loss.name=mse"]), ("loss vae with lstm", ["model.name=recurrent_ae"]),
            ("scores latent for lstm", ["model.name=recurrent_ae", "loss.name=mse"]),
            ("scores unknown", ["evaluation.scores=[\"bogus\"]"]), ("scores twice", ["evaluation.scores=[\"reconstruction\",\"reconstruction\"]"]),
            ("scores empty", ["evaluation.scores=[]"]), ("baselines twice", ["evaluation.baselines=[\"knn\",\"knn\"]"]),
            ("percentile and rate disagree", ["evaluation.threshold_percentile=90"]),
            ("huge integer 1e30", ["trainer.batch_size=1000000000000000000000000000000"]),
            ("huge float 1e308*10", ["trainer.learning_rate=1e309"]), ("negative zero epochs", ["trainer.epochs=-0"]),
            ("--set empty key", ["=5"]), ("--set no equals", ["trainer.epochs"]), ("--set deep nesting", ["a.b.c.d.e.f=1"]),
            ("--set value nested 60000 deep", ["trainer.epochs=" + "[" * 60000 + "]" * 60000]),  # < 128 KiB
            ("model too large for memory", ["model.hidden_sizes=[100000000]"]),
            ("data too large for memory", ["data.n_samples=2000000000"]),
        ]:
            cfg_case(f"top {label}", base, TINY, sets)
        cfg_case("top conv_ae with windows of 1 step", "configs/conv_ae_converter.json", TINY, ["data.time_steps=1"])
        cfg_case("top lstm with windows of 1 step", "configs/lstm_converter.json", TINY, ["data.time_steps=1"])
        cfg_case("--set unicode key", base, TINY, ["trainer.\u00e9pochs=5"])
        # the config file itself
        f = self.files
        texts = {
            "file NaN literal": '{"exp_name":"x","agent":"vae","seed":NaN,"data":{"name":"converter"},"model":{"name":"vae"},"loss":{"name":"vae"}}',
            "file Infinity literal in lr": '{"exp_name":"x","agent":"vae","data":{"name":"converter"},"model":{"name":"vae"},"loss":{"name":"vae"},"trainer":{"learning_rate":Infinity}}',
            "file duplicate keys (latent_dim 2 and 3)": '{"exp_name":"dup","agent":"vae","data":{"name":"converter"},"model":{"name":"vae","latent_dim":2,"latent_dim":3},"loss":{"name":"vae"}}',
            "file top-level list": '[{"exp_name":"x"}]',
            "file top-level null": "null",
            "file nested 100000 deep": "[" * 100000 + "]" * 100000,
            "file trailing garbage": '{"exp_name":"x"} trailing',
            "file missing required keys": '{"exp_name":"x"}',
            "file only whitespace": "  \n\t ",
            "file js comment": '// my config\n{"exp_name":"x"}',
            "file trailing comma": '{"exp_name":"x","agent":"vae",}',
            "file single quotes": "{'exp_name':'x'}",
            "file unicode exp_name": '{"exp_name":"\u5b9f\u9a13","agent":"vae","data":{"name":"converter"},"model":{"name":"vae"},"loss":{"name":"vae"}}',
            "file huge number": '{"exp_name":"x","agent":"vae","seed":' + "9" * 5000 + ',"data":{"name":"converter"},"model":{"name":"vae"},"loss":{"name":"vae"}}',
        }
        for label, text in texts.items():
            path = write(f / f"cfg_{len(self.cases)}.json", text)
            self.add("config", label, [str(path), *TINY, "--set", f"experiments_dir={self.exp}"], watch=[path])
        for label, data in {"file UTF-16": '{"exp_name":"x"}'.encode("utf-16"),
                            "file latin-1 bytes": b'{"exp_name":"r\xe9sum\xe9"}',
                            "file binary garbage": bytes(range(256)) * 4}.items():
            path = write(f / f"cfg_{len(self.cases)}.json", data)
            self.add("config", label, [str(path), "--set", f"experiments_dir={self.exp}"], watch=[path])
        self.add("config", "file is a folder", [str(f), "--set", f"experiments_dir={self.exp}"])
        self.add("config", "file /dev/zero (endless)", ["/dev/zero"], mem_gb=3)

    # ---- 2. CSV data: the csv dataset and --mode score
    def csv_variants(self) -> dict[str, bytes | str]:
        rows = good_csv_rows()
        body = to_csv(rows)
        v: dict[str, bytes | str] = {}
        r = [list(x) for x in rows]; r[5] = r[5][:-1]; v["row with a missing field"] = to_csv(r)
        r = [list(x) for x in rows]; r[9].append("7"); v["row with an extra field"] = to_csv(r)
        v["decimal commas"] = to_csv([rows[0]] + [[c.replace(".", ",") for c in x] for x in rows[1:]])
        v["semicolon, decimal commas"] = to_csv([rows[0]] + [[c.replace(".", ",") for c in x] for x in rows[1:]], ";")
        v["tab separated"] = to_csv(rows, "\t")
        v["pipe separated"] = to_csv(rows, "|")
        r = [list(x) for x in rows]; r[11][1] = '"47,9"'; v["quoted decimal comma"] = to_csv(r)
        r = [list(x) for x in rows]; r[12][1] = '"48.1'; v["unterminated quote"] = to_csv(r)
        r = [list(x) for x in rows]; r[12][1] = '"48\n.1"'; v["quoted newline in a number"] = to_csv(r)
        v["empty file"] = ""
        v["header only"] = to_csv(rows[:1])
        v["header only with BOM"] = "\ufeff" + to_csv(rows[:1])
        v["two BOMs"] = "\ufeff\ufeff" + body
        v["UTF-16 LE with BOM"] = body.encode("utf-16")
        v["UTF-16 BE without BOM"] = body.encode("utf-16-be")
        v["UTF-32"] = body.encode("utf-32")
        v["latin-1 byte in a value"] = body.encode() .replace(b"41.58", b"41.5\xe9", 1) + b"" if False else \
            to_csv(rows[:20]).encode() + b"2024-05-01T09:00:00,48\xb0,1,1,0\n" + to_csv(rows[21:]).encode()
        r = [list(x) for x in rows]; r[0][2] = "voltage"; v["duplicate column"] = to_csv(r)
        r = [list(x) for x in rows]; r[0][1] = ""; v["empty column name"] = to_csv(r)
        r = [list(x) for x in rows]; r[31][1] = "1e39"; v["value 1e39"] = to_csv(r)
        r = [list(x) for x in rows]; r[31][1] = "-3.5e38"; v["value -3.5e38"] = to_csv(r)
        r = [list(x) for x in rows]; r[32][1] = "NaN"; v["NaN value"] = to_csv(r)
        r = [list(x) for x in rows]; r[33][1] = "inf"; v["inf value"] = to_csv(r)
        r = [list(x) for x in rows]; r[33][3] = "-Infinity"; v["-Infinity value"] = to_csv(r)
        r = [list(x) for x in rows]; r[34][2] = ""; v["empty cell"] = to_csv(r)
        r = [list(x) for x in rows]; r[34][2] = " "; v["blank-space cell"] = to_csv(r)
        r = [list(x) for x in rows]; r[35][2] = "0x1A"; v["hex value"] = to_csv(r)
        r = [list(x) for x in rows]; r[35][2] = "1.2.3"; v["two decimal points"] = to_csv(r)
        r = [list(x) for x in rows]; r[35][2] = "--5"; v["double minus"] = to_csv(r)
        r = [list(x) for x in rows]; r[35][2] = "5 V"; v["value with a unit"] = to_csv(r)
        r = [list(x) for x in rows]; r[36][1] = "True"; v["boolean text value"] = to_csv(r)
        r = [list(x) for x in rows]; r[40][0] = "2024-05-01 08:00:39"; v["timestamps mixed format"] = to_csv(r)
        r = [list(x) for x in rows]; r[40][0], r[41][0] = r[41][0], r[40][0]; v["timestamps unsorted"] = to_csv(r)
        r = [list(x) for x in rows]; r[40][0] = "NaT"; v["timestamp NaT"] = to_csv(r)
        r = [list(x) for x in rows]; r[40][0] = "2024-02-30T08:00:00"; v["timestamp Feb 30"] = to_csv(r)
        r = [list(x) for x in rows]; r[40][0] = "yesterday"; v["timestamp text"] = to_csv(r)
        r = [list(x) for x in rows]; r[40][0] = "2024-05-01T08:00:39+02:00"; v["timestamp with offset in naive column"] = to_csv(r)
        r = [list(x) for x in rows]; r[45].append("x" * 2_000_000); v["very long line 2M chars"] = to_csv(r)
        r = [list(x) for x in rows]; r[46] = ["\x00"] * 5; v["NUL bytes row"] = to_csv(r)
        v["only blank lines"] = "\n\n\n"
        r = [list(x) for x in rows]; r[0][0] = "time stamp"; v["header renamed timestamp"] = to_csv(r)
        v["binary garbage"] = bytes(range(256)) * 64
        v["gzip file named .csv"] = __import__("gzip").compress(body.encode())
        return v

    def csv_cases(self) -> None:
        f = self.files / "csv"
        variants = self.csv_variants()
        for i, (label, data) in enumerate(variants.items()):
            path = write(f / f"train_{i:02d}.csv", data)
            argv = ["configs/example_csv.json", "--set", f"data.path={path}", "--set", "data.window_length=10",
                    *QUIET, "--set", f"experiments_dir={self.exp}", "--set", f"exp_name={self.new_exp()}"]
            self.add("csv", f"train: {label}", argv, watch=[path])
        # labels: per the README, empty/0/normal are normal and anything else anomalous, so only these are refusals
        rows = good_csv_rows()
        for label, mutate, sets in [
            ("every row anomalous (no normal to train on)", lambda r: [x[:-1] + ["1"] for x in r[1:]], []),
            ("label column named but absent", None, ["data.label_column=status"]),
            ("timestamp column named but absent", None, ["data.timestamp_column=time"]),
            ("label column = timestamp column", None, ["data.label_column=timestamp"]),
            ("feature column absent", None, ["data.feature_columns=[\"voltage\",\"pressure\"]"]),
            ("feature column = label column", None, ["data.feature_columns=[\"voltage\",\"label\"]"]),
            ("feature columns empty list", None, ["data.feature_columns=[]"]),
            ("feature column twice", None, ["data.feature_columns=[\"voltage\",\"voltage\"]"]),
            ("window longer than the file", None, ["data.window_length=100000"]),
            ("path missing", None, ["data.path=/nonexistent/x.csv"]),
            ("path is a folder", None, [f"data.path={f}"]),
            ("path null", None, ["data.path=null"]),
            ("path /dev/zero", None, ["data.path=/dev/zero"]),
            ("fewer rows than 3 windows", lambda r: r[1:16], []),
            ("text label 'nan' on all rows", lambda r: [x[:-1] + ["nan"] for x in r[1:]], []),
        ]:
            body = rows[1:] if mutate is None else mutate(rows)
            path = write(f / f"lab_{len(self.cases)}.csv", to_csv([rows[0]] + body))
            argv = ["configs/example_csv.json", "--set", f"data.path={path}", "--set", "data.window_length=10",
                    *QUIET, *[a for s in sets for a in ("--set", s)], "--set", f"experiments_dir={self.exp}",
                    "--set", f"exp_name={self.new_exp()}"]
            self.add("csv", f"train: {label}", argv, watch=[path])
        # --mode score input: the same damage on a file with the base run's features
        score_rows = good_csv_rows(100, label=False, timestamp=False)
        srows = [list(x) for x in score_rows]
        score_variants = {
            "missing column": to_csv([x[:2] for x in srows]),
            "unexpected column": to_csv([x + (["pressure"] if i == 0 else ["1"]) for i, x in enumerate(srows)]),
            "decimal commas": to_csv([srows[0]] + [[c.replace(".", ",") for c in x] for x in srows[1:]]),
            "semicolon separated": to_csv(srows, ";"),
            "NaN value": to_csv(srows[:10] + [["NaN", "1", "1"]] + srows[11:]),
            "inf value": to_csv(srows[:10] + [["1", "inf", "1"]] + srows[11:]),
            "value 1e39": to_csv(srows[:10] + [["1", "1", "1e39"]] + srows[11:]),
            "empty file": "",
            "header only": to_csv(srows[:1]),
            "fewer rows than one window": to_csv(srows[:10]),
            "UTF-16": to_csv(srows).encode("utf-16"),
            "duplicate column": to_csv([["voltage", "voltage", "temperature"]] + srows[1:]),
            "row with extra field": to_csv(srows[:5] + [srows[5] + ["9"]] + srows[6:]),
            "text value": to_csv(srows[:7] + [["x7", "1", "1"]] + srows[8:]),
            "very long line": to_csv(srows[:7] + [["1", "1", "1" * 1_100_000]] + srows[8:]),
        }
        for i, (label, data) in enumerate(score_variants.items()):
            path = write(f / f"score_{i:02d}.csv", data)
            out = f / f"score_{i:02d}_out.csv"
            self.add("csv", f"score: {label}", [*self.score_argv(), "--input", str(path), "--output", str(out)],
                     watch=[path, self.base])
        for label, stride in (("stride 0", "0"), ("stride -5", "-5"), ("stride huge", "99999999999999999999")):
            path = write(f / f"score_stride_{label[-2:].strip()}.csv", to_csv(srows))
            self.add("csv", f"score: {label}", [*self.score_argv(), "--input", str(path), "--output",
                                                str(f / f"o_{len(self.cases)}.csv"), "--stride", stride],
                     watch=[path, self.base])

    def score_argv(self) -> list[str]:
        return ["configs/vae_converter.json", *TINY, "--set", f"experiments_dir={self.exp}", "--set", "exp_name=base",
                "--mode", "score"]

    # ---- 3. NPY score input
    def npy_cases(self) -> None:
        import numpy as np

        f = self.files / "npy"
        f.mkdir(parents=True, exist_ok=True)
        good = np.random.default_rng(0).normal(size=(100, 3))
        arrays: dict[str, Any] = {
            "bool": good > 0,
            "complex": good.astype(np.complex128),
            "strings": good.astype(str),
            "bytes": good.astype("S8"),
            "datetime64": np.zeros((100, 3), dtype="datetime64[s]"),
            "structured": np.zeros(100, dtype=[("voltage", "f8"), ("current", "f8"), ("temperature", "f8")]),
            "1-d": good[:, 0],
            "4-d": good.reshape(1, 1, 100, 3),
            "0-d": np.array(1.0),
            "wrong F (2)": good[:, :2],
            "wrong F (4)": np.concatenate([good, good[:, :1]], axis=1),
            "wrong T windows (10, 10, 3)": good[:100].reshape(10, 10, 3),
            "empty (0, 3)": np.zeros((0, 3)),
            "empty (0, 25, 3)": np.zeros((0, 25, 3)),
            "too few rows (5, 3)": good[:5],
            "NaN": np.where(np.arange(300).reshape(100, 3) == 41, np.nan, good),
            "inf": np.where(np.arange(300).reshape(100, 3) == 7, np.inf, good),
            "1e39 float64": np.where(np.arange(300).reshape(100, 3) == 7, 1e39, good),
            "big-endian >f8 with a NaN": np.where(np.arange(300).reshape(100, 3) == 3, np.nan, good).astype(">f8"),
            "T=0 windows (4, 0, 3)": np.zeros((4, 0, 3)),
        }
        for label, arr in arrays.items():
            path = f / f"a_{len(self.cases)}.npy"
            np.save(path, arr)
            self.add("npy", label, [*self.score_argv(), "--input", str(path), "--output", str(path) + ".out.csv"],
                     watch=[path, self.base])
        obj = np.empty((100, 3), dtype=object)
        obj[:] = 1.0
        for label, writer in [
            ("object array (needs pickle)", lambda p: np.save(p, obj, allow_pickle=True)),
            ("pickle renamed .npy", lambda p: p.write_bytes(__import__("pickle").dumps(good))),
            ("npz renamed .npy", lambda p: np.savez(open(p, "wb"), a=good)),
            ("truncated npy", lambda p: (np.save(p, good), p.write_bytes(p.read_bytes()[:90]))),
            ("truncated data part", lambda p: (np.save(p, good), p.write_bytes(p.read_bytes()[:-100]))),
            ("header claims 10^12 rows", lambda p: p.write_bytes(
                _npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 3), }") + b"\0" * 64)),
            ("header with negative shape", lambda p: p.write_bytes(
                _npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (-1, 3), }") + b"\0" * 64)),
            ("header with code in descr", lambda p: p.write_bytes(
                _npy_header("{'descr': __import__('os').system('touch PWNED'), 'fortran_order': False, 'shape': (1, 3), }")
                + b"\0" * 64)),
            ("empty file", lambda p: p.write_bytes(b"")),
            ("a CSV named .npy", lambda p: p.write_text("voltage,current,temperature\n1,2,3\n")),
        ]:
            path = f / f"w_{len(self.cases)}.npy"
            writer(path)
            self.add("npy", label, [*self.score_argv(), "--input", str(path), "--output", str(path) + ".out.csv"],
                     watch=[path, self.base], must_not_exist=[ROOT / "PWNED", Path.cwd() / "PWNED"])
        path = f / "missing.npy"
        self.add("npy", "input missing", [*self.score_argv(), "--input", str(path), "--output", str(f / "m.csv")])
        self.add("npy", "input is a folder", [*self.score_argv(), "--input", str(f), "--output", str(f / "d.csv")])
        self.add("npy", "input .txt extension", [*self.score_argv(), "--input", str(write(f / "x.txt", "1,2,3\n")),
                                                 "--output", str(f / "t.csv")])

    # ---- 4. damaged checkpoints (each case its own copy of the base run)
    def checkpoint_cases(self) -> None:
        def damage(exp_name: str, fname: str, how: Callable[[Path], None]) -> Callable[[], None]:
            def prepare() -> None:
                run = self.exp / exp_name
                shutil.copytree(self.base, run, ignore=shutil.ignore_patterns(".lock"))
                how(run / "checkpoints" / fname)
            return prepare

        def truncate(size: int | float) -> Callable[[Path], None]:
            def how(p: Path) -> None:
                data = p.read_bytes()
                n = int(size * len(data)) if isinstance(size, float) else size
                p.write_bytes(data[:n])
            return how

        def flip(offset_frac: float, n: int = 16) -> Callable[[Path], None]:
            def how(p: Path) -> None:
                data = bytearray(p.read_bytes())
                at = int(offset_frac * len(data))
                for i in range(at, min(at + n, len(data))):
                    data[i] ^= 0xFF
                p.write_bytes(bytes(data))
            return how

        def edit(fn: Callable[[dict], Any]) -> Callable[[Path], None]:
            def how(p: Path) -> None:
                import torch
                ck = torch.load(p, weights_only=True)
                out = fn(ck)
                torch.save(ck if out is None else out, p)
            return how

        marker = self.tmp / "PWNED_CKPT"

        def pickle_code(p: Path) -> None:
            import pickle

            class Evil:
                def __reduce__(self):
                    return (os.system, (f"touch {marker}",))
            p.write_bytes(pickle.dumps({"model": Evil(), "epoch": 1}))

        def torch_code(p: Path) -> None:
            import torch

            class Evil:
                def __reduce__(self):
                    return (os.system, (f"touch {marker}",))
            torch.save({"model": Evil(), "epoch": 1, "global_step": 1, "optimizer": {}}, p)

        first_weight = lambda ck: next(iter(ck["model"]))  # noqa: E731
        edits: list[tuple[str, Callable[[Path], None]]] = [
            ("truncated to 0 bytes", truncate(0)), ("truncated to 10 bytes", truncate(10)),
            ("truncated to 1000 bytes", truncate(1000)), ("truncated to half", truncate(0.5)),
            ("truncated by 1 byte", truncate(-1)), ("bytes flipped at 30%", flip(0.3)),
            ("bytes flipped at 90%", flip(0.9)), ("bytes flipped near the end", flip(0.995, 8)),
            ("not a zip: text", lambda p: p.write_text("hello")),
            ("a pickle carrying code", pickle_code), ("torch.save of an object carrying code", torch_code),
            ("missing key epoch", edit(lambda ck: ck.pop("epoch"))),
            ("missing key model", edit(lambda ck: ck.pop("model"))),
            ("missing key scaler", edit(lambda ck: ck.pop("scaler"))),
            ("missing key config", edit(lambda ck: ck.pop("config"))),
            ("missing key scoring", edit(lambda ck: ck.pop("scoring"))),
            ("epoch a string", edit(lambda ck: ck.__setitem__("epoch", "1"))),
            ("epoch negative", edit(lambda ck: ck.__setitem__("epoch", -3))),
            ("epoch 2**62", edit(lambda ck: ck.__setitem__("epoch", 2**62))),
            ("global_step a float NaN", edit(lambda ck: ck.__setitem__("global_step", float("nan")))),
            ("model a list", edit(lambda ck: ck.__setitem__("model", [1, 2]))),
            ("NaN weights", edit(lambda ck: ck["model"][first_weight(ck)].fill_(float("nan")))),
            ("inf weights", edit(lambda ck: ck["model"][first_weight(ck)].fill_(float("inf")))),
            ("weight of wrong shape", edit(lambda ck: ck["model"].__setitem__(first_weight(ck), __import__("torch").zeros(2, 2)))),
            ("weight int64", edit(lambda ck: ck["model"].__setitem__(first_weight(ck), ck["model"][first_weight(ck)].long()))),
            ("extra weight", edit(lambda ck: ck["model"].__setitem__("evil.weight", __import__("torch").zeros(1)))),
            ("scaler NaN", edit(lambda ck: _nan_scaler(ck))),
            ("scaler zero range", edit(lambda ck: _zero_scaler(ck))),
            ("feature_names changed", edit(lambda ck: ck.__setitem__("feature_names", ["a", "b", "c"]))),
            ("feature_names wrong count", edit(lambda ck: ck.__setitem__("feature_names", ["voltage"]))),
            ("window_length 0", edit(lambda ck: ck.__setitem__("window_length", 0))),
            ("model_inputs time_steps huge", edit(lambda ck: ck["model_inputs"].__setitem__("time_steps", 10**9))),
            ("config model latent_dim a string", edit(lambda ck: ck["config"]["model"].__setitem__("latent_dim", "x"))),
            ("config not a dict", edit(lambda ck: ck.__setitem__("config", "vae"))),
            ("scoring thresholds text", edit(lambda ck: _scoring_text(ck))),
            ("checkpoint is a tensor", edit(lambda ck: __import__("torch").zeros(3))),
            ("checkpoint is a list", edit(lambda ck: [ck])),
            ("history with NaN losses", edit(lambda ck: _nan_history(ck))),
        ]
        for label, how in edits:
            # last.pt through --resume (one more epoch), best.pt through --mode score
            for fname, mode in (("last.pt", "resume"), ("best.pt", "score")):
                if mode == "resume" and label in ("missing key scoring", "scoring thresholds text"):
                    continue
                if mode == "score" and label in RESUME_ONLY:  # fields --mode score does not use
                    continue
                exp_name = self.new_exp()
                run = self.exp / exp_name
                argv = ["configs/vae_converter.json", *TINY, "--set", f"experiments_dir={self.exp}",
                        "--set", f"exp_name={exp_name}"]
                if mode == "resume":
                    argv = [*[a if a != "trainer.epochs=1" else "trainer.epochs=2" for a in argv], "--resume"]
                    watch = [run / "checkpoints" / "best.pt", run / "config.json"]
                else:
                    inp = self.files / "ck_score_input.csv"
                    argv = [*argv, "--mode", "score", "--input", str(inp), "--output", str(run) + ".scores.csv"]
                    watch = [run]
                self.add("checkpoint", f"{fname} {label}", argv, prepare=damage(exp_name, fname, how), watch=watch,
                         must_not_exist=[self.tmp / "PWNED_CKPT"])
        write(self.files / "ck_score_input.csv", to_csv(good_csv_rows(100, label=False, timestamp=False)))

    # ---- 5. output paths
    def output_cases(self) -> None:
        f = self.files / "out"
        inp = write(f / "in.csv", to_csv(good_csv_rows(100, label=False, timestamp=False)))
        existing = write(f / "existing.csv", "precious\n")
        os.symlink(inp, f / "link_to_input.csv")
        os.symlink(self.base / "checkpoints" / "best.pt", f / "link_to_best.pt")
        os.symlink(self.base / "config.json", f / "link_to_config.json")
        os.symlink(f / "nowhere" / "x.csv", f / "dangling.csv")
        write(f / "exported.onnx.json", "my own notes\n")
        write(f / "afile", "x")
        score = self.score_argv()
        export = [*self.score_argv()[:-1], "export", "--format", "torchscript"]
        w = [inp, existing, self.base, f / "exported.onnx.json"]
        for label, argv in [
            ("score: --output is the input", [*score, "--input", str(inp), "--output", str(inp)]),
            ("score: --output is the input, --overwrite", [*score, "--input", str(inp), "--output", str(inp), "--overwrite"]),
            ("score: --output the input via ./x/../", [*score, "--input", str(inp), "--output", str(f / "x" / ".." / "in.csv"), "--overwrite"]),
            ("score: --output a symlink to the input, --overwrite", [*score, "--input", str(inp), "--output", str(f / "link_to_input.csv"), "--overwrite"]),
            ("score: --input a symlink, --output its target", [*score, "--input", str(f / "link_to_input.csv"), "--output", str(inp), "--overwrite"]),
            ("score: --output the run's best.pt, --overwrite", [*score, "--input", str(inp), "--output", str(self.base / "checkpoints" / "best.pt"), "--overwrite"]),
            ("score: --output a symlink to best.pt, --overwrite", [*score, "--input", str(inp), "--output", str(f / "link_to_best.pt"), "--overwrite"]),
            ("score: --output a symlink to config.json, --overwrite", [*score, "--input", str(inp), "--output", str(f / "link_to_config.json"), "--overwrite"]),
            ("score: --output new file inside the run folder", [*score, "--input", str(inp), "--output", str(self.base / "out" / "new.csv")]),
            ("score: --output a folder", [*score, "--input", str(inp), "--output", str(f)]),
            ("score: --output a folder with trailing slash", [*score, "--input", str(inp), "--output", str(f) + "/"]),
            ("score: --output under /proc", [*score, "--input", str(inp), "--output", "/proc/x/s.csv"]),
            ("score: --output under a file", [*score, "--input", str(inp), "--output", str(f / "afile" / "s.csv")]),
            ("score: --output exists, no --overwrite", [*score, "--input", str(inp), "--output", str(existing)]),
            ("score: --output empty string", [*score, "--input", str(inp), "--output", ""]),
            ("score: --output /dev/full, --overwrite", [*score, "--input", str(inp), "--output", "/dev/full", "--overwrite"]),
            ("score: --output /dev/null without --overwrite", [*score, "--input", str(inp), "--output", "/dev/null"]),
            ("score: --output a dangling symlink", [*score, "--input", str(inp), "--output", str(f / "dangling.csv")]),
            ("score: --output name 300 chars", [*score, "--input", str(inp), "--output", str(f / ("a" * 300 + ".csv"))]),
            ("export: --output exists, no --overwrite", [*export, "--output", str(existing)]),
            ("export: metadata FILE.json exists", [*export, "--output", str(f / "exported.onnx")]),
            ("export: --output run folder config (metadata config.json)", [*export, "--output", str(self.base / "config")]),
            ("export: --output the run's last.pt, --overwrite", [*export, "--output", str(self.base / "checkpoints" / "last.pt"), "--overwrite"]),
            ("export: --output a folder", [*export, "--output", str(f)]),
            ("export: --output under /proc", [*export, "--output", "/proc/x/m.pt"]),
            ("export: onnx without a model dir", [*self.score_argv()[:-1], "export", "--format", "onnx", "--output", "/proc/x/m.onnx"]),
            ("score: --mode score without --input", [*score, "--output", str(f / "z.csv")]),
            ("score: --resume with --mode score", [*score, "--input", str(inp), "--output", str(f / "z.csv"), "--resume"]),
            ("score: unknown --format value", [*export[:-1], "pdf", "--output", str(f / "z.pt")]),
        ]:
            self.add("output", label, argv, watch=w)

    # ---- 6. run folder and resume misuse
    def run_folder_cases(self) -> None:
        def copy_base(exp_name: str, after: Callable[[Path], None] | None = None) -> Callable[[], None]:
            def prepare() -> None:
                run = self.exp / exp_name
                shutil.copytree(self.base, run, ignore=shutil.ignore_patterns(".lock"))
                if after:
                    after(run)
            return prepare

        for label, sets, after in [
            ("resume with another seed", ["seed=7"], None),
            ("resume with another n_samples", ["data.n_samples=300"], None),
            ("resume with another latent_dim", ["model.latent_dim=3"], None),
            ("resume with another dataset", ["data.name=csv", "data.path=examples/converter_telemetry.csv"], None),
            ("resume with another agent", ["agent=reconstruction"], None),
            ("resume with another lr", ["trainer.learning_rate=0.5"], None),
            ("resume with last.pt deleted", [], lambda run: (run / "checkpoints" / "last.pt").unlink()),
            ("resume with checkpoints/ a file", [], lambda run: (shutil.rmtree(run / "checkpoints"),
                                                                  write(run / "checkpoints", "x"))),
            ("resume with last.pt a folder", [], lambda run: ((run / "checkpoints" / "last.pt").unlink(),
                                                               (run / "checkpoints" / "last.pt").mkdir())),
            ("resume with last.pt a symlink to /dev/zero", [], lambda run: ((run / "checkpoints" / "last.pt").unlink(),
                                                                             os.symlink("/dev/zero", run / "checkpoints" / "last.pt"))),
            ("resume with last.pt of another run (latent 3)", [], None),
            ("start again into an existing run", ["__no_resume__"], None),
        ]:
            exp_name = self.new_exp()
            run = self.exp / exp_name
            argv = self.run_of(exp_name)
            argv = [a if a != "trainer.epochs=1" else "trainer.epochs=2" for a in argv]
            if "__no_resume__" in sets:
                sets = []
            else:
                argv.append("--resume")
            argv += [a for s in sets for a in ("--set", s)]
            prep = copy_base(exp_name, after)
            if label == "resume with last.pt of another run (latent 3)":
                prep = copy_base(exp_name, lambda run: self.other_last(run))
            self.add("run_folder", label, argv, prepare=prep, watch=[run / "checkpoints", run / "config.json"])
        f = self.files / "runs"
        write(self.exp / "afile", "not a run")
        write(f / "plainfile", "x")
        for label, argv in [
            ("resume with nothing to resume", [*self.run_of("never"), "--resume"]),
            ("exp_name names a file", self.run_of("afile")),
            ("resume: exp_name names a file", [*self.run_of("afile"), "--resume"]),
            ("experiments_dir under /proc", [*self.run_of("x"), "--set", "experiments_dir=/proc/experiments"]),
            ("experiments_dir is a file", [*self.run_of("x"), "--set", f"experiments_dir={f / 'plainfile'}"]),
            ("experiments_dir under /sys (read-only)", [*self.run_of("x"), "--set", "experiments_dir=/sys/experiments"]),
            ("experiments_dir empty string", [*self.run_of("x"), "--set", "experiments_dir="]),
            ("score a run never trained", [*self.run_of("never2"), "--mode", "score", "--input",
                                           str(self.files / "ck_score_input.csv"), "--output", str(f / "s.csv")]),
            ("export a run never trained", [*self.run_of("never3"), "--mode", "export", "--format", "torchscript",
                                            "--output", str(f / "m.pt")]),
        ]:
            self.add("run_folder", label, argv, watch=[self.exp / "afile", f / "plainfile"])

        # a second process on a folder in use: the background run trains long, the case comes while it holds the lock
        for label, second in [("resume while the run trains", "resume"), ("second start while the run trains", "start"),
                              ("score while the run trains", "score"), ("export while the run trains", "export")]:
            exp_name = self.new_exp()
            run = self.exp / exp_name
            bg = ["configs/vae_converter.json", "--set", "data.n_samples=3000", "--set", "data.time_steps=100",
                  "--set", "trainer.epochs=100000", "--set", "trainer.progress_bar=false",
                  "--set", "evaluation.make_plots=false", "--set", f"experiments_dir={self.exp}",
                  "--set", f"exp_name={exp_name}", "--set", "trainer.checkpoint_interval_s=0"]
            argv = list(bg)
            if second == "resume":
                argv.append("--resume")
            elif second == "score":
                argv += ["--mode", "score", "--input", str(self.files / "ck_score_input.csv"), "--output", str(f / "b.csv")]
            elif second == "export":
                argv += ["--mode", "export", "--format", "torchscript", "--output", str(f / "b.pt")]
            ready = (lambda run=run: (run / "checkpoints" / "last.pt").is_file() and (run / ".lock").is_file())
            self.add("run_folder", label, argv, background=bg, background_ready=ready)

    def other_last(self, run: Path) -> None:
        """Put a last.pt made with another model config (latent_dim 3) into ``run``."""
        import torch

        ck = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
        for key in list(ck["model"]):
            if key.startswith(("to_mu.", "to_logvar.")):  # the latent layer of a VAE of latent_dim 3
                t = ck["model"][key]
                ck["model"][key] = torch.zeros((3, *t.shape[1:]))
        torch.save(ck, run / "checkpoints" / "last.pt")

    # ---- 7. the ECG5000 dataset offline
    def ecg_cases(self) -> None:
        f = self.files / "ecg"
        empty = f / "empty"
        empty.mkdir(parents=True, exist_ok=True)
        train_only = f / "train_only"
        train_only.mkdir(parents=True, exist_ok=True)
        if ECG_TRAIN.is_file():
            shutil.copy(ECG_TRAIN, train_only / "ECG5000_TRAIN.txt")
        notzip = write(f / "notzip.zip", "this is not a zip\n")
        emptyzip = f / "empty.zip"
        zipfile.ZipFile(emptyzip, "w").close()
        wrongzip = f / "wrong.zip"
        with zipfile.ZipFile(wrongzip, "w") as z:
            z.writestr("README.txt", "no data here")
        travzip = f / "traversal.zip"
        with zipfile.ZipFile(travzip, "w") as z:
            z.writestr("../../ECG_EVIL.txt", "evil")
            z.writestr("ECG5000_TRAIN.txt", "1 1 2 3\n")
        garbage_train = f / "garbage"
        garbage_train.mkdir(exist_ok=True)
        write(garbage_train / "ECG5000_TRAIN.txt", "1,2,3\nhello world\n")
        trunc = f / "trunc"
        trunc.mkdir(exist_ok=True)
        if ECG_TRAIN.is_file():
            write(trunc / "ECG5000_TRAIN.txt", ECG_TRAIN.read_bytes()[:5000])
        badfmt = f / "badfmt"
        badfmt.mkdir(exist_ok=True)
        write(badfmt / "ECG5000_TRAIN.ts", "@problemName ECG5000\n@data\n1,2,3:x\n")
        write(badfmt / "ECG5000_TEST.ts", "garbage")
        wrongclass = f / "wrongclass"
        wrongclass.mkdir(exist_ok=True)
        if ECG_TRAIN.is_file():
            lines = ECG_TRAIN.read_text().splitlines()
            write(wrongclass / "ECG5000_TRAIN.txt", "\n".join(l.replace(l.split()[0], "2.0000000e+00", 1)
                                                             for l in lines) + "\n")
        base = ["configs/vae_ecg5000.json", *QUIET, "--set", f"experiments_dir={self.exp}"]

        def ecg(label: str, *sets: str, watch: list[Path] | None = None) -> None:
            self.add("ecg5000", label, [*base, "--set", f"exp_name={self.new_exp()}",
                                        *[a for s in sets for a in ("--set", s)]],
                     watch=watch or [train_only], must_not_exist=[f.parent / "ECG_EVIL.txt", f / "ECG_EVIL.txt"])

        ecg("data_dir missing, download false", f"data.data_dir={f / 'missing'}", "data.download=false")
        ecg("data_dir empty, merged", f"data.data_dir={empty}", "data.download=false", "data.protocol=merged")
        ecg("data_dir a file", f"data.data_dir={notzip}", "data.download=false")
        ecg("official without TEST", f"data.data_dir={train_only}", "data.download=false")
        ecg("download unreachable URL", f"data.data_dir={empty}", "data.download=true", "data.url=http://127.0.0.1:9/x.zip",
            "data.progress=false")
        ecg("download unreachable, TRAIN present", f"data.data_dir={train_only}", "data.download=true",
            "data.url=http://127.0.0.1:9/x.zip", "data.progress=false")
        ecg("download file:// not a zip", f"data.data_dir={empty}", "data.download=true", f"data.url=file://{notzip}")
        ecg("download file:// empty zip", f"data.data_dir={empty}", "data.download=true", f"data.url=file://{emptyzip}")
        ecg("download file:// zip without the data", f"data.data_dir={empty}", "data.download=true",
            f"data.url=file://{wrongzip}")
        ecg("download file:// zip with ../ member", f"data.data_dir={empty}", "data.download=true",
            f"data.url=file://{travzip}")
        ecg("download file:// missing", f"data.data_dir={empty}", "data.download=true",
            f"data.url=file://{f / 'nope.zip'}")
        ecg("download file:// a folder", f"data.data_dir={empty}", "data.download=true", f"data.url=file://{f}")
        ecg("download ftp:// URL", f"data.data_dir={empty}", "data.download=true", "data.url=ftp://127.0.0.1:9/x.zip")
        ecg("download URL not a URL", f"data.data_dir={empty}", "data.download=true", "data.url=not a url")
        ecg("download file:///dev/zero (endless)", f"data.data_dir={empty}", "data.download=true",
            "data.url=file:///dev/zero", "data.download_max_mb=1")
        ecg("download wrong sha256", f"data.data_dir={empty}", "data.download=true", f"data.url=file://{wrongzip}",
            "data.sha256=00")
        ecg("TRAIN file garbage", f"data.data_dir={garbage_train}", "data.download=false", "data.protocol=merged",
            watch=[garbage_train])
        ecg("TRAIN file truncated mid-line", f"data.data_dir={trunc}", "data.download=false", "data.protocol=merged",
            watch=[trunc])
        ecg("TRAIN/TEST .ts garbage", f"data.data_dir={badfmt}", "data.download=false", watch=[badfmt])
        ecg("TRAIN with no normal class-1 beat", f"data.data_dir={wrongclass}", "data.download=false",
            "data.protocol=merged", watch=[wrongclass])
        ecg("data_dir /proc", "data.data_dir=/proc", "data.download=false", "data.protocol=merged")
        ecg("download into an unwritable data_dir", "data.data_dir=/proc/ecg", "data.download=true",
            f"data.url=file://{wrongzip}")


#: damage to fields only a resume reads: --mode score leaves them unused and rightly scores
RESUME_ONLY = ("epoch a string", "epoch negative", "epoch 2**62", "global_step a float NaN", "history with NaN losses")


def _npy_header(header: str) -> bytes:
    h = header.encode("latin1")
    pad = 64 - (10 + len(h) + 1) % 64
    h = h + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h


def _nan_scaler(ck: dict) -> None:
    for key, value in ck["scaler"].items():
        if hasattr(value, "fill_") and value.is_floating_point():
            value.fill_(float("nan"))
        elif isinstance(value, list):
            ck["scaler"][key] = [float("nan")] * len(value)


def _zero_scaler(ck: dict) -> None:
    import torch
    for key, value in ck["scaler"].items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            value.zero_()
        elif isinstance(value, list):
            ck["scaler"][key] = [0.0] * len(value)


def _scoring_text(ck: dict) -> None:
    thresholds = ck["scoring"].get("thresholds", {})
    for key in thresholds:
        thresholds[key] = "high"


def _nan_history(ck: dict) -> None:
    for key, value in ck["history"].items():
        if isinstance(value, list):
            ck["history"][key] = [float("nan")] * len(value)


# ----------------------------------------------------------------------------------------------- running
def classify(rc: int | None, stderr: str, changed: list[str]) -> str:
    if rc is None:
        return "hang"
    if "Traceback (most recent call last)" in stderr:
        return "traceback"
    if changed or rc == 0:
        return "accepted"
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:") or line.startswith("main.py: error:")]
    if rc == 2 and errors and len("\n".join(lines[lines.index(errors[-1]):]).splitlines()) <= MAX_MESSAGE_LINES:
        return "answered"
    return "other"


def message_of(stderr: str, stdout: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if line.startswith("error:") or line.startswith("main.py: error:")]
    if "Traceback (most recent call last)" in stderr:
        tail = lines[-1] if lines else ""
        return f"Traceback ... {tail}"
    if errors:
        return " | ".join(lines[errors[-1]:])
    return " | ".join(lines[-3:]) if lines else " | ".join(stdout.strip().splitlines()[-2:])


def _limit_memory(gib: float) -> Callable[[], None]:
    def limit() -> None:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (int(gib * 2**30), int(gib * 2**30)))
    return limit


def run_case(case: Case, env: dict[str, str]) -> dict[str, Any]:
    if case.prepare:
        case.prepare()
    before = {str(p): tree_hash(p) for p in case.watch}
    bg = None
    if case.background:
        bg = subprocess.Popen([sys.executable, "main.py", *case.background], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while not (case.background_ready and case.background_ready()) and time.monotonic() < deadline \
                and bg.poll() is None:
            time.sleep(0.2)
        before = {str(p): tree_hash(p) for p in case.watch}
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "main.py", *case.argv], cwd=ROOT, env=env, capture_output=True,
                              text=True, errors="replace", timeout=case.timeout, start_new_session=True,
                              preexec_fn=_limit_memory(case.mem_gb))
        rc, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as err:
        rc = None
        stdout = (err.stdout or b"").decode(errors="replace") if isinstance(err.stdout, bytes) else (err.stdout or "")
        stderr = (err.stderr or b"").decode(errors="replace") if isinstance(err.stderr, bytes) else (err.stderr or "")
    seconds = time.monotonic() - start
    if bg is not None:
        bg_alive = bg.poll() is None
        if bg_alive:
            os.killpg(bg.pid, signal.SIGKILL)
        bg.wait()
        if not bg_alive:
            stderr += "\n[sweep: the background run had ended before this case ran]"
    after = {str(p): tree_hash(p) for p in case.watch}
    changed = []
    for p in before:
        for file in sorted(set(before[p]) | set(after[p])):
            if before[p].get(file) != after[p].get(file):
                changed.append(f"{file} {'modified' if file in before[p] and file in after[p] else 'created' if file in after[p] else 'removed'}")
    changed += [f"{p} exists (code ran)" for p in case.must_not_exist if p.exists()]
    outcome = classify(rc, stderr, changed)
    message = message_of(stderr, stdout)
    if changed:
        message = f"CHANGED: {'; '.join(changed)[:200]} / exit {rc}: {message}"
    elif outcome == "accepted":
        message = f"exit 0: {message}"
    return {"class": case.cls, "case": case.name, "outcome": outcome, "exit_code": rc, "seconds": round(seconds, 1),
            "message": message[:2000], "changed": changed, "argv": case.argv if len(" ".join(case.argv)) < 3000
            else case.argv[:3] + ["..."]}


def counts_table(results: list[dict[str, Any]]) -> str:
    header = f"| {'class':<11} | cases | " + " | ".join(OUTCOMES) + " |"
    lines = [header, "|" + "---|" * (len(OUTCOMES) + 2)]
    for cls in (*CLASSES, "overall"):
        rows = [r for r in results if cls == "overall" or r["class"] == cls]
        if not rows:
            continue
        counts = [sum(r["outcome"] == o for r in rows) for o in OUTCOMES]
        name = f"**{cls}**" if cls == "overall" else cls
        lines.append(f"| {name:<11} | {len(rows)} | " + " | ".join(str(c) for c in counts) + " |")
    return "\n".join(lines)


def build_cases(tmp: Path) -> tuple[Builder, list[Case]]:
    """The cases, their files written under ``tmp`` (those needing the base run are made when they run)."""
    builder = Builder(tmp)
    return builder, builder.build()


def train_base(builder: Builder, env: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, "main.py", *builder.base_argv()], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"the base run failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    parser.add_argument("--only", choices=CLASSES, action="append", help="run only these classes (repeatable)")
    parser.add_argument("--match", help="run only cases whose name contains this text")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a case may take (default 60)")
    parser.add_argument("--rerun", type=Path, help="run only the cases not answered in this earlier --out JSON")
    parser.add_argument("--every", type=int, default=1, help="run every N-th case only (a quick look)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    tmp = Path(tempfile.mkdtemp(prefix="bad_input_sweep_"))
    try:
        builder, cases = build_cases(tmp)
        cases = [c for c in cases if (not args.only or c.cls in args.only) and (not args.match or args.match in c.name)]
        if args.rerun:
            earlier = json.loads(args.rerun.read_text())["results"]
            again = {(r["class"], r["case"]) for r in earlier if r["outcome"] != "answered"}
            cases = [c for c in cases if (c.cls, c.name) in again]
        cases = cases[:: max(1, args.every)]
        if args.list:
            for c in cases:
                print(f"{c.cls:<11} {c.name}")
            print(f"{len(cases)} cases")
            return 0
        for c in cases:
            c.timeout = args.timeout
        t0 = time.monotonic()
        print(f"training the tiny base run in {builder.base} ...", flush=True)
        train_base(builder, env)
        print(f"base run ready ({time.monotonic() - t0:.0f} s); {len(cases)} cases, {args.jobs} at a time", flush=True)
        lock = threading.Lock()
        results: list[dict[str, Any]] = []

        def one(case: Case) -> dict[str, Any]:
            try:
                result = run_case(case, env)
            except Exception as err:  # the sweep's own failure to build a case is reported, not hidden
                result = {"class": case.cls, "case": case.name, "outcome": "other", "exit_code": None, "seconds": 0,
                          "message": f"sweep could not run the case: {type(err).__name__}: {err}", "changed": [],
                          "argv": case.argv[:3]}
            with lock:
                results.append(result)
                msg = result["message"].replace("\n", " | ")[:160]
                print(f"{result['class']:<11} {result['outcome']:<9} {result['seconds']:5.1f}s  {result['case']}  "
                      f":: {msg}", flush=True)
            return result

        # one at a time: a background run holds a long training run; the output cases share their input file and
        # the base run, so one case's damage must not show up in another's hashes
        serial = [c for c in cases if c.background or c.cls == "output"]
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(one, [c for c in cases if c not in serial]))
        for case in serial:
            one(case)
        order = {(c.cls, c.name): i for i, c in enumerate(cases)}
        results.sort(key=lambda r: order[(r["class"], r["case"])])
        print(f"\n{len(results)} cases in {time.monotonic() - t0:.0f} s\n")
        print(counts_table(results))
        bad = [r for r in results if r["outcome"] != "answered"]
        if bad:
            print("\nnot answered:")
            for r in bad:
                print(f"- [{r['class']}] {r['case']}: {r['outcome']} (exit {r['exit_code']}): {r['message'][:400]}")
        if args.out:
            summary = {cls: {o: sum(r["outcome"] == o for r in results if cls == "overall" or r["class"] == cls)
                             for o in OUTCOMES} for cls in (*CLASSES, "overall")}
            for cls in summary:
                summary[cls]["cases"] = sum(1 for r in results if cls == "overall" or r["class"] == cls)
            args.out.write_text(json.dumps({"counts": summary, "results": results}, indent=1))
        return 0
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
