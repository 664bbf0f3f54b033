"""Are identical runs bit-identical on this machine? N runs of one config, K at a time, compared bit for bit.

Each run is ``python main.py CONFIG --set ...`` in a fresh process (the public entry, as in
:mod:`benchmarks.quality`), in its own folder under one experiments folder, with the same config
and seed. A row prints as each run finishes: its weights digest (``checkpoints/last.pt``), its
``out/scores.csv`` digest, the first epoch's losses as stored (every bit) and the recorded thread
count and source digest (``environment.json``). The summary groups the runs by (weights, scores);
for every run outside the largest group it names the first epoch and history key where it departs
from that group, and the recorded numerics settings (with the data and start-weight digests), source
digest, resolved config (``config.json``) or command lines that differ.

By default the runs are tiny (200 windows of 25 steps, a 32-unit VAE, 2 epochs, no plots or
baselines) and all start at once, like the odd run in the README; ``--full`` runs the
config as it is. The exit code is 0 when every run is identical, 1 when not.

Usage:
    python benchmarks/determinism.py                                  # 11 tiny vae_converter runs at once
    python benchmarks/determinism.py --runs 6 --parallel 2 --set trainer.epochs=5
    python benchmarks/determinism.py --full --runs 4 --set trainer.epochs=3 --threads 1
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import quality  # noqa: E402
from utils.core.errors import UserError  # noqa: E402
from utils.runs.checkpoints import load_checkpoint  # noqa: E402
from utils.runtime.reproducibility import state_digest  # noqa: E402
from utils.core.paths import user_path  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = ["data.n_samples=200", "data.time_steps=25", "trainer.epochs=2", "model.hidden_sizes=[32]",
        "model.latent_dim=4", "evaluation.baselines=[]"]
ALWAYS = ["trainer.progress_bar=false", "evaluation.make_plots=false"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=user_path, default=REPO_ROOT / "configs" / "vae_converter.json")
    p.add_argument("--runs", type=int, default=11, help="identical runs (default %(default)s)")
    p.add_argument("--parallel", type=int, default=0, help="runs at a time (default 0: all at once)")
    p.add_argument("--full", action="store_true", help="the config's own sizes, not the tiny ones")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="config override for every run, after the tiny ones (repeatable)")
    p.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS of each run (0: inherited)")
    p.add_argument("--experiments-dir", type=user_path, help="keep the run folders here (default: temporary)")
    p.add_argument("--out", type=user_path, metavar="FILE", help="also write every run's record as JSON")
    args = p.parse_args(argv)
    args.verbose = False  # benchmarks.quality.train_config: the runs' own output stays hidden
    if args.runs < 2 or args.parallel < 0 or args.threads < 0:
        p.error("--runs must be >= 2, --parallel and --threads >= 0")
    quality.check_results_path(p, args.out)
    return args


def read_run(run_dir: Path) -> dict[str, Any]:
    """What one finished run says about its bits: digests, loss history, recorded numerics, source and argv."""
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    invocation = json.loads((run_dir / "environment.json").read_text(encoding="utf-8"))["invocations"][-1]
    scores = hashlib.sha1((run_dir / "out" / "scores.csv").read_bytes()).hexdigest()[:12]
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    config = {key: value for key, value in config.items() if key not in ("exp_name", "experiments_dir")}
    return {"run": run_dir.name, "weights": state_digest(ckpt["model"]), "scores": scores,
            "history": ckpt["history"], "numerics": invocation.get("numerics", {}),
            "source": invocation.get("source_sha256", ""), "argv": invocation.get("argv", []), "config": config}


def differing_keys(ours: Any, theirs: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two resolved configs differ (``[]`` when equal)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return [found for key in sorted(set(ours) | set(theirs))
                for found in differing_keys(ours.get(key), theirs.get(key), f"{prefix}{key}.")]
    return [] if ours == theirs else [prefix.rstrip(".")]


def first_difference(history: dict[str, list[float]], reference: dict[str, list[float]]) -> str | None:
    """Where a loss history first departs from a reference, e.g. ``"epoch 1, val"``; None if identical.

    Floats compare exactly (``repr`` round-trips every bit); the earliest epoch wins, then the key order.
    """
    epochs = max((len(v) for v in (*history.values(), *reference.values())), default=0)
    for epoch in range(epochs):
        for key in sorted(set(history) | set(reference)):
            ours, theirs = history.get(key, []), reference.get(key, [])
            mine = repr(ours[epoch]) if epoch < len(ours) else None
            other = repr(theirs[epoch]) if epoch < len(theirs) else None
            if mine != other:
                return f"epoch {epoch + 1}, {key}: {mine} vs {other}"
    return None


def group_runs(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Runs grouped by (weights, scores) digest, the largest group first (ties: the earliest run)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in sorted(records, key=lambda r: r["run"]):
        groups.setdefault((record["weights"], record["scores"]), []).append(record)
    return sorted(groups.values(), key=lambda g: -len(g))


def _without_run_name(argv: list[str]) -> list[str]:
    return [a for a in argv if not a.startswith(("exp_name=", "experiments_dir="))]


def explain(record: dict[str, Any], reference: dict[str, Any]) -> list[str]:
    """How a differing run's record differs from a reference run's: history, numerics, source, config, command."""
    found = [f"history departs at {first_difference(record['history'], reference['history']) or 'no epoch'}"]
    ours, theirs = record["numerics"], reference["numerics"]
    found += [f"numerics.{key}: {ours.get(key)!r} vs {theirs.get(key)!r}"
              for key in sorted(set(ours) | set(theirs)) if ours.get(key) != theirs.get(key)]
    if record["source"] != reference["source"]:
        found.append(f"source_sha256: {record['source'][:12]} vs {reference['source'][:12]} (other code)")
    keys = differing_keys(record.get("config", {}), reference.get("config", {}))
    if keys:
        found.append(f"config.json differs in {', '.join(keys)} (the config file changed between the starts?)")
    if _without_run_name(record["argv"]) != _without_run_name(reference["argv"]):
        found.append("argv differs beyond the run name")
    return found


def print_record(record: dict[str, Any], seconds: float) -> None:
    history = record["history"]
    first = "  ".join(f"{key} {values[0]!r}" for key, values in sorted(history.items()) if key in ("train", "val"))
    print(f"{record['run']}  {seconds:6.1f} s  weights {record['weights']}  scores {record['scores']}  "
          f"threads {record['numerics'].get('threads')}  source {record['source'][:12]}  epoch 1: {first}",
          flush=True)


def summarise(records: list[dict[str, Any]]) -> bool:
    """Print the groups and what sets every differing run apart; returns whether all runs are identical."""
    groups = group_runs(records)
    reference = groups[0][0]
    print(f"\n{len(records)} runs, {len(groups)} distinct (weights, scores):")
    for group in groups:
        print(f"  {len(group):3d} x weights {group[0]['weights']} scores {group[0]['scores']}: "
              f"{', '.join(r['run'] for r in group)}")
    for group in groups[1:]:
        for record in group:
            print(f"  {record['run']} vs {reference['run']}: " + "; ".join(explain(record, reference)))
    identical = len(groups) == 1
    print("all bit-identical" if identical else "NOT all bit-identical", flush=True)
    return identical


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = [*([] if args.full else TINY), *args.overrides, *ALWAYS]
    parallel = args.parallel or args.runs
    with tempfile.TemporaryDirectory(prefix="determinism-") as tmp:
        exp_dir = Path(args.experiments_dir or tmp)
        exp_dir.mkdir(parents=True, exist_ok=True)
        print(f"{args.runs} runs of {args.config.name} ({'as configured' if args.full else 'tiny'}), "
              f"{parallel} at a time, overrides: {' '.join(overrides)}", flush=True)
        records = []
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            futures = {pool.submit(quality.train_config, args.config, overrides, exp_dir / f"run_{i:02d}", args):
                       exp_dir / f"run_{i:02d}" for i in range(args.runs)}
            for future in as_completed(futures):
                try:
                    seconds = future.result()["seconds"]
                except (RuntimeError, UserError) as err:
                    print(f"error: {err}", file=sys.stderr, flush=True)
                    return 2
                record = read_run(futures[future])
                print_record(record, seconds)
                records.append(record)
        identical = summarise(records)
    quality.write_results(args.out, records)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
