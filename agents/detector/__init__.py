"""The trained detector (:class:`~agents.detector.detector.Detector`) and what it is made of: its scores,
thresholds, time-step streaming, scaler, baselines, checkpoint checks and ONNX/TorchScript export, a module each.

Pure metrics (no state, no model) are in :mod:`utils.metrics`.
"""
