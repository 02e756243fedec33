"""Where a training run stands, and the files of its run folder that keep it resumable.

A run folder ``OUT`` holds, after every epoch, ``latest.safetensors`` + ``latest.json`` (the model
and its card) and ``latest.train.pt`` (the optimiser state, epoch, step, best score and schedule
progress, read with ``torch.load(weights_only=True)``); ``best.*`` is the checkpoint with the best
score on the validation images (:func:`checkpoint_score`); ``FINISHED`` marks a run that did all
its epochs. Rerunning the same command resumes at the next epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semcom.errors import CheckpointError
from semcom.jscc.checkpoint import load_checkpoint, save_checkpoint
from semcom.jscc.model import MultiResJscc

__all__ = ["RunFolder", "RunState", "checkpoint_score"]


@dataclass
class RunState:
    """Epochs and steps done, the best score so far and the schedule's progress (0..1).

    ``optimizer``: the saved optimiser state of a resumed run (None for a fresh one).
    """

    epoch: int = 0
    step: int = 0
    best: float = -math.inf
    progress: float = 0.0
    optimizer: dict[str, Any] | None = None


def checkpoint_score(metrics: dict[str, Any], heads_only: bool = False) -> float:
    """What "best checkpoint" means: mean PSNR, or mean accuracy when only the heads train."""
    return float(np.mean(metrics["accuracy" if heads_only else "psnr_db"]))


class RunFolder:
    """The files of a run folder ``out`` (created if need be)."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.latest = self.out / "latest.safetensors"
        self.best = self.out / "best.safetensors"
        self.state = self.out / "latest.train.pt"

    def resume(self, model: MultiResJscc) -> tuple[MultiResJscc, RunState] | None:
        """The latest checkpoint (of ``model``'s architecture) and the run's state; None if there is none."""
        if not (self.state.is_file() and self.latest.is_file()):
            return None
        model = load_checkpoint(self.latest, expect=model.config)
        try:
            st = torch.load(self.state, weights_only=True, map_location="cpu")
            state = RunState(int(st["epoch"]), int(st["step"]), float(st["best"]), optimizer=st["optimizer"])
        except Exception as exc:  # truncated, corrupt or foreign: never suggest unpickling it
            raise CheckpointError(f"{self.state}: not a readable training state ({type(exc).__name__}); "
                                  "start the run again with --restart, or delete the file") from None
        state.progress = float(st.get("progress", 0.0))
        return model, state

    def save_latest(self, model: MultiResJscc, card: dict[str, Any], optimizer: torch.optim.Optimizer,
                    state: RunState, score: float) -> None:
        """Write ``latest.*`` and the training state (its best score counts ``score``)."""
        save_checkpoint(model, self.latest, card)
        tmp = self.state.with_suffix(".tmp")
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "epoch": torch.tensor(state.epoch),
                "step": torch.tensor(state.step),
                "best": torch.tensor(max(state.best, score)),
                "progress": torch.tensor(state.progress),
            },
            tmp,
        )
        tmp.replace(self.state)

    def save_best(self, model: MultiResJscc, card: dict[str, Any]) -> None:
        save_checkpoint(model, self.best, card)

    def finish(self, epochs: int) -> None:
        """Mark the run as having done all ``epochs`` epochs."""
        (self.out / "FINISHED").write_text(f"{epochs} epochs\n")
