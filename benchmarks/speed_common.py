"""Shared pieces of the speed benchmark: table rows, interleaved timing, memory, agents.

Every figure is measured next to a reference in the same process (or the same
run), alternating the two (A B B A ...) so that load from other processes on a
shared machine hits both alike; rows report medians and the median of the
per-repeat ratios.
"""
from __future__ import annotations

import copy
import math
import os
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_ECG = REPO_ROOT.parent / "shared" / "data" / "ECG5000"


@dataclass
class Row:
    """One table row: ``ratio`` is ours / reference unless ``note`` says otherwise."""

    item: str
    name: str
    ours: float
    reference: float
    unit: str
    ratio: float
    ref_name: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fmt(value: float, unit: str) -> str:
    """Number with its unit, 3-4 significant digits."""
    if not math.isfinite(value):
        return f"{value} {unit}"
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return f"{text} {unit}".strip()


def format_row(row: Row) -> str:
    """One line of the result table."""
    verdict = "" if row.met is None else ("  met" if row.met else "  NOT MET")
    return (f"{row.item:<5} {row.name:<50} {fmt(row.ours, row.unit):>16} {fmt(row.reference, row.unit):>16} "
            f"{row.ratio:>8.3g}  {row.target}{verdict}")


def print_table(rows: list[Row], out: Any = None) -> None:
    """The result table: one line per row, then the notes."""
    out = out or sys.stdout
    header = f"{'item':<5} {'measurement':<50} {'ours':>16} {'reference':>16} {'ratio':>8}  target"
    print(header, file=out)
    print("-" * len(header) + "-" * 14, file=out)
    for row in rows:
        print(format_row(row), file=out)
    print("\nreferences and notes:", file=out)
    for row in rows:
        print(f"  [{row.item}] {row.name}: reference = {row.ref_name}" + (f"; {row.note}" if row.note else ""),
              file=out)


def timed(fn: Callable[[], Any]) -> float:
    """Wall seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleave_many(fns: dict[str, Callable[[], float]], repeats: int, warmup: bool = True) -> dict[str, list[float]]:
    """Seconds of ``repeats`` calls of each callable, the order reversed every other round (A B C, C B A, ...).

    Each callable returns its own seconds, so per-call setup stays outside the figure.
    """
    if warmup:
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for rep in range(repeats):
        for name, fn in (list(fns.items()) if rep % 2 == 0 else list(fns.items())[::-1]):
            times[name].append(fn())
    return times


def interleave(ours: Callable[[], float], ref: Callable[[], float], repeats: int,
               warmup: bool = True) -> tuple[list[float], list[float]]:
    """:func:`interleave_many` of two callables: (ours seconds, reference seconds)."""
    times = interleave_many({"ours": ours, "ref": ref}, repeats, warmup)
    return times["ours"], times["ref"]


def throughput_row(item: str, name: str, ref_name: str, work: float | tuple[float, float], unit: str,
                   t_ours: list[float], t_ref: list[float], target: float | None = None, scale: float = 1.0,
                   note: str = "") -> Row:
    """Row of work/second (times ``scale``): medians of both and the median of the per-repeat ratios.

    ``work`` is the amount done per call, one number for both or (ours, reference).
    """
    w_ours, w_ref = work if isinstance(work, tuple) else (work, work)
    ratios = [(w_ours / o) / (w_ref / r) for o, r in zip(t_ours, t_ref)]
    ratio = statistics.median(ratios)
    spread = f"ratio over {len(ratios)} repeats: min {min(ratios):.3g}, max {max(ratios):.3g}"
    return Row(item, name, scale * w_ours / statistics.median(t_ours), scale * w_ref / statistics.median(t_ref),
               unit, ratio, ref_name=ref_name, target="" if target is None else f">= {target:g}",
               met=None if target is None else ratio >= target, note="; ".join(filter(None, [spread, note])))


# ----- memory -------------------------------------------------------------------------
def rss_mib() -> float:
    """Current resident set size of this process."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (Linux clear_refs 5); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """Peak resident set size of this process (since start or the last reset)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----- agents -------------------------------------------------------------------------
def ecg_overrides(data_dir: Path | None = None) -> list[str]:
    """Overrides that run the ECG5000 config on the TRAIN file of ``data_dir`` (speed.py's ``--data-dir``); without
    it on the shared TRAIN file when data/ECG5000 lacks the full set."""
    local = REPO_ROOT / "data" / "ECG5000"
    if data_dir is None and (local / "ECG5000_TRAIN.txt").exists() and (local / "ECG5000_TEST.txt").exists():
        return []
    return ["data.protocol=merged", "data.download=false", f"data.data_dir={data_dir or SHARED_ECG}"]


CONFIGS = {"vae": "configs/vae_converter.json", "lstm": "configs/lstm_ecg5000.json"}


def config_overrides(which: str, quick: bool, data_dir: Path | None = None) -> list[str]:
    """Overrides of a default config for the benchmark (tiny data with ``quick``; ECG5000 from ``data_dir``)."""
    if which == "vae":
        return ["data.n_samples=400"] if quick else []
    return ecg_overrides(data_dir)


def build_agent(which: str, experiments_dir: Path, quick: bool, extra: list[str] = (), writer: bool = True,
                data_dir: Path | None = None) -> Any:
    """An agent of a default config, ready to ``train()``: run folder, log file, TensorBoard writer."""
    import agents  # noqa: F401  (fills the registries)
    from agents.hooks import open_summary_writer
    from utils.core.config import load_config
    from utils.runtime.logger import setup_logging
    from utils.core.registry import AGENTS
    from utils.runs.run_folder import check_run_dir, create_run_dir

    name = f"speed_{which}_{os.getpid()}_{time.monotonic_ns()}"
    overrides = [f"experiments_dir={experiments_dir}", f"exp_name={name}", *config_overrides(which, quick, data_dir), *extra]
    config = load_config(str(REPO_ROOT / CONFIGS[which]), overrides)
    run_dir = check_run_dir(config, False)
    agent = AGENTS.get(config.agent)(config, run_dir)
    create_run_dir(config, False, argv=["benchmarks/speed.py"])
    setup_logging(agent.folder.train_log)
    if writer:
        agent.writer = open_summary_writer(agent.folder.summaries, None, True)
    agent.fresh_state = copy.deepcopy(agent.state)
    return agent


class FakeTTY:
    """A stderr that says it is a terminal, so tqdm draws its bar (to /dev/null) as it would for a user."""

    def __init__(self) -> None:
        self._sink = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (closed by close())

    def write(self, text: str) -> int:
        return self._sink.write(text)

    def flush(self) -> None:
        self._sink.flush()

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._sink.fileno()

    def close(self) -> None:
        self._sink.close()
