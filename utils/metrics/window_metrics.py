"""Detection metrics of window scores (scikit-learn), all plain JSON values; undefined ones are None. PR AUC comes
beside the base rate (a random detector's PR AUC); alarms are ``score > threshold``."""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix, precision_recall_fscore_support

from utils.core.arrays import as_scores, predict


def to_jsonable(obj: Any) -> Any:
    """Plain Python for ``json.dumps(allow_nan=False)``: NumPy as Python, tuples as lists, NaN/inf as None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (np.ndarray, np.generic)):  # a NumPy scalar's tolist() is its item()
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def roc_pr_auc(y: np.ndarray, s: np.ndarray) -> tuple[Optional[float], Optional[float]]:
    """(ROC AUC, PR AUC), both ``None`` unless both classes are present."""
    y, s = np.asarray(y) == 1, np.asarray(s, dtype=np.float64)
    n_pos = int(y.sum())
    if n_pos in (0, len(y)):
        return None, None
    # scikit-learn's roc_auc_score and average_precision_score without their per-call checks (~20 ms: minutes for a
    # folder of thousands of recordings): the curve's points at each distinct score, highest first
    order = np.argsort(-s, kind="mergesort")
    cuts = np.r_[np.flatnonzero(np.diff(s[order])), len(s) - 1]
    tps = np.cumsum(y[order])[cuts].astype(np.float64)
    fps = cuts + 1 - tps
    tpr, fpr = np.r_[0.0, tps / n_pos], np.r_[0.0, fps / (len(y) - n_pos)]
    roc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    return roc, float(np.sum(np.diff(tpr) * (tps / (tps + fps))))


def binary_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Metrics of (N,) ``scores`` (higher = more anomalous) against (N,) 0/1 ``y_true``: AUCs None with one class,
    precision None without alarms, recall and F1 None without anomalies, ``confusion_matrix`` ``[[tn, fp], [fn, tp]]``.
    """
    s, y = as_scores(scores), np.asarray(y_true)
    if y.shape != s.shape:
        raise ValueError(f"y_true must have shape ({len(s)},) like the scores, got {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold only 0 (normal) and 1 (anomaly)")
    y = y.astype(np.int64)
    y_pred = predict(s, threshold)
    roc_auc, pr_auc = roc_pr_auc(y, s)
    prec, rec, f1, _ = precision_recall_fscore_support(y, y_pred, labels=[0, 1], zero_division=0)
    report = classification_report(y, y_pred, labels=[0, 1], target_names=["normal", "anomaly"], output_dict=True,
                                   zero_division=0)
    return to_jsonable({
        "roc_auc": roc_auc, "pr_auc": pr_auc, "base_rate": float(y.mean()), "threshold": float(threshold),
        # undefined as 0/0 (as utils.metrics.stream_metrics says them), not scikit-learn's zero_division=0
        "precision": float(prec[1]) if y_pred.any() else None, "recall": float(rec[1]) if y.any() else None,
        "f1": float(f1[1]) if y.any() else None,
        "confusion_matrix": confusion_matrix(y, y_pred, labels=[0, 1]).tolist(), "classification_report": report,
        "n_samples": int(y.size), "n_anomalies": int(y.sum()),
    })


def per_kind_metrics(kind: np.ndarray, scores: np.ndarray, threshold: float,
                     normal_kind: str = "normal") -> dict[str, dict[str, Any]]:
    """``{kind: {"roc_auc", "pr_auc", "recall", "count"}}`` of each anomaly kind against the normals only (N,)."""
    s = as_scores(scores)
    k = np.asarray(kind).astype(str)
    if k.shape != s.shape:
        raise ValueError(f"kind must have shape {s.shape} like the scores, got {k.shape}")
    flagged = predict(s, threshold)
    is_normal = k == str(normal_kind)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(k[~is_normal].tolist())):
        is_kind = k == name
        mask = is_kind | is_normal
        roc_auc, pr_auc = roc_pr_auc(is_kind[mask].astype(np.int64), s[mask])
        out[name] = {"roc_auc": roc_auc, "pr_auc": pr_auc, "recall": float(flagged[is_kind].mean()),
                     "count": int(is_kind.sum())}
    return to_jsonable(out)


