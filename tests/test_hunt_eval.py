"""Bugs found by hunting the end-of-run evaluation as a user with their own recordings meets it."""
from __future__ import annotations

from utils.metrics.window_metrics import compare_with_baselines


def test_model_vs_baselines_line_says_what_is_undefined_when_no_score_defines_a_metric():
    # every test window anomalous: no score and no baseline has a ROC AUC; the line said "- (None) cannot be
    # compared with - (None)", a Python None as if it were a score's name
    undefined = {"roc_auc": None, "pr_auc": None}
    verdict = compare_with_baselines({"reconstruction": undefined}, {"kNN distance (k=5)": undefined})
    assert "None" not in verdict["text"]
    assert verdict["text"] == ("Model vs baselines on this split: ROC AUC undefined (no score defines it) cannot be "
                               "compared with undefined (no baseline defines it); PR AUC undefined (no score defines "
                               "it) cannot be compared with undefined (no baseline defines it)")
    assert verdict["roc_auc"]["beats"] is None


def test_model_vs_baselines_line_names_the_defined_side_when_only_one_is_defined():
    verdict = compare_with_baselines({"reconstruction": {"roc_auc": 0.9, "pr_auc": 0.8}},
                                     {"kNN distance (k=5)": {"roc_auc": None, "pr_auc": None}})
    assert verdict["text"].startswith("Model vs baselines on this split: ROC AUC 0.900 (reconstruction) cannot be "
                                      "compared with undefined (no baseline defines it);")
