"""One training step of a SpikingJelly CIFARNet before and after `snn.interop.spikingjelly.convert`.

The same network, written the SpikingJelly way (multi-step `neuron.LIFNode`, tau = 2, its default
Sigmoid(4) surrogate, convolutions in `layer.SeqToANNContainer`, direct encoding over T): the
original steps with `functional.reset_net` and cross-entropy (SpikingJelly has no pre-reset
membrane for IM-Loss); the converted copy, the same weights, steps with cross-entropy + 2 IM-Loss
(the recipe it is converted for). Before timing, the two models' logits are checked equal on
the benchmark's own input (cosine similarity > 0.999). images/s in the row; the report's `sj_convert_step` table.

CPU: width 0.25, batch 16, T=4, 32x32 inputs (as bench/test_training_step.py), one thread (see
cpu_threads). CUDA: width 1.0, batch 128, T=4.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import snn

from .kernel_timing import sync
from .record import record

PROVIDERS = ("spikingjelly", "converted")


def sj_cifarnet(width: float, num_classes: int = 10) -> nn.Sequential:
    """CIFARNet (128C3-256C3-AP2-512C3-AP2-1024C3-512C3-FC1024-FC512-FC, as snn.models.cifarnet)
    in SpikingJelly's multi-step layers: input [T, B, 3, 32, 32] -> logits [T, B, classes]."""
    from spikingjelly.activation_based import layer, neuron

    c = [max(1, round(n * width)) for n in (128, 256, 512, 1024, 512, 1024, 512)]

    def lif():
        return neuron.LIFNode(tau=2.0, step_mode="m")

    def conv(cin, cout):
        return layer.SeqToANNContainer(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))

    return nn.Sequential(
        conv(3, c[0]), lif(), conv(c[0], c[1]), lif(), layer.SeqToANNContainer(nn.AvgPool2d(2)),
        conv(c[1], c[2]), lif(), layer.SeqToANNContainer(nn.AvgPool2d(2)),
        conv(c[2], c[3]), lif(), conv(c[3], c[4]), lif(),
        layer.SeqToANNContainer(nn.Flatten(), nn.Linear(c[4] * 8 * 8, c[5])), lif(),
        layer.SeqToANNContainer(nn.Linear(c[5], c[6])), lif(),
        layer.SeqToANNContainer(nn.Linear(c[6], num_classes)),
    )


def _setup(device):
    if device == "cuda":
        return {"width": 1.0, "batch": 128, "T": 4}
    return {"width": 0.25, "batch": 16, "T": 4}


@pytest.fixture
def cpu_threads(device):
    """On CPU, one thread: SpikingJelly's per-time-step loop of small ops waits at an OpenMP
    barrier in each, which on a CPU shared with other jobs made its step time vary 2-4x from run
    to run with torch's default threads (the converted step far less); one thread measures the
    work of each step, not the contention."""
    if device != "cpu":
        yield None
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield 1
    torch.set_num_threads(threads)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sj_convert_step(benchmark, provider, device, device_name, cpu_threads):
    pytest.importorskip("spikingjelly", reason="SpikingJelly is an optional dependency (extra [spikingjelly])")
    from spikingjelly.activation_based import functional

    from snn.interop.spikingjelly import convert

    cfg = _setup(device)
    torch.manual_seed(0)
    original = sj_cifarnet(cfg["width"]).to(device)
    converted = convert(copy.deepcopy(original))
    g = torch.Generator(device=device).manual_seed(0)
    images = torch.randn(cfg["batch"], 3, 32, 32, generator=g, device=device)
    y = torch.randint(0, 10, (cfg["batch"],), generator=g, device=device)
    x = images.unsqueeze(0).repeat(cfg["T"], 1, 1, 1, 1)  # direct encoding: the image at every step
    with torch.no_grad():  # the exact comparisons are tests/snn/test_interop_spikingjelly.py's; here, on a
        functional.reset_net(original)  # network this deep, a spike an ulp from threshold may flip
        ours, theirs = converted(x).flatten().double(), original(x).flatten().double()
        cos = F.cosine_similarity(ours, theirs, dim=0).item()
        assert cos > 0.999, f"converted logits' cosine similarity to SpikingJelly's: {cos:.6f}"
    model = original if provider == "spikingjelly" else converted
    del original, converted
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        optimizer.zero_grad(set_to_none=True)
        if provider == "spikingjelly":
            functional.reset_net(model)
            loss = F.cross_entropy(model(x).mean(0), y)
        else:
            loss = F.cross_entropy(model(x).mean(0), y) + 2.0 * snn.im_loss(model)
        loss.backward()
        optimizer.step()
        sync(device)

    benchmark.pedantic(step, rounds=10 if device == "cuda" else 7, warmup_rounds=2, iterations=1)
    stats = getattr(benchmark, "stats", None)
    record(benchmark, kernel="sj_convert_step", provider=provider, mode="fwdbwd", model="sj-cifarnet", T=cfg["T"],
           batch=cfg["batch"], width=cfg["width"], dtype=torch.float32, shape=f"sj-cifarnet-w{cfg['width']}",
           device=device_name, threads=cpu_threads,
           images_per_s=None if stats is None else cfg["batch"] / stats.stats.median)
