"""Dataset loaders; importing the package fills the dataset registry."""
