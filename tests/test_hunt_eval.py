"""Bugs found by hunting the end-of-run evaluation as a user with their own recordings meets it."""
from __future__ import annotations

import json

import numpy as np

from utils.metrics.window_metrics import binary_metrics, compare_with_baselines, format_metrics_table


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


def test_window_recall_and_f1_are_undefined_without_anomalies_not_zero():
    # recordings without a label column (or whose test parts hold no labelled row): the table said recall 0.000 and
    # F1 0.000, as if every anomaly had been missed; the stream metrics already say None (utils.metrics.stream_metrics)
    m = binary_metrics(np.zeros(6, dtype=int), np.arange(6.0), 2.5)
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, None, None)  # 3 alarms, none right: precision is defined
    json.dumps(m, allow_nan=False)
    row = format_metrics_table({"reconstruction": m}).splitlines()[-1].split()
    assert row[4:7] == ["0.000", "-", "-"]


def test_window_precision_is_undefined_without_alarms_and_f1_zero_with_anomalies_missed():
    m = binary_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4]), 1.0)
    assert (m["precision"], m["recall"], m["f1"]) == (None, 0.0, 0.0)
