"""Losses; importing the package fills the loss registry."""
