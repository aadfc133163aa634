"""What Dspike's temperature selection would cost a trained row, measured, not estimated.

The row's network is rebuilt with the Dspike surrogate (LIFs hold no weights, so the trained
state dict loads unchanged), and one `snn.dspike.select_temperature` runs on one training batch
of the row's batch size, with the settings snn.train's `--surrogate dspike` uses (b0, db, eps
from the row's Config; fp32, as the engine's selector runs it). Dspike pays this once per epoch;
ESG's schedule only assigns K, which costs nothing measurable.

Perturbed weights per batched forward (`chunk`): the Config's on CUDA; on a CPU as many as keep
one call's first-layer output under CPU_CALL_BYTES. On the smoke rows (2 threads) a chunk of 1
ran ResNet-19 T=6 in 13.6 s against 29.7 s with 16 and the DVS row in 38 s against 94 s (cache
misses on the large batched activations), while ResNet-34, whose 7x7/2 stem maps are small, took
3.7 s with 16 against 12 s with 1 (per-call overhead over its 392 weights). The overhead is thus
measured near Dspike's best batching, not inflated by a slow one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from snn.dspike import FlatFiniteDifference, first_conv, select_temperature
from snn.train import Config, Results

from .budget import device_label
from .training import sync, trained_model_on_batch

CPU_CALL_BYTES = 8 * 2**20


def cpu_chunk(model, x: torch.Tensor, cfg: Config) -> int:
    """Weights per call on a CPU: one call holds 2 * chunk copies of the batch; keep the fp32
    first-layer output of the call under CPU_CALL_BYTES (at least 1, at most cfg.dspike_chunk)."""
    one = x[:1] if x.dim() == 4 else x[0, :1]  # one image (one frame of an event sequence)
    with torch.no_grad():
        per_image = first_conv(model)(one).numel() * 4
    per_weight = 2 * int(x.shape[-4]) * cfg.T * per_image  # x.shape[-4]: the batch, static or events
    return int(max(1, min(cfg.dspike_chunk, CPU_CALL_BYTES // per_weight)))


@dataclass(frozen=True)
class DspikeCost:
    """seconds: wall time of one selection; weights: first-layer weights n (2n perturbed forwards);
    batch: its mini-batch size; chunk: weights perturbed per batched forward; device: where it ran;
    flat: the finite difference was flat, so the selection kept b (the time is still that of the
    2n forwards)."""

    seconds: float
    weights: int
    batch: int
    chunk: int
    device: str
    flat: bool


def measure(cfg: Config, results: Results) -> DspikeCost:
    """Time one Dspike temperature selection on the trained network of `results` (trained with cfg)."""
    trained = trained_model_on_batch(replace(cfg, surrogate="dspike"), results)
    model, x, y, device = trained.model, trained.x, trained.y, trained.device
    F.cross_entropy(model(x, T=cfg.T), y).backward()  # warm-up: kernels compiled before the clock starts
    model.zero_grad(set_to_none=True)
    b, chunk = cfg.dspike_b0, cfg.dspike_chunk if device.type == "cuda" else cpu_chunk(model, x, cfg)
    sync(device)
    start = time.perf_counter()
    try:
        select_temperature(model, x, y, F.cross_entropy, b=b, db=min(cfg.dspike_db, b / 2), eps=cfg.dspike_eps,
                           T=cfg.T, chunk=chunk)
        flat = False
    except FlatFiniteDifference:
        flat = True
    sync(device)
    return DspikeCost(time.perf_counter() - start, first_conv(model).weight.numel(), int(y.numel()), chunk,
                      device_label(device), flat)
