"""Shared utilities: config, registries, checkpoints, metrics, scores, plots."""
