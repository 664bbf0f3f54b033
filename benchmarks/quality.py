"""What the quality benchmarks share: train configs over seeds, collect their scores and baselines, write results.

``converter_benchmark.py`` and ``ecg5000_benchmark.py`` run every config of their
data set (``--configs``, default: every ``configs/*.json`` with that ``data.name``)
over seeds. Each run goes through the command-line entry only
(``python main.py CONFIG --set ...``, a fresh process: ``benchmarks`` ranks below
``main`` and does not import it) and is read back from its run folder
(``out/metrics.json``): every score of the run is a method, labelled
``<config stem>: <score>``. The baselines are those every run computes itself
(``evaluation.baselines``, set from ``--baselines``; :func:`agents.evaluation.run_baselines`):
fitted on the run's scaled training normals, thresholded by the same conformal rule on its
validation normals, scored on its test windows. Configs that resolve to the same data, seed,
scaler, false-alarm rate and baselines share one set of baseline rows (from the first of
them); when they differ, each set is labelled with its first config (``... [lstm_ecg5000]``).

Overrides: ``--set SECTION.KEY=VALUE`` applies to every config (a key that some
config's model does not take is an error naming that config), ``--set-for STEM
SECTION.KEY=VALUE`` to the config ``configs/STEM.json`` only. The benchmark sets
``seed``, ``exp_name``, ``experiments_dir``, ``trainer.progress_bar`` and
``evaluation.make_plots`` itself. Every (run, method) row is printed as soon as it
is measured; the tables of mean ± std over seeds (:mod:`benchmarks.quality_tables`) follow.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from benchmarks.quality_tables import KEYS, aggregate, print_row, summarise
from agents.detector.baselines import BASELINE_NAMES
from utils.core.paths import user_path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS_DIR = REPO_ROOT / "configs"
Job = tuple[str, int, list[str]]  # (tag printed before its rows, seed, extra overrides)


def configs_for(data_name: str, folder: Path = CONFIGS_DIR) -> list[Path]:
    """Every ``folder/*.json`` whose ``data.name`` is ``data_name``, sorted by name.

    Raises:
        ValueError: A file there is not a JSON object (named, rather than left out unseen).
    """
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8")).get("data", {})
        except (ValueError, AttributeError) as err:
            raise ValueError(f"{path}: not a JSON config ({err})") from None
        if isinstance(data, dict) and data.get("name") == data_name:
            found.append(path)
    return found


def add_common_args(parser: argparse.ArgumentParser, data_name: str) -> None:
    """Options both benchmarks take (configs, seeds, overrides, baselines, output)."""
    parser.add_argument("--configs", nargs="+", type=user_path, default=None, metavar="FILE",
                        help=f"configs to benchmark (default: every configs/*.json with data.name {data_name!r})")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 5)")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run from here (default %(default)s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="config override for every config, repeatable")
    parser.add_argument("--set-for", dest="set_for", nargs=2, action="append", default=[],
                        metavar=("STEM", "SECTION.KEY=VALUE"),
                        help="override for configs/STEM.json only, repeatable (e.g. --set-for vae_converter "
                        "model.hidden_sizes=[32])")
    parser.add_argument("--baselines", nargs="+", default=list(BASELINE_NAMES), choices=BASELINE_NAMES,
                        help="baselines to fit (default: all)")
    parser.add_argument("--experiments-dir", type=user_path, default=None,
                        help="keep the run folders here (default: a temporary folder, deleted at the end)")
    parser.add_argument("--out", type=user_path, default=None, metavar="FILE", help="also write all results as JSON")
    parser.add_argument("--threads", type=int, default=1,
                        help="OMP_NUM_THREADS of each run (default 1: small models on a shared CPU run much "
                        "faster without oversubscribed threads; 0 keeps the environment's)")
    parser.add_argument("--verbose", action="store_true", help="show the runs' own console logs")
    parser.set_defaults(default_overrides=[])  # a benchmark's own overrides, applied before --set


def check_common_args(parser: argparse.ArgumentParser, args: argparse.Namespace, data_name: str,
                      default_seeds: int = 5) -> None:
    """Resolve ``--configs`` and ``--seeds`` and check the common options (``parser.error`` on a mistake)."""
    args.seeds = default_seeds if args.seeds is None else args.seeds
    try:
        args.configs = [Path(c) for c in args.configs] if args.configs else configs_for(data_name)
    except ValueError as err:
        parser.error(str(err))
    if not args.configs:
        parser.error(f"no config with data.name {data_name!r} in {CONFIGS_DIR}")
    stems = [c.stem for c in args.configs]
    missing = [str(c) for c in args.configs if not c.is_file()]
    if missing or len(set(stems)) < len(stems):
        parser.error(f"configs not found: {missing}" if missing else f"two configs share a name: {stems}")
    unknown = sorted({stem for stem, _ in args.set_for} - set(stems))
    if unknown:
        parser.error(f"--set-for names {unknown}, not among the configs {stems}")
    if args.seeds < 1 or args.first_seed < 0 or args.threads < 0:
        parser.error("--seeds must be >= 1, --first-seed and --threads >= 0")
    args.seed_list = list(range(args.first_seed, args.first_seed + args.seeds))
    check_results_path(parser, args.out)


def overrides_for(args: argparse.Namespace, config: Path, extra: list[str], seed: int) -> list[str]:
    """Overrides of one run: the benchmark's defaults, ``--set``, ``--set-for``, then ``extra`` and the seed."""
    own = [item for stem, item in args.set_for if stem == config.stem]
    return [*args.default_overrides, *args.overrides, *own, *extra, f"seed={seed}",
            "trainer.progress_bar=false", "evaluation.make_plots=false"]


def load_run_config(config: Path, overrides: list[str]) -> Any:
    """The resolved config of one run; a ConfigError names the config and how to aim an override."""
    import agents  # noqa: F401  (fills the registries)
    from utils.core.config import load_config
    from utils.core.errors import ConfigError

    try:
        return load_config(config, overrides)
    except ConfigError as err:
        raise ConfigError(f"{err}\n(--set applies to every config; give a key for {config.stem} alone with "
                          f"--set-for {config.stem} SECTION.KEY=VALUE)") from None


def train_config(config: Path, overrides: list[str], run_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train one config with ``python main.py CONFIG --set ...`` into ``run_dir``.

    A fresh process per run, in this working directory (relative data paths mean
    the same to the run and to the baselines): the command line is the public
    entry, and each run's wall time (start-up included) is what a user waits
    for. ``--threads`` becomes its ``OMP_NUM_THREADS``; its console output is
    shown with ``--verbose`` only.

    Returns:
        ``{"metrics": out/metrics.json, "seconds": wall time}``.

    Raises:
        UserError: The run exited 2 (its message); KeyboardInterrupt: it was stopped (130, 143);
        RuntimeError: any other failure, with the end of its output.
    """
    from utils.core.errors import UserError

    cmd = [sys.executable, str(REPO_ROOT / "main.py"), str(config)]
    for item in [*overrides, f"experiments_dir={run_dir.parent}", f"exp_name={run_dir.name}"]:
        cmd += ["--set", item]
    env = {**os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {})}
    pipe = None if args.verbose else subprocess.PIPE
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=pipe, stderr=pipe, text=True, check=False)
    seconds = time.perf_counter() - start
    said = (proc.stderr or "").strip() or "(its output is above)"
    if proc.returncode == 2:
        raise UserError(f"{config.stem}: {said.removeprefix('error: ')}")
    if proc.returncode in (130, 143):
        raise KeyboardInterrupt(f"{config.stem}: stopped ({said})")
    if proc.returncode != 0:
        raise RuntimeError(f"{config.stem}: main.py exited {proc.returncode}:\n{said[-4000:]}")
    metrics = json.loads((run_dir / "out" / "metrics.json").read_text(encoding="utf-8"))
    return {"metrics": metrics, "seconds": seconds}


def _setting(cfg: Any) -> str:
    """What the baselines depend on: data section, seed, scaler, false-alarm rate and baselines."""
    return json.dumps({"data": cfg.data, "seed": cfg.seed, "scaler": cfg.evaluation.scaler,
                       "alpha": cfg.evaluation.false_alarm_rate, "baselines": cfg.evaluation.baselines},
                      sort_keys=True, default=str)


@dataclass(frozen=True)
class ResultView:
    """Which results of ``metrics.json`` a benchmark reads, and how it keeps and prints one of them.

    Attributes:
        pick: ``metrics -> ({score: result}, {baseline: result})``.
        summarise: one result -> the numbers kept (see :func:`benchmarks.quality_tables.summarise`).
        print_row: ``(tag, method, summary, note)`` -> prints the row at once.
    """

    pick: Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]
    summarise: Callable[[dict[str, Any]], dict[str, Any]]
    print_row: Callable[[str, str, dict[str, Any], str], None]


#: The window metrics every run writes (``scores`` and ``baselines``).
WINDOWS = ResultView(lambda m: (m["scores"], m["baselines"]), summarise, print_row)


def measure(args: argparse.Namespace, tag: str, seed: int, extra: list[str], exp_dir: Path,
            view: ResultView = WINDOWS) -> dict[str, Any]:
    """Train every config for one seed (and ``extra`` overrides); the baselines come from the runs themselves
    (``metrics.json``: fitted, thresholded and scored by the run on its own split). ``view`` says which
    results are read (default: the window metrics).

    Returns:
        ``{"tag", "seed", "methods": {label: summary}, "runs": {stem: {"seconds", "epochs", "best_epoch",
        "splits", "false_alarm_rate", "baseline_seconds"}}}``.
    """
    extra = [*extra, f"evaluation.baselines={json.dumps(list(args.baselines))}"]
    cfgs = {c: load_run_config(c, overrides_for(args, c, extra, seed)) for c in args.configs}
    out: dict[str, Any] = {"tag": tag, "seed": seed, "methods": {}, "runs": {}}
    settings: dict[str, list[Path]] = {}
    for config, cfg in cfgs.items():
        settings.setdefault(_setting(cfg), []).append(config)
    for config, cfg in cfgs.items():
        folder = exp_dir / re.sub(r"[^A-Za-z0-9.]+", "_", f"{tag} {config.stem}")
        run = train_config(config, overrides_for(args, config, extra, seed), folder, args)
        metrics = run["metrics"]
        scores, baselines = view.pick(metrics)
        out["runs"][config.stem] = {"seconds": run["seconds"], "epochs": metrics["training"]["epoch"],
                                    "best_epoch": metrics["training"]["best_epoch"], "splits": metrics["splits"],
                                    "false_alarm_rate": metrics["threshold"]["false_alarm_rate"],
                                    "baseline_seconds": metrics["seconds"]["baselines"]}
        for score, result in scores.items():
            label = f"{config.stem}: {score}"
            out["methods"][label] = view.summarise(result)
            view.print_row(tag, label, out["methods"][label],
                      f"run {run['seconds']:.1f} s, epochs {metrics['training']['epoch']}")
        same = settings[_setting(cfg)]
        if same[0] != config:
            continue  # the same split's baselines are printed once, from the first config
        suffix = f" [{config.stem}]" if len(settings) > 1 else ""
        for name, result in baselines.items():
            label = name + suffix
            out["methods"][label] = view.summarise(result)
            view.print_row(tag, label, out["methods"][label], f"all baselines {metrics['seconds']['baselines']:.1f} s")
    return out


def run_jobs(args: argparse.Namespace, jobs: list[Job], prefix: str, view: ResultView = WINDOWS
             ) -> list[dict[str, Any]]:
    """:func:`measure` every job in a run folder (temporary unless ``--experiments-dir``)."""
    exp_dir = Path(args.experiments_dir).resolve() if args.experiments_dir else Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return [measure(args, tag, seed, extra, exp_dir, view) for tag, seed, extra in jobs]
    finally:
        if args.experiments_dir is None:
            shutil.rmtree(exp_dir, ignore_errors=True)


def run_magnitude_sweep(args: argparse.Namespace, title: str, prefix: str, view: ResultView = WINDOWS,
                        keys: tuple[str, ...] = KEYS) -> tuple[list[dict[str, Any]], dict[float, dict[str, Any]]]:
    """Every (``args.magnitudes`` x seed) job (``data.anomaly_magnitude``), after a header line naming ``title``.

    Returns:
        ``(measured, {magnitude: mean ± std over the seeds of the ``keys``})``.
    """
    print(f"{title}: configs {' '.join(c.stem for c in args.configs)}, seeds {args.seed_list}, "
          f"magnitudes {' '.join(f'{m:g}' for m in args.magnitudes)}, baselines {' '.join(args.baselines)}, "
          f"threads per run {args.threads or 'inherited'}, overrides "
          f"{[*args.default_overrides, *args.overrides] or 'none'}, per config {args.set_for or 'none'}", flush=True)
    jobs = [(f"mag {m:g} seed {s}", s, [f"data.anomaly_magnitude={m}"]) for m in args.magnitudes
            for s in args.seed_list]
    measured = run_jobs(args, jobs, prefix, view)
    per_mag = len(args.seed_list)
    return measured, {m: aggregate(measured[i * per_mag:(i + 1) * per_mag], keys)
                      for i, m in enumerate(args.magnitudes)}


def check_results_path(parser: argparse.ArgumentParser, path: str | Path | None, option: str = "--out") -> None:
    """Refuse a results file that could not be written before any run is made (``parser.error``): a folder, a
    device, a file inside a run folder, a path under a file; else hours of runs would end in a traceback."""
    if path is None:
        return
    from utils.runs.outputs import OutputError, check_output

    try:
        check_output(path, overwrite=True, option=option, example="results.json")
        blocking = next((p for p in Path(path).parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise OutputError(f"{option} {path}: {blocking} is a file, not a folder; choose another path")
    except OutputError as err:
        parser.error(str(err))


def write_results(path: str | Path | None, results: Any) -> None:
    """Write ``results`` as strict JSON to ``path`` (nothing when None): atomically (a stopped benchmark leaves
    no half-written file), its missing folders made, NaN and infinities as null."""
    if path is None:
        return
    from utils.metrics.window_metrics import to_jsonable
    from utils.runs.outputs import atomic_output

    with atomic_output(path) as handle:
        handle.write(json.dumps(to_jsonable(results), indent=2, allow_nan=False) + "\n")
    print(f"Results written to {path}", flush=True)


def options_of(args: argparse.Namespace) -> dict[str, Any]:
    """What a benchmark ran with, for the head of its JSON results."""
    return {"configs": [str(c) for c in args.configs], "overrides": [*args.default_overrides, *args.overrides],
            "set_for": args.set_for, "seeds": args.seed_list, "baselines": args.baselines}


def parse_sweep_args(argv: list[str] | None, description: str, data_name: str, magnitudes: list[float],
                     default_seeds: int, quick: dict[str, Any]) -> argparse.Namespace:
    """Options of a benchmark that sweeps anomaly magnitudes: the common ones, ``--magnitudes`` and ``--quick``.

    Args:
        argv: the arguments (None: the command line).
        description: the benchmark's ``--help`` line.
        data_name: ``data.name`` of its configs.
        magnitudes: the default sweep.
        default_seeds: seeds unless ``--seeds`` or ``--quick``.
        quick: ``--quick``'s ``seeds``, ``magnitudes`` and ``overrides``.
    """
    spelled, quick_spelled = (" ".join(f"{m:g}" for m in mags) for mags in (magnitudes, quick["magnitudes"]))
    p = argparse.ArgumentParser(description=description)
    add_common_args(p, data_name)
    p.add_argument("--magnitudes", type=float, nargs="+", default=None,
                   help=f"anomaly magnitudes in noise stds (default {spelled}; {quick_spelled} with --quick)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: {quick['seeds']} seed(s) (unless --seeds), magnitudes {quick_spelled}, "
                        f"{' '.join(quick['overrides'])}")
    args = p.parse_args(argv)
    if args.magnitudes is None:
        args.magnitudes = list(quick["magnitudes"] if args.quick else magnitudes)
    if args.quick:
        args.default_overrides = list(quick["overrides"])
    check_common_args(p, args, data_name, default_seeds=quick["seeds"] if args.quick else default_seeds)
    if any(m <= 0 for m in args.magnitudes):
        p.error("every magnitude must be > 0")
    return args


def sweep_results(args: argparse.Namespace, summary: dict[float, Any], runs: list[Any]) -> dict[str, Any]:
    """The JSON results of a magnitude sweep: the options, the per-magnitude aggregates and every run."""
    return {**options_of(args), "magnitudes": args.magnitudes,
            "summary": {f"{m:g}": agg for m, agg in summary.items()}, "runs": runs}


def cli_main(run: Callable[[argparse.Namespace], dict[str, Any]], args: argparse.Namespace,
             out_attr: str = "out", timed: str | None = None) -> int:
    """Run a benchmark and write its results to ``args.<out_attr>`` (``--out``); a user's mistake (config, data)
    prints one line and returns 2. ``timed``: after the run, print ``<timed> time <seconds> s``."""
    from utils.core.errors import UserError

    started = time.perf_counter()
    try:
        result = run(args)
        if timed:
            print(f"\n{timed} time {time.perf_counter() - started:.0f} s", flush=True)
        write_results(getattr(args, out_attr), result)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
