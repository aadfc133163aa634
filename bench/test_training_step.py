"""Group 2: one full training step (forward, CE + 2 IM-Loss, backward, SGD) of CIFARNet and
ResNet-19 with our LIF against the naive LIF and SpikingJelly's; images/s, and the activation
bytes autograd keeps (saved-tensor hooks) or, on CUDA, the peak memory of the step.

CPU: width 0.25, batch 16, T=4, 32x32 inputs. CUDA: the paper's width 1.0, batch 128, T=4.
--bench-tiny: CIFARNet alone, ours against naive, width 1/16, batch 2, T=2.
Before timing, each provider's logits and first-layer gradient are checked against the naive
LIF on identical weights and input (CE alone for SpikingJelly, whose IM term differs).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import snn
from kernels.profiling import saved_tensor_bytes

from .kernel_timing import sync
from .lif_providers import PROVIDERS
from .record import record
from .shapes import tiny

VARIANTS = {  # name -> (LIF keyword arguments, provider whose availability applies)
    "ours": ({"backend": "auto"}, "naive"),  # triton on CUDA, the native cpu backend on CPU (torch if not built)
    "ours+compact": ({"backend": "auto", "compact_state": True}, "naive"),
    "ours-torch": ({"backend": "torch"}, "torch"),  # the in-place torch ops path (the CPU default before cpu)
    "naive": ({"backend": "naive"}, "naive"),
    "spikingjelly": ({"backend": "auto"}, "spikingjelly"),
}


def _setup(device):
    if tiny():
        return {"width": 1 / 16, "batch": 2, "T": 2}
    if device == "cuda":
        return {"width": 1.0, "batch": 128, "T": 4}
    return {"width": 0.25, "batch": 16, "T": 4}


def _model(name, variant, width, device):
    from .sj_lif import use_spikingjelly

    kwargs, _ = VARIANTS[variant]
    torch.manual_seed(0)
    model = snn.models.build(name, num_classes=10, norm="tdbn", width=width, **kwargs)
    if variant == "spikingjelly":
        use_spikingjelly(model)
    return model.to(device)


def _loss(model, x, y, T, lam=2.0):
    logits = model(x, T=T)
    return F.cross_entropy(logits, y) + lam * snn.im_loss(model), logits


def _first_grad(model, x, y, T, lam):
    model.zero_grad()
    loss, logits = _loss(model, x, y, T, lam)
    loss.backward()
    weight = next(p for p in model.parameters() if p.dim() == 4)
    return logits.detach(), weight.grad.detach().clone()


def _check(model, reference, x, y, T, exact: bool, lam: float):
    logits, grad = _first_grad(model, x, y, T, lam)
    ref_logits, ref_grad = _first_grad(reference, x, y, T, lam)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-4, atol=1e-4)
    cos = F.cosine_similarity(grad.flatten().double(), ref_grad.flatten().double(), dim=0).item()
    if cos < (1 - 1e-6 if exact else 0.99):
        raise AssertionError(f"first-layer gradient cosine similarity to the naive LIF: {cos:.6f}")


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("arch", ["cifarnet", "resnet19"])
def test_training_step(benchmark, arch, variant, device, device_name):
    reason = PROVIDERS[VARIANTS[variant][1]].unavailable(device, torch.float32)
    if variant == "ours-torch" and device != "cpu":
        reason = "the torch backend is the CPU baseline of the native cpu backend"
    if reason:
        pytest.skip(reason)
    if tiny() and (arch != "cifarnet" or variant not in ("ours", "naive")):
        pytest.skip("--bench-tiny: CIFARNet alone, ours against naive")
    cfg = _setup(device)
    model = _model(arch, variant, cfg["width"], device)
    reference = _model(arch, "naive", cfg["width"], device)
    reference.load_state_dict(model.state_dict())
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(cfg["batch"], 3, 32, 32, generator=g, device=device)
    y = torch.randint(0, 10, (cfg["batch"],), generator=g, device=device)
    # SpikingJelly's IM term is a different quantity (post-reset mean): its check uses CE alone.
    _check(model, reference, x, y, cfg["T"], exact=variant in ("ours", "ours-torch", "naive"),
           lam=0.0 if variant == "spikingjelly" else 2.0)
    del reference
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss, _ = _loss(model, x, y, cfg["T"])
        loss.backward()
        optimizer.step()
        sync(device)

    saved = saved_tensor_bytes(lambda: _loss(model, x, y, cfg["T"]))
    peak = None
    if device == "cuda":
        step()
        torch.cuda.reset_peak_memory_stats()
        step()
        peak = torch.cuda.max_memory_allocated()
    benchmark.pedantic(step, rounds=10 if device == "cuda" else 3, warmup_rounds=2, iterations=1)
    stats = getattr(benchmark, "stats", None)
    record(benchmark, kernel="training_step", provider=variant, mode="fwdbwd", model=arch, T=cfg["T"],
           batch=cfg["batch"], width=cfg["width"], dtype=torch.float32, shape=f"{arch}-w{cfg['width']}",
           device=device_name, saved_bytes=saved, peak_bytes=peak,
           images_per_s=None if stats is None else cfg["batch"] / stats.stats.median)
