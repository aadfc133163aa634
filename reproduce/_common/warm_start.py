"""The warm start of the paper's sec. 5.1 for the Table 1 variants with neither normalization nor
IM-Loss: "the models trained by IM-Loss after several iterations (training was stopped when the
spike rates of the last layer were not 0) as the initialization".

Here: build the variant's own network exactly as snn.train would (same seed and order, ESG's
K(0) applied), then take SGD steps on the IM-Loss alone (eq. 11, no cross-entropy) on training
batches until the last LIF layer fires on the batch just forwarded (checked before each step, so
a network that already fires takes 0 steps), at most MAX_STEPS. The weights become the run's
initial state: an epoch-0 checkpoint (fresh optimizer, LR schedule and ESG, no history) that
snn.train then resumes, so every later epoch is the engine's own.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from snn.data import make_loader
from snn.esg import ESG
from snn.files import write_atomic
from snn.im_loss import im_loss
from snn.neuron import lif_layers
from snn.train import Config, checkpoint
from snn.train.distributed import Context
from snn.train.prepare import build_data, build_model, build_optimizer, seed_everything
from snn.train.state import Training
from snn.train.loop import StepSettings, model_input

from .training import run_device

MAX_STEPS = 200
RECORD = "warm_start.json"


@dataclass(frozen=True)
class WarmStart:
    """steps: IM-Loss steps taken; rate: the last layer's spike rate on the batch that ended it."""

    steps: int
    rate: float
    seconds: float

    def describe(self) -> str:
        fired = f"last-layer spike rate {self.rate:.3g}" if self.rate > 0 else \
            f"last layer still silent after the cap of {MAX_STEPS}"
        return f"{self.steps} IM-Loss steps ({fired}, {self.seconds:.1f} s)"


def warm_start(cfg: Config) -> WarmStart:
    """Write cfg.out/last.pt holding the warm-started initial state; reuse it when present."""
    out = Path(cfg.out)
    if (out / "last.pt").exists():
        return WarmStart(**json.loads((out / RECORD).read_text()))
    device = run_device(cfg)
    start = time.perf_counter()
    seed_everything(cfg.seed)  # what snn.train.run does first: the same initial weights
    train_set, _, _, info = build_data(cfg, Context(0, 1, device, owns_group=False))
    model = build_model(cfg, info).to(device)
    esg = ESG(model, cfg.epochs, cfg.k_min, cfg.k_max) if cfg.surrogate_spec.schedule == "esg" else None
    steps, rate = _im_steps(model, train_set, cfg, device)
    record = WarmStart(steps, rate, time.perf_counter() - start)
    write_atomic(out / RECORD, json.dumps(record.__dict__) + "\n")
    optimizer = build_optimizer(cfg, model)  # the run's own optimizer starts fresh
    state = Training(model, optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs), esg,
                     None, torch.Generator().manual_seed(cfg.seed)).state(cfg, [], [checkpoint.capture_rng()])
    checkpoint.save(out / "last.pt", state)
    return record


def _im_steps(model, train_set, cfg: Config, device: torch.device) -> tuple[int, float]:
    """SGD on IM-Loss alone until the last LIF fires (or MAX_STEPS); -> (steps, last rate)."""
    if len(train_set) == 0:
        raise ValueError("the warm start needs training samples, got an empty training set")
    optimizer = build_optimizer(cfg, model)
    last = lif_layers(model)[-1]
    generator = torch.Generator().manual_seed(cfg.seed)
    settings = StepSettings(T=cfg.T, device=device, amp=False, channels_last=False, im_lambda=cfg.im_lambda,
                            clip_grad=None)
    model.train()
    steps = 0
    while True:
        for x, _ in make_loader(train_set, cfg.batch_size, train=True, generator=generator):
            model(model_input(x, settings), T=cfg.T)
            rate = last.spike_rate
            if rate > 0 or steps >= MAX_STEPS:
                return steps, rate
            optimizer.zero_grad(set_to_none=True)
            im_loss(model).backward()
            optimizer.step()
            steps += 1
