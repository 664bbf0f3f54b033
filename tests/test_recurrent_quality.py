"""The shipped LSTM config (configs/lstm_ecg5000.json) trained briefly for real: a floor on test ROC AUC.

The run is the shipped config as it is (teacher forcing, gradient clipping 1.0, lr 0.002, cosine
annealing; scores error_gaussian_train and reconstruction_mae), on the shared ECG5000 TRAIN file with
the merged protocol, for EPOCHS epochs instead of 200 (the cosine schedule then anneals over those
epochs), on the time loops this machine has (the C++ and the Python loops train the same weights, bit
for bit: tests/test_fast_rnn.py). The floor is set below the worst ROC AUC measured over seeds with a
margin; the measurements are in docs/recurrent_tuning.md.
"""
from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run_main

EPOCHS = 30
SEED = 1
# Measured with these settings (30 epochs), seeds 0, 1, 2, ROC AUC (both time-loop paths give the same bits):
#   error_gaussian_train  0.9709, 0.9857, 0.9899   (worst 0.9709)
#   reconstruction_mae    0.1245, 0.1863, 0.8854
# The floor sits about 0.05 below the worst seed. reconstruction_mae gets none: after 30 teacher-forced
# epochs the free-running reconstruction has not settled (at the shipped 200 epochs it reaches
# 0.962 +- 0.030 over 10 seeds), and it is the config's second score.
FLOOR_AUC = {"error_gaussian_train": 0.92}


def short_run(root: Path, data_dir: Path, name: str) -> dict:
    """Train the shipped LSTM config for EPOCHS epochs on the shared TRAIN file; its test metrics."""
    overrides = ["data.protocol=merged", f"data.data_dir={data_dir}", "data.download=false", f"seed={SEED}",
                 f"trainer.epochs={EPOCHS}", "trainer.progress_bar=false", "evaluation.make_plots=false",
                 f"exp_name={name}"]
    assert run_main("lstm_ecg5000.json", root, *overrides) == 0
    return json.loads((root / name / "out" / "metrics.json").read_text())["scores"]


def test_short_training_of_the_shipped_lstm_separates_the_classes(tmp_path, shared_ecg_dir):
    """Each floored score's test ROC AUC is at least its floor."""
    scores = short_run(tmp_path, shared_ecg_dir, "quality")
    for name, floor in FLOOR_AUC.items():
        assert scores[name]["roc_auc"] >= floor, (name, scores[name]["roc_auc"], floor)
