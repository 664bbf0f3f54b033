"""Losses; importing the package fills the loss registry.

Every loss returns a dict of scalars with at least ``"loss"`` (the value that is
back-propagated); other entries are logged as loss components.
"""
from graphs.losses import reconstruction_loss, vae_loss  # noqa: F401  (fills the registry)
