"""Agents; importing the package fills every registry (agents, models, losses, datasets, scores)."""
import datasets  # noqa: F401
import graphs.losses  # noqa: F401
import graphs.models  # noqa: F401
from agents import base  # noqa: F401
from agents.detector import scores  # noqa: F401
