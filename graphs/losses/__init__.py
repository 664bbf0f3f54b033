"""Losses (importing the package fills the registry): each returns a dict of scalars, ``"loss"``
back-propagated and any others logged as its components."""
from graphs.losses import reconstruction_loss, vae_loss  # noqa: F401  (fills the registry)
