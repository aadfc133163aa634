"""Group 3: what choosing the surrogate costs. Dspike re-selects its temperature once per epoch by
finite differences over the first layer's weights (2n forwards for n weights); ESG looks K(i) up
in a schedule. Measured per architecture in units of ordinary training steps, and as overhead
per epoch of the paper's dataset at the benchmark's batch size. The paper calls Dspike's
selection "very time-consuming"; this measures it.

CPU: width 1/16, batch 4, T=2, inputs 32x32 (64x64 for the ImageNet networks), eps 0.1 (at this
width a smaller step leaves the loss unchanged): the same code path as the paper's networks,
small enough for 2 cores. CUDA: width 1.0, batch 32, T=2, Dspike's default eps. --bench-tiny:
CIFARNet alone, with the CPU setting.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import snn
from kernels.profiling import median_seconds

from .kernel_timing import sync
from .record import record
from .shapes import tiny

# (architecture, classes, training images of its dataset, input size on CPU, on CUDA)
ARCHS = [("cifarnet", 10, 50_000, 32, 32), ("resnet19", 10, 50_000, 32, 32), ("vgg16", 10, 50_000, 32, 32),
         ("resnet34", 1000, 1_281_167, 64, 224), ("vgg16", 1000, 1_281_167, 64, 224)]


def _config(device):
    if tiny():  # the CPU setting (at batch 2 the loss stays flat under every +-eps step)
        return {"width": 1 / 16, "batch": 4, "T": 2, "eps": 0.1}
    if device == "cuda":
        return {"width": 1.0, "batch": 32, "T": 2, "eps": snn.dspike.EPS}
    return {"width": 1 / 16, "batch": 4, "T": 2, "eps": 0.1}


@pytest.mark.parametrize(("arch", "classes", "train_images", "cpu_size", "cuda_size"), ARCHS,
                         ids=[f"{a}-{c}cls" for a, c, *_ in ARCHS])
def test_dspike_selection_vs_esg(benchmark, arch, classes, train_images, cpu_size, cuda_size, device, device_name):
    cfg = _config(device)
    if tiny() and arch != "cifarnet":
        pytest.skip("--bench-tiny: CIFARNet alone")
    size = 32 if tiny() else cuda_size if device == "cuda" else cpu_size
    torch.manual_seed(0)
    model = snn.models.build(arch, num_classes=classes, norm="tdbn", width=cfg["width"], input_size=size,
                             surrogate="dspike", alpha=snn.dspike.B0).to(device)
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(cfg["batch"], 3, size, size, generator=g, device=device)
    y = torch.randint(0, classes, (cfg["batch"],), generator=g, device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x, T=cfg["T"]), y).backward()
        optimizer.step()

    choices = []

    def select():
        choices.append(snn.dspike.select_temperature(model, x, y, F.cross_entropy, eps=cfg["eps"], T=cfg["T"]))
        sync(device)

    benchmark.pedantic(select, rounds=1, iterations=1)
    choice = choices[-1]
    step_s = median_seconds(train_step, repeats=3, warmup=1)  # after: steps move the weights
    esg_model = snn.models.build(arch, num_classes=classes, norm="tdbn", width=cfg["width"], input_size=size)
    esg = snn.ESG(esg_model, epochs=300)
    esg_s = median_seconds(esg.step, repeats=50, warmup=0)
    steps_per_epoch = math.ceil(train_images / cfg["batch"])
    assert choice.forwards == 2 * next(p for p in model.parameters() if p.dim() == 4).numel()
    record(benchmark, kernel="esg_vs_dspike", provider="dspike", mode="select", model=arch, T=cfg["T"],
           batch=cfg["batch"], width=cfg["width"], dtype=torch.float32, shape=f"{arch}-{classes}cls-{size}px",
           device=device_name, forwards=choice.forwards, model_calls=choice.model_calls,
           selection_s=choice.seconds, train_step_s=step_s, selection_in_train_steps=choice.seconds / step_s,
           steps_per_epoch=steps_per_epoch,
           dspike_epoch_overhead=choice.seconds / (steps_per_epoch * step_s),
           esg_step_s=esg_s, esg_epoch_overhead=esg_s / (steps_per_epoch * step_s), chosen_b=choice.b)
