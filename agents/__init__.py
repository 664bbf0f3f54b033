"""Agents; importing the package fills every registry (agents, models, losses, datasets)."""
import datasets  # noqa: F401
import graphs.losses  # noqa: F401
import graphs.models  # noqa: F401
from agents import vae  # noqa: F401
from agents import rnn_autoencoder  # noqa: F401
