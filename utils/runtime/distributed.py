"""Multi-process training with torch.distributed under ``torchrun`` (docs/getting-started.md); without
torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK) everything runs as one process."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from utils.runtime.reproducibility import state_digest
from utils.runtime.signals import torchrun_place


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, writes checkpoints and evaluates."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_from_env(device: torch.device) -> DistInfo:
    """Join the process group described by torchrun's environment, if any (gloo on CPU, NCCL on CUDA)."""
    info = DistInfo(*torchrun_place())
    if info.enabled and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info


def cuda_device_for(info: DistInfo, device: torch.device) -> torch.device:
    """One GPU per local rank."""
    if device.type == "cuda" and info.enabled:
        torch.cuda.set_device(info.local_rank)
        return torch.device("cuda", info.local_rank)
    return device


def all_reduce_mean(values: dict[str, float], info: DistInfo, device: torch.device) -> dict[str, float]:
    """Average each number over the ranks, in one all-reduce on ``device`` (no-op for one process)."""
    summed = all_reduce_sum(values, info, device).items()
    return {key: value / info.world_size for key, value in summed} if info.enabled else values


def all_reduce_sum(values: dict[str, float], info: DistInfo, device: torch.device) -> dict[str, float]:
    """Sum each number over the ranks (each holding the same keys) in one all-reduce on ``device``."""
    if not info.enabled or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[key] for key in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return dict(zip(keys, tensor.tolist()))


class SignalOfAnyRank:
    """The stop signal any rank has received, agreed one check late so that every rank stops after the same batch
    (one stopping alone would leave the others waiting in the next gradient exchange) without a blocking
    all-reduce each batch: each :meth:`check` starts one in the background and reads the previous check's."""

    def __init__(self, info: DistInfo, device: torch.device) -> None:
        self.info, self.device = info, device
        self._pending: tuple[torch.Tensor, Any] | None = None

    def check(self, signum: int | None) -> int | None:
        """``signum`` (this rank's signal) for one process; else the signal of any rank at the previous check."""
        if not self.info.enabled:
            return signum
        agreed = self.finish()
        found = torch.tensor([signum or 0], dtype=torch.int64, device=self.device)
        self._pending = found, dist.all_reduce(found, op=dist.ReduceOp.MAX, async_op=True)
        return agreed

    def finish(self) -> int | None:
        """Wait for the all-reduce in flight; its signal (None: none, or none in flight)."""
        if self._pending is None:
            return None
        found, work = self._pending
        self._pending = None
        work.wait()
        return int(found.item()) or None


def check_ranks_in_sync(model: nn.Module, info: DistInfo) -> None:
    """Under torchrun, log each rank's weight digest; differing weights are a bug, so raise RuntimeError."""
    if not info.enabled:
        return
    found: list[str | None] = [None] * info.world_size
    dist.all_gather_object(found, state_digest(model.state_dict()))
    digests = [str(d) for d in found]
    same = len(set(digests)) == 1
    logging.getLogger("anomaly").info("Weights digest per rank: %s (%s)", " ".join(digests),
                                      "identical" if same else "DIFFERENT")
    if not same:
        raise RuntimeError(f"ranks ended with different weights: {digests}")


def shared_error(info: DistInfo, error: BaseException | None) -> BaseException | None:
    """The first rank's error of a step every rank takes together (None when every rank succeeded), so every rank
    raises the same error (rank 0 alone takes the lock), prints the same line and exits 2."""
    if not info.enabled:
        return error
    found: list[tuple[str, str] | None] = [None] * info.world_size
    mine = (type(error).__name__, str(error)) if error is not None else None
    dist.all_gather_object(found, mine)
    first = next((item for item in found if item is not None), None)
    if first is None or error is not None and mine == first:
        return error
    from utils.core import errors
    kind = getattr(errors, first[0], None)
    return (kind if isinstance(kind, type) and issubclass(kind, errors.UserError) else RuntimeError)(first[1])


def barrier(info: DistInfo) -> None:
    """Wait for every rank."""
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    """Leave the process group."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
