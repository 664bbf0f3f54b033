"""``best.pt`` files written by earlier versions, read in the current layout."""
from __future__ import annotations

from typing import Any

_LEGACY_STATISTICS = {  # best.pt written before the detector: flat keys per agent
    "latent_mahalanobis": ("latent_mean", "latent_precision", "latent_shrinkage"),
    "error_gaussian": ("error_mean", "error_precision", "error_shrinkage"),
}


def current_scoring(scoring: dict[str, Any]) -> dict[str, Any]:
    """``scoring`` of a best.pt in the current layout (older files kept flat per-agent keys)."""
    if "statistics" in scoring or not scoring:
        return scoring
    stats: dict[str, dict[str, Any]] = {}
    for name, (mean, precision, shrinkage) in _LEGACY_STATISTICS.items():
        if mean in scoring:
            stats[name] = {"mean": scoring[mean], "precision": scoring[precision], "shrinkage": scoring[shrinkage]}
    if "latent_mean" in scoring:
        stats["latent_euclidean"] = {"mean": scoring["latent_mean"]}
    return {"scores": list(scoring.get("thresholds", {})), "statistics": stats,
            "thresholds": scoring.get("thresholds", {})}
