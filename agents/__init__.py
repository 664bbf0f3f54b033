"""Agents; importing the package fills the agent registry."""
