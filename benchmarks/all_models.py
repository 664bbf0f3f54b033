"""Every model and baseline on every data set, side by side: the README's comparison table.

One command runs :mod:`benchmarks.converter_benchmark` (every converter config, at the shipped
anomaly magnitude and a hard one) and :mod:`benchmarks.ecg5000_benchmark` (every ECG5000 config,
merged protocol on the shared TRAIN file) over the same seeds, prints their rows as they are
measured and their own tables, then one Markdown table per data set: mean ± std over seeds of
ROC AUC, PR AUC, F1 at the deployed (conformal, validation-normal) threshold, and the time per run
(a config's whole run, start-up included; a baseline's fit and score inside its run).

Usage:
    python benchmarks/all_models.py                       # 5 seeds, converter magnitudes 6 and 2, ECG5000
    python benchmarks/all_models.py --seeds 3 --out experiments/all_models.json
    python benchmarks/all_models.py --quick               # a smoke run: 1 seed, 2 epochs, small data
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import converter_benchmark, ecg5000_benchmark, quality  # noqa: E402
from benchmarks import quality_tables as tables  # noqa: E402
from utils.core.paths import user_path  # noqa: E402

QUICK = ["--set", "trainer.epochs=2"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--magnitudes", type=float, nargs="+", default=[6.0, 2.0],
                   help="converter anomaly magnitudes (default: the shipped 6 and a hard 2)")
    p.add_argument("--data-dir", default=str(ecg5000_benchmark.DEFAULT_DATA_DIR))
    p.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 2 epochs, 600 converter windows")
    p.add_argument("--only", choices=("converter", "ecg5000"), default=None, help="run one data set's half only")
    p.add_argument("--experiments-dir", default=None)
    p.add_argument("--out", type=user_path, default=None, help="write all results as JSON")
    args = p.parse_args(argv)
    quality.check_results_path(p, args.out)
    return args


def benchmark_argv(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The command lines of the converter and the ECG5000 benchmark."""
    common = ["--seeds", str(1 if args.quick else args.seeds), *(QUICK if args.quick else [])]
    if args.experiments_dir:
        common += ["--experiments-dir", args.experiments_dir]
    converter = [*common, "--magnitudes", *[f"{m:g}" for m in args.magnitudes],
                 *(["--set", "data.n_samples=600"] if args.quick else [])]
    return converter, [*common, "--data-dir", args.data_dir]


def seconds_per_method(runs: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Mean ± std time per run of every method: its config's run, or the baselines' fit and score."""
    times: dict[str, list[float]] = {}
    for measured in runs:
        for method in measured["methods"]:
            stem = method.split(": ", 1)[0]
            run = measured["runs"].get(stem) or next(iter(measured["runs"].values()))
            key = "seconds" if stem in measured["runs"] else "baseline_seconds"
            times.setdefault(method, []).append(run[key])
    return {method: tables.mean_std(values) for method, values in times.items()}


def markdown_table(title: str, agg: dict[str, Any], seconds: dict[str, dict[str, float | None]]) -> str:
    """One data set's rows: ROC AUC, PR AUC, F1 and time per run, mean ± std over seeds."""
    lines = [f"**{title}**", "", "| method | ROC AUC | PR AUC | F1 | time per run (s) |", "|---|---:|---:|---:|---:|"]
    for method, stats in agg["methods"].items():
        time = tables.cell(seconds[method], ".1f") if method in seconds else "-"
        lines.append(f"| {method} | {tables.cell(stats['roc_auc'])} | {tables.cell(stats['pr_auc'])} | "
                     f"{tables.cell(stats['f1'])} | {time} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    converter_argv, ecg_argv = benchmark_argv(args)
    results: dict[str, Any] = {}
    blocks = []
    if args.only in (None, "converter"):
        converter = results["converter"] = converter_benchmark.run_benchmark(
            converter_benchmark.parse_args(converter_argv))
        per_mag = len(converter["seeds"])
        for i, mag in enumerate(args.magnitudes):
            runs = converter["runs"][i * per_mag:(i + 1) * per_mag]
            blocks.append(markdown_table(f"Converter, anomaly magnitude {mag:g} ({per_mag} seeds)",
                                         converter["summary"][f"{mag:g}"], seconds_per_method(runs)))
    if args.only in (None, "ecg5000"):
        ecg = results["ecg5000"] = ecg5000_benchmark.run_benchmark(ecg5000_benchmark.parse_args(ecg_argv))
        blocks.append(markdown_table(f"ECG5000, merged protocol ({len(ecg['seeds'])} seeds)", ecg["summary"],
                                     seconds_per_method(ecg["runs"])))
    print("\n=== every model and baseline, mean ± std over seeds ===\n")
    print("\n\n".join(blocks), flush=True)
    return {**results, "markdown": "\n\n".join(blocks)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return quality.cli_main(run, args)


if __name__ == "__main__":
    sys.exit(main())
