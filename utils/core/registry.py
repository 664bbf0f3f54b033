"""One registry per kind of component, filled by decorators (``@register_model("vae")``)."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from utils.core.errors import ConfigError

T = TypeVar("T")


class Registry:
    """Maps a name to a class or factory function of one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``; a duplicate name is a bug."""
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj
        return decorator

    def get(self, name: str) -> Any:
        """Return the entry for ``name`` or raise ConfigError listing valid names."""
        if name not in self._entries:
            valid = ", ".join(sorted(self._entries)) or "(none registered)"
            raise ConfigError(f"unknown {self.kind} {name!r}; valid {self.kind}s: {valid}")
        return self._entries[name]

    def names(self) -> list[str]:
        """Sorted registered names."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries


MODELS = Registry("model")
LOSSES = Registry("loss")
DATASETS = Registry("dataset")
AGENTS = Registry("agent")
SCORES = Registry("score")

register_model = MODELS.register
register_loss = LOSSES.register
register_dataset = DATASETS.register
register_agent = AGENTS.register
register_score = SCORES.register
