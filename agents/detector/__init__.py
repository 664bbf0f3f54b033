"""The trained detector and everything it is made of.

* :mod:`~agents.detector.detector`: :class:`~agents.detector.detector.Detector`, fit / score / predict /
  p-values / save / load, the one way to score a finished run;
* :mod:`~agents.detector.scores`: the anomaly scores, one registered class each;
* :mod:`~agents.detector.thresholds`: split-conformal and adaptive thresholds, p-values;
* :mod:`~agents.detector.streaming`: window scores to time steps and incidents, batch and live alike;
* :mod:`~agents.detector.scaler` and :mod:`~agents.detector.baselines`: the input scaling, the baselines;
* :mod:`~agents.detector.checkpoint`: the checks of every ``best.pt``/``last.pt`` field, and old layouts;
* :mod:`~agents.detector.export`: the scoring forward as ONNX or TorchScript.

Pure metrics (no state, no model) are in :mod:`utils.metrics`.
"""
