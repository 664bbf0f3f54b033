"""Models; importing the package fills the model registry."""
from graphs.models import recurrent_autoencoder, vae  # noqa: F401
