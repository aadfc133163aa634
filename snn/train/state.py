"""What a checkpoint holds, built in one place: `Training.state` writes it, `Training.load` reads
it back; `PartialEpoch` is the progress of an epoch a signal stopped (key "partial").

The file format (digest, atomic save, RNG states) is snn.train.checkpoint's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ..dspike import DspikeSchedule
from ..esg import ESG
from . import checkpoint
from .config import Config

CHECKPOINT_KEYS = ("config", "epoch", "model", "optimizer", "scheduler", "esg", "dspike_b", "loader_generator",
                   "rng", "history")  # what every checkpoint holds and a resume needs


@dataclass(frozen=True)
class PartialEpoch:
    """How far an epoch stopped by a signal got, so that --resume finishes it.

    step: steps done (1-based count); steps: the epoch's steps; sums: the running sums over all
    ranks (loss*n, ce*n, im*n, correct, n: 5 floats); seconds: training seconds so far; dspike:
    the epoch's Dspike selection outcome (DspikeSchedule.cost), None without Dspike."""

    step: int
    steps: int
    sums: list[float]
    seconds: float
    dspike: Optional[dict] = None

    def to_state(self) -> dict:
        """The plain dict a checkpoint stores (torch.load(weights_only=True) reads no dataclass)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, state: dict) -> "PartialEpoch":
        return cls(**state)


def best_record(epoch: int, model: nn.Module) -> dict:
    """What last.pt records about best.pt: its epoch (1-based) and the digest of its weights."""
    return {"epoch": epoch, "model_digest": checkpoint.digest(model.state_dict())}


@dataclass
class Training:
    """The objects whose state a checkpoint holds, besides the RNGs and the history."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    esg: Optional[ESG]
    selector: Optional[DspikeSchedule]
    generator: torch.Generator  # the training loader's: drives its worker seeds
    model_info: Optional[dict] = None  # prepare.model_info: lets snn.load rebuild the model without the data

    def state(self, cfg: Config, history: list[dict], rng: list[dict], best: Optional[dict] = None,
              partial: Optional[PartialEpoch] = None, loader_generator: Optional[torch.Tensor] = None) -> dict:
        """The checkpoint after len(history) finished epochs: CHECKPOINT_KEYS, "best" (best_record of
        best.pt, None before one) and, for an epoch a signal stopped, "partial" (its progress).

        rng: capture_rng() of every rank. loader_generator: the generator state to store instead of
        the current one (a stopped epoch stores the state it began with, to replay its order)."""
        state = {"config": cfg.identity(), "epoch": len(history), "model": self.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "esg": None if self.esg is None else self.esg.state_dict(),
                 "dspike_b": None if self.selector is None else self.selector.b,
                 "loader_generator": self.generator.get_state() if loader_generator is None else loader_generator,
                 "rng": rng, "history": history, "best": best}
        if self.model_info is not None:
            state["model_info"] = self.model_info
        if partial is not None:
            state["partial"] = partial.to_state()
        return state

    def load(self, state: dict) -> None:
        """Restore everything state() saved except the RNGs, the history and the best.pt record."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.esg is not None:
            self.esg.load_state_dict(state["esg"])
        if self.selector is not None:
            self.selector.set_b(state["dspike_b"])
        self.generator.set_state(state["loader_generator"])
