"""One training step of SpikingJelly zoo models before and after `snn.interop.spikingjelly.convert`.

Each model as SpikingJelly users build it (multi-step `neuron.LIFNode`, tau = 2, Sigmoid(4)):
a CIFARNet-like network (`sj_cifarnet`), `spiking_resnet18` and `sew_resnet18` (ADD, detach_reset,
as in the SEW paper) and a small `Spikformer`. The original steps with `functional.reset_net` and
cross-entropy (SpikingJelly has no pre-reset membrane for IM-Loss); the converted copy, the same
weights, steps with cross-entropy + 2 IM-Loss (the recipe it is converted for). Before timing,
the two models' logits are checked equal on the benchmark's own input (cosine similarity > 0.999).

Timing: each round times one SpikingJelly step and one converted step, in alternating order, so
that a slow spell of a shared machine falls on both; the row records both medians and the
speed-up (SpikingJelly's median / the converted median) with the min and max of the per-round
ratios. The benchmark's own stats are those of the round (both steps).

CPU: batch 16 (CIFARNet, width 0.25) or 8 (the others), T = 4, 32x32 inputs, one thread (see
cpu_threads), 11 rounds. CUDA: batch 128, T = 4, 11 rounds. With --benchmark-disable each body
runs one round (the test suite's run).

    OMP_NUM_THREADS=1 python -m pytest bench/test_spikingjelly_convert.py --benchmark-only \
        --benchmark-json sj.json -p no:cacheprovider
    python bench/report.py sj.json --name <device>-sj-convert
"""

from __future__ import annotations

import copy
import statistics
import time

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


MODELS = ("sj-cifarnet", "spiking_resnet18", "sew_resnet18", "spikformer")
ROUNDS = 11


def zoo_model(name: str, width: float = 0.25) -> nn.Module:
    """A SpikingJelly model of MODELS (or ms_resnet18, with its default Rect surrogate) in
    multi-step mode, 10 classes, for [T, B, 3, 32, 32] input (Spikformer: [B, 3, 32, 32],
    repeated over its own T). width: the CIFARNet's only. ValueError for another name."""
    from spikingjelly.activation_based import functional, neuron, surrogate
    from spikingjelly.activation_based.model import ms_resnet, sew_resnet, spiking_resnet, spikformer

    if name == "sj-cifarnet":
        return sj_cifarnet(width)
    kwargs = dict(spiking_neuron=neuron.LIFNode, surrogate_function=surrogate.Sigmoid(), detach_reset=True,
                  num_classes=10)
    if name == "spiking_resnet18":
        model = spiking_resnet.spiking_resnet18(**kwargs)
    elif name == "sew_resnet18":
        model = sew_resnet.sew_resnet18(cnf="ADD", **kwargs)
    elif name == "ms_resnet18":
        model = ms_resnet.ms_resnet18(num_classes=10)
    elif name == "spikformer":
        model = spikformer.Spikformer(T=4, img_size_h=32, img_size_w=32, patch_size=4, num_classes=10,
                                      embed_dims=64, num_heads=4, depths=1)
    else:
        raise ValueError(f"model must be one of {MODELS + ('ms_resnet18',)}, got {name!r}")
    functional.set_step_mode(model, "m")
    return model


def _setup(device, name):
    batch = (128 if device == "cuda" else 16 if name == "sj-cifarnet" else 8)
    return {"width": 1.0 if device == "cuda" else 0.25, "batch": batch, "T": 4}


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


@pytest.mark.parametrize("name", MODELS)
def test_sj_convert_step(benchmark, name, device, device_name, cpu_threads):
    pytest.importorskip("spikingjelly", reason="SpikingJelly is an optional dependency (extra [spikingjelly])")
    from spikingjelly.activation_based import functional

    from snn.interop.spikingjelly import convert

    cfg = _setup(device, name)
    torch.manual_seed(0)
    original = zoo_model(name, cfg["width"]).to(device)
    g = torch.Generator(device=device).manual_seed(0)
    images = torch.randn(cfg["batch"], 3, 32, 32, generator=g, device=device)
    y = torch.randint(0, 10, (cfg["batch"],), generator=g, device=device)
    # direct encoding: the image at every step (Spikformer repeats it over its own T)
    x = images if name == "spikformer" else images.unsqueeze(0).repeat(cfg["T"], 1, 1, 1, 1)
    converted = convert(copy.deepcopy(original), example=x)

    def logits(model):
        out = model(x)
        return out.mean(0) if out.dim() == 3 else out

    with torch.no_grad():  # the exact comparisons are tests/snn/test_interop_spikingjelly.py's; here, on a
        functional.reset_net(original)  # network this deep, a spike an ulp from threshold may flip
        ours, theirs = logits(converted).flatten().double(), logits(original).flatten().double()
        cos = F.cosine_similarity(ours, theirs, dim=0).item()
        assert cos > 0.999, f"converted logits' cosine similarity to SpikingJelly's: {cos:.6f}"

    def stepper(model, spikingjelly):
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

        def step() -> float:
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            if spikingjelly:
                functional.reset_net(model)
                loss = F.cross_entropy(logits(model), y)
            else:
                loss = F.cross_entropy(logits(model), y) + 2.0 * snn.im_loss(model)
            loss.backward()
            optimizer.step()
            sync(device)
            return time.perf_counter() - start

        return step

    steps = {"spikingjelly": stepper(original, True), "converted": stepper(converted, False)}
    times = {"spikingjelly": [], "converted": []}

    def one_round():
        order = PROVIDERS if len(times["converted"]) % 2 == 0 else PROVIDERS[::-1]
        for provider in order:
            times[provider].append(steps[provider]())

    benchmark.pedantic(one_round, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    if getattr(benchmark, "stats", None) is not None:  # timed: drop the warm-up round
        for provider in PROVIDERS:
            del times[provider][0]
    ratios = [a / b for a, b in zip(times["spikingjelly"], times["converted"])]
    medians = {p: statistics.median(t) for p, t in times.items()}
    record(benchmark, kernel="sj_convert_step", provider="spikingjelly/converted", mode="fwdbwd", model=name,
           T=cfg["T"], batch=cfg["batch"], width=cfg["width"] if name == "sj-cifarnet" else None,
           dtype=torch.float32, shape=name, device=device_name, threads=cpu_threads,
           sj_median_s=medians["spikingjelly"], converted_median_s=medians["converted"],
           speedup=medians["spikingjelly"] / medians["converted"], speedup_min=min(ratios),
           speedup_max=max(ratios), timed_rounds=len(ratios))