def evaluate_scores(y_true: np.ndarray, kind: Optional[np.ndarray],
                    scores_by_name: dict[str, np.ndarray], thresholds: dict[str, float],
                    normal_kind: str = "normal") -> dict[str, dict[str, Any]]:
    """``{score_name: {**binary_metrics, "per_kind": ...}}`` of (N,) scores; ``kind`` None: ``per_kind`` empty."""
    missing = sorted(set(scores_by_name) - set(thresholds))
    if missing:
        raise ValueError(f"no threshold for score(s) {missing}; have {sorted(thresholds)}")
    return {str(name): {**binary_metrics(y_true, scores, thresholds[name]), "per_kind": {} if kind is None
                        else per_kind_metrics(kind, scores, thresholds[name], normal_kind)}
            for name, scores in scores_by_name.items()}


def format_metrics_table(results: dict[str, dict[str, Any]]) -> str:
    """Fixed-width console table of :func:`evaluate_scores`' results, one row per score ("-" where undefined)."""
    kinds = sorted({k for r in results.values() for k in r.get("per_kind", {})})
    headers = ["ROC AUC", "PR AUC", "base", "prec", "recall", "F1", "FA rate"] + [f"AUC[{k}]" for k in kinds]
    rows = {}
    for name, r in results.items():
        values = [r.get(key) for key in ("roc_auc", "pr_auc", "base_rate", "precision", "recall", "f1")]
        values.append(r.get("false_alarm", {}).get("measured", {}).get("rate"))
        values += [r.get("per_kind", {}).get(k, {}).get("roc_auc") for k in kinds]
        rows[name] = ["-" if v is None else f"{v:.3f}" for v in values]
    return fixed_width_table("score", headers, rows)


def fixed_width_table(title: str, headers: list[str], rows: dict[str, list[str]], widths: list[int] | None = None
                      ) -> str:
    """A name column headed ``title``, then right-aligned columns ``widths`` wide (default: header's, >= 7)."""
    widths = widths or [max(len(h), 7) for h in headers]
    name_w = max([len(title)] + [len(n) for n in rows])
    lines = ["  ".join([title.ljust(name_w)] + [h.rjust(w) for h, w in zip(headers, widths)])]
    lines.append("-" * len(lines[0]))
    lines += ["  ".join([name.ljust(name_w), *[c.rjust(w) for c, w in zip(cells, widths)]])
              for name, cells in rows.items()]
    return "\n".join(lines)


def compare_with_baselines(model: dict[str, dict[str, Any]], baselines: dict[str, dict[str, Any]],
                           keys: tuple[tuple[str, str], ...] = (("roc_auc", "ROC AUC"), ("pr_auc", "PR AUC")),
                           lead: str = "Model vs baselines on this split") -> dict[str, Any]:
    """``{key: {"model_score", "model", "baseline", "baseline_value", "beats"}, "text"}``: does the model's best score
    beat the best baseline on each ``(metric key, label)``? ``beats`` None when a side has no defined value."""
    out: dict[str, Any] = {}
    parts = []
    for key, label in keys:
        best_model, best_base = _best(model, key), _best(baselines, key)
        beats = None if best_model[1] is None or best_base[1] is None else best_model[1] > best_base[1]
        out[key] = {"model_score": best_model[0], "model": best_model[1],
                    "baseline": best_base[0], "baseline_value": best_base[1], "beats": beats}
        verb = {True: "beats", False: "does not beat", None: "cannot be compared with"}[beats]
        parts.append(f"{label} {_side(*best_model, 'score')} {verb} {_side(*best_base, 'baseline')}")
    out["text"] = f"{lead}: " + "; ".join(parts)
    return to_jsonable(out)


def _best(results: dict[str, dict[str, Any]], key: str) -> tuple[Optional[str], Optional[float]]:
    defined = [(r[key], name) for name, r in results.items() if r.get(key) is not None]
    value, name = max(defined, key=lambda item: item[0], default=(None, None))
    return name, value


def _side(name: Optional[str], value: Optional[float], who: str) -> str:
    """``"0.912 (name)"``, or that no ``who`` defines the metric."""
    return f"undefined (no {who} defines it)" if value is None else f"{value:.3f} ({name})"
