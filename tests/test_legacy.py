"""best.pt files of earlier versions (flat per-agent scoring keys) read in the current layout."""
from __future__ import annotations

import torch

from agents.detector.checkpoint import current_scoring


def test_flat_keys_become_statistics_per_score():
    mean, precision = torch.zeros(3), torch.eye(3)
    old = {"latent_mean": mean, "latent_precision": precision, "latent_shrinkage": 0.1,
           "thresholds": {"reconstruction": 0.5, "latent_mahalanobis": 2.0}}
    new = current_scoring(old)
    assert new["scores"] == ["reconstruction", "latent_mahalanobis"]
    assert new["statistics"]["latent_mahalanobis"] == {"mean": mean, "precision": precision, "shrinkage": 0.1}
    assert new["statistics"]["latent_euclidean"] == {"mean": mean}
    assert new["thresholds"] == old["thresholds"]


def test_the_current_layout_is_left_as_it_is():
    now = {"scores": ["reconstruction"], "statistics": {}, "thresholds": {"reconstruction": 1.0}}
    assert current_scoring(now) is now and current_scoring({}) == {}
