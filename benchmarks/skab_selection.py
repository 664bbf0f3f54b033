"""Label-free model selection for SKAB: synthetic sensor faults injected into ``anomaly-free.csv``.

SKAB's test labels must not choose a model (issue 21). This benchmark chooses on data SKAB's labels never
touch: ``anomaly-free/anomaly-free.csv`` (9,405 rows of normal operation of the same pump), into whose test rows
:func:`inject_faults` puts generic sensor faults (level shift, spike burst, variance increase, stuck sensor, slow
ramp, swapped channels), each a labelled range of tens to hundreds of rows, from fixed seeds. Two layouts
(``--layout``), each written as CSV files with an ``anomaly`` column into a temporary folder:

* ``segments`` (default): SKAB-shaped recordings, stretches of 1,100 rows whose first 400 train and whose other
  700 hold two faults (:func:`segment_recordings`); ``--copies`` cut the file at different offsets, so the
  copies differ in their training parts too (3 copies: 23 recordings, 46 faults);
* ``split``: the whole file per copy, its first 20 % training (as :mod:`benchmarks.skab`'s false-alarm check),
  twelve faults in the rest (:func:`split_recordings`). The file drifts far beyond its first 20 %, so this layout
  mostly measures drift: the selection uses ``segments``.

Every candidate (a config and a set of overrides, :data:`CANDIDATES`) is trained through the command line
(:func:`benchmarks.quality.train_config`) on those files: the config's own ``data`` section is kept (window,
strides, normalisation, validation share) and pointed at the ``csv`` loader (``--set data={...}``). Its rows
are read from ``metrics.json`` exactly as :mod:`benchmarks.skab` reads them (:func:`benchmarks.skab.table_rows`):
mean per-file VUS-PR and event recall, pooled F1, FAR % and MAR % at the deployed threshold. The
baselines (kNN, PCA, IsolationForest on the same windows) are computed once per window length.

The selection rule (:func:`select`), fixed before any SKAB result was seen: for each config, the candidate
whose best score has the highest mean VUS-PR on the injected recordings; the shipped setting is kept unless
another beats it by more than :data:`MARGIN`.

Usage:
    python benchmarks/skab_selection.py                 # the full grid, 3 injection seeds
    python benchmarks/skab_selection.py --quick         # 1 copy, 2 epochs, 2 candidates: a smoke run
    python benchmarks/skab_selection.py --json /tmp/selection.json
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import quality, skab  # noqa: E402
from utils.core.errors import DataError, UserError  # noqa: E402
from utils.core.paths import user_path  # noqa: E402

ANOMALY_FREE_CSV = skab.DEFAULT_DATA_DIR / "anomaly-free" / "anomaly-free.csv"
SEPARATOR = ";"
TIMESTAMP = "datetime"
LABEL = "anomaly"
#: Fault kinds :func:`inject_faults` knows, in the order of their descriptions there.
FAULT_KINDS = ("level_shift", "spike_burst", "variance", "stuck", "ramp", "swap")
MIN_LENGTH, MAX_LENGTH = 30, 300  # rows of one fault
GAP = 40  # rows of normal operation at least before each fault
#: The ``data`` keys of the ``skab`` loader that the ``csv`` loader does not take.
SKAB_ONLY_KEYS = ("data_dir", "download", "files", "url", "progress", "download_deadline_s")
#: A candidate must beat the shipped setting's mean VUS-PR by more than this to replace it.
MARGIN = 0.005
SEGMENT_ROWS, SEGMENT_TRAIN_ROWS = 1100, 400  # the length of a SKAB experiment file and its training part
FAULTS_PER_SEGMENT = 2
QUICK = ["trainer.epochs=2"]
WINDOWS = (10, 20, 60)
SKAB_CONFIGS = ("vae_skab", "conv_ae_skab", "lstm_skab")


@dataclass(frozen=True)
class Fault:
    """One injected fault: rows ``[start, stop)`` of the recording, on ``channels``."""

    kind: str
    start: int
    stop: int
    channels: tuple[int, ...]


@dataclass(frozen=True)
class Candidate:
    """One candidate setting: a config, the window length it runs at, and further overrides."""

    config: str  # stem of configs/<config>.json
    window: int
    extra: tuple[str, ...] = ()

    @property
    def overrides(self) -> list[str]:
        return [f"data.window_length={self.window}", *self.extra]

    @property
    def name(self) -> str:
        return " ".join([self.config, f"w={self.window}", *self.extra])


#: The grid, fixed before any run: every skab config at windows of 10, 20 and 60 rows (60 ships), and at 10 rows
#: the VAE and the conv AE with the bottleneck of 8 that the outside study's MLP autoencoder used.
CANDIDATES = (*(Candidate(c, w) for w in WINDOWS for c in SKAB_CONFIGS),
              Candidate("vae_skab", 10, ("model.latent_dim=8",)), Candidate("conv_ae_skab", 10, ("model.latent_dim=8",)))


def inject_faults(values: np.ndarray, start: int, seed: int, kinds: Sequence[str] | None = None,
                  scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, list[Fault]]:
    """Put generic sensor faults into rows ``start..`` of a recording; a pure function of its arguments.

    The rows after ``start`` are cut into ``len(kinds)`` equal slots; slot i holds one fault of ``kinds[i]``,
    ``MIN_LENGTH..MAX_LENGTH`` rows long (at most the slot less ``GAP``), at least ``GAP`` rows after the slot's
    start, so faults never overlap or touch the training rows. Magnitudes are in units of ``scale``
    (per channel; default the standard deviation of the rows before ``start``, the part a model learns from):

    * ``level_shift``: 1-3 channels move by +-2..4 units;
    * ``spike_burst``: 3-6 single-row spikes of +-4..8 units on random channels (the range spans them);
    * ``variance``: 1-2 channels get Gaussian noise of 1..2 units;
    * ``stuck``: 1-2 channels hold the value of the fault's first row;
    * ``ramp``: 1-2 channels drift linearly from 0 to +-3..5 units, then snap back;
    * ``swap``: two channels exchange their standardised fluctuations around the fault's own means
      (levels and spreads kept, the correlations between channels changed).

    Args:
        values: (N, F) sensor values, F >= 2; not changed.
        start: the first row that may be faulty (the rows before it are the training part).
        seed: seeds the generator: the same arguments give the same output.
        kinds: the fault of each slot, in row order; default every kind of :data:`FAULT_KINDS` twice, shuffled.
        scale: (F,) magnitude unit per channel.

    Returns:
        ``(faulty, labels, faults)``: the (N, F) float copy with the faults, the (N,) int8 labels (1 exactly
        on each fault's rows), and the faults in row order.

    Raises:
        ValueError: ``values`` is not 2-D with two channels or more, or the rows after ``start`` are too
            few for the slots, or a kind is unknown.
    """
    if values.ndim != 2 or values.shape[1] < 2:
        raise ValueError(f"values must be (N, F) with F >= 2, got shape {values.shape}")
    rng = np.random.default_rng(seed)
    kinds = list(rng.permutation(np.repeat(FAULT_KINDS, 2)) if kinds is None else kinds)
    unknown = sorted(set(kinds) - set(FAULT_KINDS))
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
    slot = (len(values) - start) // max(len(kinds), 1)
    if start < 2 or slot < GAP + MIN_LENGTH:
        raise ValueError(f"{len(values) - start} rows after row {start} hold no {len(kinds)} slots of "
                         f"{GAP + MIN_LENGTH} rows (and at least 2 training rows are needed)")
    unit = values[:start].std(axis=0) if scale is None else np.asarray(scale, dtype=float)
    unit = np.where(unit > 0, unit, 1.0)
    faulty = values.astype(float, copy=True)
    labels = np.zeros(len(values), dtype=np.int8)
    faults = []
    for i, kind in enumerate(kinds):
        length = int(rng.integers(MIN_LENGTH, min(MAX_LENGTH, slot - GAP) + 1))
        first = start + i * slot + int(rng.integers(GAP, slot - length + 1))
        fault = _apply(str(kind), faulty, first, first + length, unit, rng)
        labels[fault.start:fault.stop] = 1
        faults.append(fault)
    return faulty, labels, faults


def _channels(rng: np.random.Generator, n_channels: int, most: int) -> np.ndarray:
    return rng.choice(n_channels, size=int(rng.integers(1, min(most, n_channels) + 1)), replace=False)


def _signs(rng: np.random.Generator, size: int) -> np.ndarray:
    return rng.choice([-1.0, 1.0], size=size)


def _apply(kind: str, x: np.ndarray, a: int, b: int, unit: np.ndarray, rng: np.random.Generator) -> Fault:
    """Change rows ``[a, b)`` of ``x`` in place by one fault of ``kind``; the fault."""
    n = b - a
    if kind == "spike_burst":
        rows = rng.choice(np.arange(a, b), size=int(rng.integers(3, 7)), replace=False)
        cols = rng.integers(0, x.shape[1], size=len(rows))
        x[rows, cols] += _signs(rng, len(rows)) * rng.uniform(4, 8, len(rows)) * unit[cols]
        rows.sort()
        return Fault(kind, int(rows[0]), int(rows[-1]) + 1, tuple(sorted({int(c) for c in cols})))
    if kind == "swap":
        ch = rng.choice(x.shape[1], size=2, replace=False)
        part = x[a:b][:, ch]
        mean, spread = part.mean(axis=0), np.where(part.std(axis=0) > 0, part.std(axis=0), 1.0)
        x[a:b, ch] = mean + (part - mean)[:, ::-1] / spread[::-1] * spread
        return Fault(kind, a, b, tuple(sorted(int(c) for c in ch)))
    ch = _channels(rng, x.shape[1], 3 if kind == "level_shift" else 2)
    if kind == "level_shift":
        x[a:b, ch] += _signs(rng, len(ch)) * rng.uniform(2, 4, len(ch)) * unit[ch]
    elif kind == "variance":
        x[a:b, ch] += rng.normal(size=(n, len(ch))) * rng.uniform(1, 2, len(ch)) * unit[ch]
    elif kind == "stuck":
        x[a:b, ch] = x[a, ch]
    elif kind == "ramp":
        x[a:b, ch] += np.linspace(0, 1, n)[:, None] * _signs(rng, len(ch)) * rng.uniform(3, 5, len(ch)) * unit[ch]
    else:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
    return Fault(kind, a, b, tuple(sorted(int(c) for c in ch)))


def read_recording(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """A SKAB-format file (``;``-separated, ``datetime`` first): ``(header, timestamps, (N, F) values)``."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter=SEPARATOR))
    header, body = (rows[0], rows[1:]) if rows and rows[0] else ([""], [])
    if header[0] != TIMESTAMP:
        raise DataError(f"{path}: the first column is {header[0]!r}, not {TIMESTAMP!r} (a SKAB recording, "
                        f"{SEPARATOR!r}-separated, such as anomaly-free/anomaly-free.csv)")
    try:
        values = np.array([r[1:] for r in body], dtype=float)
    except ValueError as err:  # a ragged row, a text value
        raise DataError(f"{path}: not numeric sensor rows of {len(header) - 1} columns ({err})") from None
    return header, [r[0] for r in body], values


@dataclass(frozen=True)
class Recording:
    """One injected recording to write: its rows, labels and where its training part ends."""

    name: str
    stamps: list[str]
    values: np.ndarray  # (N, F)
    labels: np.ndarray  # (N,)
    train_rows: int
    faults: list[Fault]


def segment_recordings(stamps: list[str], values: np.ndarray, copies: int) -> list[Recording]:
    """The ``segments`` layout: SKAB-shaped recordings cut from the anomaly-free one, with faults.

    Copy ``c`` (of ``copies``) cuts consecutive stretches of :data:`SEGMENT_ROWS` rows starting at row
    ``c * SEGMENT_ROWS // copies`` (so the copies' training parts differ); in each stretch the first
    :data:`SEGMENT_TRAIN_ROWS` rows train and two faults go into the rest, the kinds taken in turn from
    :data:`FAULT_KINDS` so that every kind appears about equally often; stretch ``j`` of copy ``c`` is
    injected with seed ``1000 * c + j``.
    """
    out, turn = [], 0
    for c in range(copies):
        for j, first in enumerate(range(c * SEGMENT_ROWS // copies, len(values) - SEGMENT_ROWS + 1, SEGMENT_ROWS)):
            kinds = [FAULT_KINDS[(turn + k) % len(FAULT_KINDS)] for k in range(FAULTS_PER_SEGMENT)]
            turn += FAULTS_PER_SEGMENT
            part = values[first:first + SEGMENT_ROWS]
            faulty, labels, faults = inject_faults(part, SEGMENT_TRAIN_ROWS, 1000 * c + j, kinds)
            out.append(Recording(f"copy{c}_rows{first}", stamps[first:first + SEGMENT_ROWS], faulty, labels,
                                 SEGMENT_TRAIN_ROWS, faults))
    return out


def split_recordings(stamps: list[str], values: np.ndarray, copies: int) -> list[Recording]:
    """The ``split`` layout: the whole recording per copy, its first 20 % training (as :mod:`benchmarks.skab`'s
    false-alarm check); every kind twice in the rest, copy ``c`` injected with seed ``c``."""
    start = int(skab.ANOMALY_FREE_TRAIN_SHARE * len(values))
    out = []
    for c in range(copies):
        faulty, labels, faults = inject_faults(values, start, c)
        out.append(Recording(f"copy{c}", stamps, faulty, labels, start, faults))
    return out


LAYOUTS = {"segments": segment_recordings, "split": split_recordings}


def write_recordings(folder: Path, header: list[str], recordings: list[Recording]) -> None:
    """Each recording as ``folder/<name>.csv`` in SKAB's format plus an ``anomaly`` column."""
    for rec in recordings:
        with (folder / f"{rec.name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter=SEPARATOR)
            writer.writerow([*header, LABEL])
            for stamp, row, label in zip(rec.stamps, rec.values, rec.labels, strict=True):
                writer.writerow([stamp, *(f"{v:.9g}" for v in row), int(label)])


def csv_data_section(config: Path, folder: Path, train_end: int | float) -> dict[str, Any]:
    """The config's ``data`` section aimed at the injected files through the ``csv`` loader (window, strides,
    normalisation, training labels and validation share kept; each file's training part ends at ``train_end``)."""
    data = json.loads(config.read_text(encoding="utf-8"))["data"]
    kept = {k: v for k, v in data.items() if k not in SKAB_ONLY_KEYS and k not in ("name", "train_end")}
    return {**kept, "name": "csv", "path": str(folder), "separator": SEPARATOR, "timestamp_column": TIMESTAMP,
            "label_columns": [LABEL], "train_end": train_end}


def run_candidates(args: argparse.Namespace, folder: Path, train_end: int | float, exp_dir: Path
                   ) -> list[dict[str, Any]]:
    """Train every candidate on the injected files; print and return its rows (baselines once per window). A
    candidate the product refuses (exit 2, e.g. windows too long for the calibration rows) prints its message."""
    rows: list[dict[str, Any]] = []
    seen_windows: set[int] = set()
    for i, cand in enumerate(args.candidates):
        config = quality.CONFIGS_DIR / f"{cand.config}.json"
        with_baselines = cand.window not in seen_windows
        seen_windows.add(cand.window)
        overrides = [f"data={json.dumps(csv_data_section(config, folder, train_end))}", *cand.overrides,
                     "trainer.progress_bar=false", "evaluation.make_plots=false",
                     *([] if with_baselines else ["evaluation.baselines=[]"]),
                     *(QUICK if args.quick else []), *args.overrides]
        try:
            run = quality.train_config(config, overrides, exp_dir / f"c{i:02d}_{cand.config}", args)
        except UserError as err:  # the product refused this setting on this data: a result, not a crash
            if with_baselines:
                seen_windows.discard(cand.window)  # the next candidate of this length gives them
            print(f"{cand.name}: refused by the product: {err}", flush=True)
            continue
        for r in skab.table_rows(run["metrics"], cand.name, with_baselines):
            r = {**r, "candidate": cand.name, "config": cand.config, "window": cand.window,
                 "name": r["name"] if r["kind"] == "model" else f"{r['name']} w={cand.window}"}
            rows.append(r)
            print(skab.format_row(r, f"({run['seconds']:.0f} s run)" if r["kind"] == "model" else "(baseline)"),
                  flush=True)
    return rows


def select(rows: list[dict[str, Any]], shipped: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The selection rule, per config: each candidate counts with its best score's mean VUS-PR; the best
    candidate wins, but the shipped one (``shipped[config]``, a candidate name) is kept unless the best beats it
    by more than :data:`MARGIN`.

    Returns:
        ``{config: {"chosen", "vus_pr", "score", "shipped", "shipped_vus_pr"}}``.
    """
    best: dict[str, dict[str, tuple[float, str]]] = {}
    for r in rows:
        if r["kind"] != "model" or r["vus_pr_mean"] is None:
            continue
        per_config = best.setdefault(r["config"], {})
        if r["vus_pr_mean"] > per_config.get(r["candidate"], (-1.0, ""))[0]:
            per_config[r["candidate"]] = (r["vus_pr_mean"], r["name"])
    out = {}
    for config, candidates in best.items():
        top = max(candidates, key=lambda c: candidates[c][0])
        kept = shipped.get(config)
        if kept in candidates and candidates[top][0] - candidates[kept][0] <= MARGIN:
            top = kept
        out[config] = {"chosen": top, "vus_pr": candidates[top][0], "score": candidates[top][1],
                       "shipped": kept, "shipped_vus_pr": candidates[kept][0] if kept in candidates else None}
    return out


def shipped_candidate(config: str) -> str:
    """The candidate name of what ``configs/<config>.json`` ships (its own window length)."""
    data = json.loads((quality.CONFIGS_DIR / f"{config}.json").read_text(encoding="utf-8"))["data"]
    return Candidate(config, int(data["window_length"])).name


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the selection benchmark."""
    p = argparse.ArgumentParser(description="Choose SKAB settings without SKAB's labels: train every candidate on "
                                "anomaly-free.csv with injected sensor faults and rank by mean per-file VUS-PR.")
    p.add_argument("--source", type=user_path, default=ANOMALY_FREE_CSV,
                   help="the anomaly-free recording (%(default)s)")
    p.add_argument("--layout", choices=sorted(LAYOUTS), default="segments",
                   help="segments: SKAB-shaped recordings of 1,100 rows, 400 training (default); split: the whole "
                        "recording, its first 20 %% training")
    p.add_argument("--copies", type=int, default=3, help="injected copies (seeds of injection; default %(default)s)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a value of every candidate (repeatable)")
    p.add_argument("--candidate", action="append", default=[], metavar="CONFIG:WINDOW",
                   help="run only this candidate, e.g. vae_skab:60 (repeatable; default: the whole grid)")
    p.add_argument("--quick", action="store_true", help="1 copy, 2 epochs, 2 candidates: checks the benchmark runs")
    skab.add_run_options(p)
    args = p.parse_args(argv)
    if args.copies < 1:
        p.error("--copies must be >= 1")
    if not args.source.is_file():
        p.error(f"--source {args.source}: no such file; give SKAB's anomaly-free/anomaly-free.csv")
    quality.check_results_path(p, args.json_out, "--json")
    if args.quick:
        args.copies = 1
    args.candidates = [Candidate("vae_skab", 10), Candidate("vae_skab", 60)] if args.quick else list(CANDIDATES)
    if args.candidate:
        try:
            args.candidates = [Candidate(name, int(window)) for name, window in
                               (text.rsplit(":", 1) for text in args.candidate)]
        except ValueError:
            p.error(f"--candidate: expected CONFIG:WINDOW (e.g. vae_skab:60), got {args.candidate}")
    return args


def run_selection(args: argparse.Namespace) -> dict[str, Any]:
    """Inject, train every candidate, print its rows as measured, then the selection; returns the JSON figures."""
    header, stamps, values = read_recording(args.source)
    recordings = LAYOUTS[args.layout](stamps, values, args.copies)
    exp_dir = Path(args.experiments_dir or tempfile.mkdtemp(prefix="skab_selection_"))
    folder = exp_dir / "injected"
    folder.mkdir(parents=True, exist_ok=True)
    write_recordings(folder, header, recordings)
    n_faults = sum(len(r.faults) for r in recordings)
    labelled = sum(int(r.labels.sum()) for r in recordings)
    tested = sum(len(r.values) - r.train_rows for r in recordings)
    print(f"SKAB selection ({args.layout} layout): {len(recordings)} recordings from {args.source.name}, "
          f"{n_faults} injected faults, {labelled}/{tested} test rows labelled; runs in {exp_dir}", flush=True)
    print(skab.header(), flush=True)
    rows = run_candidates(args, folder, recordings[0].train_rows, exp_dir)
    chosen = select(rows, {c.config: shipped_candidate(c.config) for c in args.candidates})
    print("\nSelection (per config: the candidate whose best score has the highest mean VUS-PR; the shipped one "
          f"is kept unless beaten by more than {MARGIN}):", flush=True)
    for config, pick in chosen.items():
        shipped = "-" if pick["shipped_vus_pr"] is None else f"{pick['shipped_vus_pr']:.3f}"
        print(f"  {config}: {pick['chosen']} (best score {pick['score']}, {pick['vus_pr']:.3f}; shipped "
              f"{pick['shipped']} {shipped})", flush=True)
    return {"layout": args.layout, "copies": args.copies, "recordings": len(recordings), "faults": n_faults,
            "rows": rows, "selection": chosen}


def main(argv: list[str] | None = None) -> int:
    return quality.cli_main(run_selection, parse_args(argv), "json_out", timed="selection")

if __name__ == "__main__":
    sys.exit(main())
