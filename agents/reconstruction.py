"""The reconstruction agent: trains any :class:`graphs.models.contract.ReconstructionModel`, scores with a Detector.

``vae`` and ``rnn_autoencoder`` (the agents of earlier versions) are aliases, so existing configs keep working.
"""
from __future__ import annotations

import time
from typing import Any

from agents.base import BaseAgent
from agents.detector.detector import Detector
from utils.core.registry import register_agent


@register_agent("rnn_autoencoder")
@register_agent("vae")
@register_agent("reconstruction")
class ReconstructionAgent(BaseAgent):
    """Trains on normal windows (N, T, F), then scores the test split with the best epoch's detector."""

    def detector(self) -> Detector:
        """A detector around the current model and scaler (statistics and thresholds not fitted yet)."""
        evaluation = self.config.evaluation
        return Detector(self.model, self.scaler, evaluation.scores, self.model_inputs["time_steps"],
                        list(self.data.feature_names), batch_size=evaluation.batch_size, config=self.config)

    def evaluate(self) -> dict[str, Any]:
        """Fit the detector on the normals with the best weights, score the test split, write ``out/``."""
        started = time.perf_counter()  # the evaluation's time includes importing what only it uses
        from agents.evaluation import TrainedRun, evaluate_run
        windows = {"train": self.train_x, "val": self.val_x, "test": self.to_tensor(self.data.test.x, "test")}
        return evaluate_run(TrainedRun(self.detector(), self.data, windows, self.folder, self.config, self.state,
                                       self.train_seconds, self.writer, started))
