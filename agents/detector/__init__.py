"""The trained detector (:class:`~agents.detector.detector.Detector`, and its export) and its scores, thresholds,
time-step streaming, scaler, baselines and checkpoint checks, a module each; pure metrics: :mod:`utils.metrics`."""
