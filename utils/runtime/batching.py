"""Batching of in-memory tensors without per-sample Python work."""
from __future__ import annotations

import torch
from torch import Tensor


def batch_indices(n: int, batch_size: int, generator: torch.Generator | None = None,
                  rank: int = 0, world_size: int = 1) -> list[Tensor]:
    """Index tensors (B,) int64 of the batches of one epoch, shuffled when a ``generator`` is given. With
    ``world_size`` > 1 each rank takes every ``world_size``-th index (as DistributedSampler), wrapping around so
    every rank gets the same number of batches; ``batch_size`` is per rank."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    if world_size > 1:
        per_rank = -(-n // world_size)
        order = torch.cat([order, order[: per_rank * world_size - n]])[rank::world_size]
    return list(torch.split(order, batch_size))
