"""Tables of the quality benchmarks: per-run summaries, mean ± std over seeds, aligned text tables.

A *summary* is what a benchmark keeps of one score's metrics (``out/metrics.json``
or :func:`utils.metrics.window_metrics.evaluate_scores`): :data:`KEYS` and the ROC AUC
per anomaly kind. Mean ± std use ddof=1 (0 for a single value) over the defined
values; undefined numbers (an AUC with one class) print as ``-``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

KEYS = ("roc_auc", "pr_auc", "base_rate", "f1", "precision", "recall", "fpr")


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """The benchmarked numbers of one score's metrics: :data:`KEYS` and ROC AUC per anomaly kind."""
    (tn, fp), _ = result["confusion_matrix"]
    out = {key: result.get(key) for key in KEYS if key != "fpr"}
    out["fpr"] = fp / max(1, tn + fp)
    out["per_kind"] = {kind: value["roc_auc"] for kind, value in result.get("per_kind", {}).items()}
    return out


def print_row(tag: str, method: str, summary: dict[str, Any], note: str) -> None:
    """One measured (run, method) row, printed at once."""
    cells = "  ".join(f"{label} {num(summary[key])}" for label, key in
                      (("ROC AUC", "roc_auc"), ("PR AUC", "pr_auc"), ("F1", "f1")))
    print(f"  {tag}  {method:<48} {cells}  ({note})", flush=True)


def mean_std(values: list[float | None]) -> dict[str, float | None]:
    """Mean and std (ddof=1; 0 for one value) of the defined values; None for both when none are."""
    vals = np.array([v for v in values if v is not None], dtype=float)
    if vals.size == 0:
        return {"mean": None, "std": None}
    return {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if vals.size > 1 else 0.0}


def aggregate(measured: list[dict[str, Any]], keys: tuple[str, ...] = KEYS) -> dict[str, Any]:
    """Mean ± std over the measurements of every method's numbers (``keys`` and ROC AUC per kind) and every
    config's run time."""
    methods = list(dict.fromkeys(m for r in measured for m in r["methods"]))
    out: dict[str, Any] = {"methods": {}, "runs": {}}
    for method in methods:
        rows = [r["methods"][method] for r in measured if method in r["methods"]]
        kinds = sorted({k for row in rows for k in row.get("per_kind", {})})
        out["methods"][method] = {key: mean_std([row[key] for row in rows]) for key in keys}
        out["methods"][method]["per_kind"] = {k: mean_std([row["per_kind"].get(k) for row in rows]) for k in kinds}
    for stem in dict.fromkeys(s for r in measured for s in r["runs"]):
        runs = [r["runs"][stem] for r in measured if stem in r["runs"]]
        out["runs"][stem] = {key: mean_std([run[key] for run in runs]) for key in ("seconds", "epochs", "best_epoch")}
    return out


def by_magnitude(summary: dict[float, dict[str, Any]], key: str) -> dict[str, list[str]]:
    """Rows = methods, cells = the mean of ``key`` at each magnitude of ``summary`` (in its order)."""
    methods = list(dict.fromkeys(m for agg in summary.values() for m in agg["methods"]))
    return {m: [num(agg["methods"].get(m, {}).get(key, {}).get("mean")) for agg in summary.values()]
            for m in methods}


def cell(stat: dict[str, float | None], fmt: str = ".3f") -> str:
    """``"mean ± std"``, or ``"-"`` when undefined."""
    return "-" if stat["mean"] is None else f"{stat['mean']:{fmt}} ± {stat['std']:{fmt}}"


def num(value: float | None) -> str:
    """``value`` with 3 decimals, ``"-"`` for None."""
    return "-" if value is None else f"{value:.3f}"


def format_table(first: str, headers: list[str], rows: dict[str, list[str]]) -> str:
    """Aligned text table: a left column of names under ``first``, right-aligned cells."""
    name_w = max(len(first), *map(len, rows))
    widths = [max(len(h), *(len(r[i]) for r in rows.values())) for i, h in enumerate(headers)]
    lines = ["  ".join([first.ljust(name_w)] + [h.rjust(w) for h, w in zip(headers, widths)])]
    lines.append("-" * len(lines[0]))
    lines += ["  ".join([name.ljust(name_w)] + [c.rjust(w) for c, w in zip(row, widths)]) for name, row in rows.items()]
    return "\n".join(lines)


def methods_table(agg: dict[str, Any], columns: list[tuple[str, str]], per_kind: bool = False) -> str:
    """Rows = methods; ``columns`` = (header, key of :data:`KEYS`), then ROC AUC per kind if asked."""
    kinds = sorted({k for m in agg["methods"].values() for k in m["per_kind"]}) if per_kind else []
    rows = {m: [cell(v[key]) for _, key in columns] + [cell(v["per_kind"].get(k, mean_std([]))) for k in kinds]
            for m, v in agg["methods"].items()}
    return format_table("method", [h for h, _ in columns] + [f"AUC[{k}]" for k in kinds], rows)


def runs_table(agg: dict[str, Any]) -> str:
    """Rows = configs: wall time per run (training + evaluation), epochs and best epoch."""
    rows = {stem: [cell(v["seconds"], ".1f"), cell(v["epochs"], ".0f"), cell(v["best_epoch"], ".0f")]
            for stem, v in agg["runs"].items()}
    return format_table("config", ["wall time per run (s)", "epochs", "best epoch"], rows)
