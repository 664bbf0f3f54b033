"""Checkpoints of BaseAgent: what they hold, writing them, and reading them back."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Self

from agents.parts import select_device
from utils.runs.checkpoints import load_checkpoint, load_model_state
from utils.core.errors import CheckpointError
from utils.scoring.scaler import Scaler
from utils.runtime.seed import get_rng_state, set_rng_state


class Checkpointing:
    """BaseAgent's checkpoint methods (a mixin: they use the agent's model, optimizer, state and paths).

    ``last.pt`` holds everything to resume exactly; ``best.pt`` the best epoch's weights with what
    scoring needs. Writes go through ``self.checkpoints`` (:class:`utils.runs.checkpoints.CheckpointWriter`).
    """

    @classmethod
    def for_inference(cls, checkpoint_path: Path, device: str = "auto") -> Self:
        """An agent ready to score new windows from a finished run's ``best.pt``.

        No training data is loaded: the model is rebuilt from the checkpoint's
        config and data-derived arguments, with its scaler, score statistics and
        thresholds.
        """
        from easydict import EasyDict

        ckpt = load_checkpoint(Path(checkpoint_path))
        agent = cls.__new__(cls)
        agent.config = EasyDict(ckpt["config"])
        agent.device = select_device(device)
        agent.run_dir = Path(checkpoint_path).resolve().parents[1]
        agent.ckpt_dir = agent.run_dir / "checkpoints"
        agent.scaler = Scaler.from_state_dict(ckpt["scaler"])
        agent.scoring = ckpt.get("scoring") or {}
        agent.model_kwargs = ckpt["model_inputs"]
        agent.feature_names, agent.window_length = ckpt.get("feature_names"), ckpt.get("window_length")
        agent.model = agent.build_model(agent.model_kwargs).to(agent.device)
        load_model_state(agent.model, ckpt["model"], Path(checkpoint_path))
        agent.model.eval()
        return agent

    def checkpoint_state(self, resumable: bool = True) -> dict[str, Any]:
        """Everything needed to continue exactly (see DESIGN.md); without ``resumable``, what best.pt
        holds: the weights and what scoring needs, but no optimizer, scheduler or RNG states."""
        state = {
            "model": getattr(self.model, "module", self.model).state_dict(),
            **self.state,  # epoch, step, early stopping, history; mid-epoch: batch_in_epoch, epoch_totals
            "model_inputs": self.model_inputs(),
            "feature_names": list(self.data.feature_names), "window_length": int(self.data.train.x.shape[1]),
            "scaler": self.scaler.state_dict(),
            "scoring": self.scoring,
            "config": json.loads(json.dumps(self.config)),
        }
        if resumable:
            state.update(optimizer=self.optimizer.state_dict(), rng=get_rng_state(),
                         scheduler=self.scheduler.state_dict() if self.scheduler is not None else None)
        return state

    def save(self, best: bool = False) -> None:
        """Queue atomic writes of ``checkpoints/last.pt`` and of ``best.pt`` if ``best`` (this state is
        the best) or a best state was kept since the last write.

        The writes run in the background (:class:`utils.runs.checkpoints.CheckpointWriter`) while
        training goes on; ``self.checkpoints.wait()`` makes sure they are on disk.
        """
        self.last_save = time.monotonic()
        if not self.dist.is_main:  # rank 0 alone writes
            return
        if self.writer is not None:
            self.writer.flush()  # events up to this checkpoint are on disk with it
        last, best_path = self.ckpt_dir / "last.pt", self.ckpt_dir / "best.pt"
        files = [(last, self.checkpoint_state())]
        if best or self.best_state is not None:
            files.append((best_path, self.checkpoint_state(resumable=False) | (self.best_state or {})))
        self.best_state = None
        self.checkpoints.save(files)

    def restore(self, ckpt: dict[str, Any]) -> None:
        """Load a training checkpoint written by :meth:`save` (mid-epoch state optional)."""
        missing = [key for key in (*self.state, "scaler", "rng", "optimizer") if key not in ckpt
                   and key not in ("batch_in_epoch", "epoch_totals")]
        if missing:
            raise CheckpointError(f"{self.ckpt_dir / 'last.pt'}: not a training checkpoint of this project "
                                  f"(missing {', '.join(missing)})")
        load_model_state(self.model, ckpt["model"], self.ckpt_dir / "last.pt")
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler"):
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.state.update({key: ckpt.get(key, self.state[key]) for key in self.state})
        self.state["epoch_totals"] = {key: float(value) for key, value in self.state["epoch_totals"].items()}
        self.scaler = Scaler.from_state_dict(ckpt["scaler"])
        self.scoring = ckpt.get("scoring") or {}
        set_rng_state(ckpt["rng"])
