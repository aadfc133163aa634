"""One training epoch and one evaluation pass, with the non-finite loss guard."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from .. import exits
from ..im_loss import im_loss
from ..monitor import SpikeRateMonitor
from ..neuron import lif_layers
from . import distributed
from .distributed import Context
from .state import PartialEpoch


class NonFiniteLoss(RuntimeError):
    """Training diverged: the loss, the gradient, or a weight or normalization statistic became NaN or
    infinite. Checked on every step (loss and global gradient norm, before the update) and after
    every epoch (weights and buffers, before the checkpoint), whatever the loss weights, so no
    checkpoint ever holds a non-finite value. epoch and step are 1-based (step None: end of epoch)."""

    exit_code = exits.DIVERGED

    def __init__(self, what: str, epoch: int, epochs: int, step: Optional[int] = None, steps: Optional[int] = None):
        self.epoch, self.step = epoch, step
        kept = f"the last checkpoint holds epoch {epoch - 1}" if epoch > 1 else "no checkpoint was written"
        where = f"epoch {epoch}/{epochs}" + ("" if step is None else f", step {step}/{steps}")
        before = "this step's update" if step is not None else "this epoch's checkpoint"
        super().__init__(f"{what} at {where}; training stopped before {before}; {kept}")


@dataclass(frozen=True)
class StepSettings:
    """What every forward needs: T, device, bf16 autocast, channels_last inputs, loss settings."""

    T: int
    device: torch.device
    amp: bool
    channels_last: bool
    im_lambda: float
    clip_grad: Optional[float]


def model_input(x: torch.Tensor, settings: StepSettings) -> torch.Tensor:
    """Loader batch -> model input: static [B, C, H, W] stays (channels_last if asked);
    event frames [B, T, 2, H, W] become time-major [T, B, 2, H, W]."""
    x = x.to(settings.device, non_blocking=True)
    if x.dim() == 5:
        return x.transpose(0, 1)
    return x.contiguous(memory_format=torch.channels_last) if settings.channels_last else x


def _autocast(settings: StepSettings):
    return torch.autocast(settings.device.type, dtype=torch.bfloat16, enabled=settings.amp)


@dataclass(frozen=True)
class EpochPlan:
    """Which epoch train_epoch runs and how.

    epoch: 0-based, of `epochs`. select(x, y), when given, runs on the epoch's first batch before
    it trains (Dspike's temperature choice). progress: show a progress bar. stop(), when given, is
    polled after every step but the last: the signal number, 0 to go on (every rank agrees on the
    largest). resume_from: the progress of this epoch in an earlier process; the loader then
    yields the epoch's remaining batches only."""

    epoch: int
    epochs: int
    select: Optional[Callable[[torch.Tensor, torch.Tensor], None]] = None
    progress: bool = False
    stop: Optional[Callable[[], int]] = None
    resume_from: Optional[PartialEpoch] = None


@dataclass(frozen=True)
class Stopped:
    """train_epoch's result when stop() ended the epoch early: the signal and the progress so far
    (PartialEpoch.dspike left None)."""

    signum: int
    progress: PartialEpoch


def train_epoch(net: nn.Module, model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                settings: StepSettings, ctx: Context, plan: EpochPlan) -> dict | Stopped:
    """One pass over loader as plan says; returns the epoch's training metrics, reduced over ranks,
    or Stopped when plan.stop() asked to end it early.

    net runs the forward (model, or model inside DDP); model is the bare network whose LIFs hold
    the IM-Loss membranes. Raises NonFiniteLoss before the update of a step whose loss is not
    finite on any rank or whose gradient (global L2 norm, after DDP's all-reduce, so equal on
    every rank) is not finite.
    -> {train_loss, train_ce, train_im, train_acc, images, epoch_seconds}
    """
    net.train()
    epoch, epochs, resume_from = plan.epoch, plan.epochs, plan.resume_from
    sums = torch.zeros(5, dtype=torch.float64, device=settings.device)  # loss*n, ce*n, im*n, correct, n
    first, before = 0, 0.0
    if resume_from is not None:
        first, before = resume_from.step, resume_from.seconds
        if ctx.main:  # the sums are global: count them once
            sums += torch.tensor(resume_from.sums, dtype=torch.float64, device=settings.device)
    steps = first + len(loader)
    # without IM-Loss its value is still logged, where it is defined (a factory model may have no restricted LIF)
    logged_im = any(m.im for m in lif_layers(model))
    bar = tqdm(total=len(loader.sampler) * ctx.world, unit="img", unit_scale=True, leave=False, dynamic_ncols=True,
               desc=f"epoch {epoch + 1}/{epochs}", disable=not plan.progress)
    start = time.perf_counter()
    for step, (x, y) in enumerate(loader, start=first):
        x, y = model_input(x, settings), y.to(settings.device, non_blocking=True)
        if step == 0 and plan.select is not None:
            plan.select(x, y)
        with _autocast(settings):
            logits = net(x, T=settings.T)
        ce = F.cross_entropy(logits.float(), y)
        if settings.im_lambda > 0:
            im = distributed.im_loss(model, ctx)
            loss = ce + settings.im_lambda * im
        else:
            im, loss = (im_loss(model).detach() if logged_im else ce.detach().new_zeros(())), ce
        value = loss.item()
        if distributed.all_max(float(not math.isfinite(value)), ctx) > 0:
            raise NonFiniteLoss(f"non-finite loss {value} (CE {ce.item()}, IM {im.item()})", epoch + 1, epochs,
                                step + 1, steps)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        norm = (nn.utils.clip_grad_norm_(model.parameters(), settings.clip_grad) if settings.clip_grad is not None
                else nn.utils.get_total_norm(grads)).item()
        if not math.isfinite(norm):  # e.g. NaN weights: the fused LIFs emit 0 spikes, so the loss stays finite
            raise NonFiniteLoss(f"non-finite gradient (global L2 norm {norm})", epoch + 1, epochs, step + 1, steps)
        optimizer.step()
        n = y.numel()
        sums[:3] += torch.stack([loss.detach(), ce.detach(), im.detach()]).double() * n
        sums[3] += (logits.argmax(1) == y).sum()
        sums[4] += n
        bar.update(n * ctx.world)
        bar.set_postfix(loss=f"{value:.4f}", refresh=False)
        if plan.stop is not None and step + 1 < steps:
            signum = int(distributed.all_max(float(plan.stop()), ctx))
            if signum:
                bar.close()
                return Stopped(signum, PartialEpoch(step + 1, steps, distributed.all_sum(sums, ctx).tolist(),
                                                    before + time.perf_counter() - start))
    seconds = before + time.perf_counter() - start
    bar.close()
    loss_sum, ce_sum, im_sum, correct, count = distributed.all_sum(sums, ctx).tolist()
    return {"train_loss": loss_sum / count, "train_ce": ce_sum / count, "train_im": im_sum / count,
            "train_acc": correct / count, "images": int(count), "epoch_seconds": seconds}


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, settings: StepSettings, ctx: Context,
             rates: bool = False) -> tuple[float, dict[str, float]]:
    """Accuracy of model (eval mode) over this rank's shard of a dataset, reduced over ranks.

    rates: also return each LIF layer's spike rate over the whole dataset (else, or without LIF layers, {}).
    -> (accuracy in [0, 1], {layer name: spike rate})
    """
    model.eval()
    # a factory model trained without IM-Loss may have no snn.LIF: then there is no rate to report
    monitor = SpikeRateMonitor(model) if rates and lif_layers(model) else None
    correct = torch.zeros((), dtype=torch.float64, device=settings.device)
    count = 0
    try:
        for x, y in loader:
            x, y = model_input(x, settings), y.to(settings.device, non_blocking=True)
            with _autocast(settings):
                logits = model(x, T=settings.T)
            correct += (logits.argmax(1) == y).sum()
            count += y.numel()
    finally:
        if monitor is not None:
            monitor.remove()
    layer_rates = monitor.rates() if monitor is not None else {}
    names = list(monitor.layers) if monitor is not None else []  # every rank sends every layer, 0 if unseen
    counts = [correct.item(), count, *(layer_rates.get(k, 0.0) * count for k in names)]
    totals = distributed.all_sum(torch.tensor(counts, dtype=torch.float64, device=settings.device), ctx).tolist()
    total = totals[1]
    if total == 0:
        raise ValueError("evaluation loader is empty on every rank: the dataset split has no samples")
    return totals[0] / total, {k: v / total for k, v in zip(names, totals[2:])}
