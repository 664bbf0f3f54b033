"""The trained detector (:class:`~agents.detector.detector.Detector`, and its export) and what it is made of: its
scores, thresholds, time-step streaming, scaler, baselines and checkpoint checks, a module each.

Pure metrics (no state, no model) are in :mod:`utils.metrics`.
"""
