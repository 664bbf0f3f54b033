"""Dataset loaders; importing the package fills the dataset registry."""
from datasets import converter, converter_stream, ecg5000  # noqa: F401
from datasets import csv_windows, skab  # noqa: F401
