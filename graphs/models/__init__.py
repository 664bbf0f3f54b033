"""Models; importing the package fills the model registry."""
