"""Running one backend of `lif_scan` with a fixed upstream gradient, and comparing to `naive`."""

from __future__ import annotations

import os

import pytest
import torch

from kernels import lif_scan
from kernels.lif.backends import FUSED_BACKENDS
from kernels.lif.fused_torch import surrogate_grad
from kernels.lif.params import LIFParams

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # what the kernel tests' `device` fixture gives


def _why_not(backend: str, device: str) -> str | None:
    """Why fused `backend` cannot run [T, N] float32 tensors on `device` here, in the words of its
    registered input check; None when it can. A backend that is not installed (its check raises
    RuntimeError) is run anyway under CI (CI=true), where it must be, so that it fails there."""
    check = FUSED_BACKENDS[backend].check
    try:
        if check is not None:
            check(torch.zeros(2, 3, device=device))
    except RuntimeError as e:
        return None if os.environ.get("CI") else str(e)
    except (ValueError, TypeError) as e:
        return str(e)
    return None


def fused_backends(device: str = DEVICE) -> list:
    """Every registered fused backend as a pytest param, skipped where it cannot run on `device`."""
    return [pytest.param(name, marks=pytest.mark.skipif(reason is not None, reason=reason or ""))
            for name in FUSED_BACKENDS for reason in [_why_not(name, device)]]


def runnable(device: str = DEVICE) -> list[str]:
    """The registered fused backends that run on `device` here, in registry order."""
    return [name for name in FUSED_BACKENDS if _why_not(name, device) is None]


# Relative gradient error allowed: for fp32 the bar the fused kernels are held to against naive,
# and one storage ulp for half dtypes (the Triton interpreter truncates fp32 -> bf16 stores where
# torch rounds to nearest).
GRAD_RTOL = {torch.float32: 1e-5, torch.float64: 1e-10, torch.float16: 2.0 ** -10, torch.bfloat16: 2.0 ** -7}


def run(x: torch.Tensor, backend: str, grad_spikes, grad_mean, **params):
    """-> (spikes, u_mean, dx) for loss = sum(spikes * grad_spikes) + grad_mean * u_mean.

    grad_spikes / grad_mean may be None: that output then takes no part in the loss.
    """
    x = x.detach().clone().requires_grad_()
    spikes, u_mean = lif_scan(x, backend=backend, **params)
    loss = 0
    if grad_spikes is not None:
        loss = loss + (spikes * grad_spikes).sum()
    if grad_mean is not None:
        loss = loss + grad_mean * u_mean
    loss.backward()
    return spikes.detach(), u_mean.detach(), x.grad


def _gradient_scale(rdx, grad_spikes, params) -> float:
    """The size dx is compared at: its largest entry, or the largest upstream spike gradient times
    the surrogate's peak, whichever is larger. The reference's own rounding error is relative to
    the latter: autograd's tanh backward forms 1 - tanh^2 in fp32, which cancels in the tails."""
    scale = rdx.double().abs().max().item()
    if grad_spikes is not None:
        p = LIFParams(**params)
        peak = surrogate_grad(torch.tensor([p.vth], dtype=torch.float64), p).item()  # every surrogate peaks at vth
        scale = max(scale, peak * grad_spikes.double().abs().max().item())
    return scale


def assert_matches_naive(x, backend, grad_spikes, grad_mean, **params):
    """Spikes bit for bit (same fp32 operations in the same order on one device, threshold ties
    included), u_mean to fp32 summation error, dx to GRAD_RTOL relative to `_gradient_scale`."""
    s, m, dx = run(x, backend, grad_spikes, grad_mean, **params)
    rs, rm, rdx = run(x, "naive", grad_spikes, grad_mean, **params)
    assert s.dtype == x.dtype and s.shape == x.shape
    if not torch.equal(s, rs):
        bad = (s != rs).nonzero()[:5].tolist()
        raise AssertionError(f"{backend}: spikes differ from naive at {bad} ({(s != rs).sum().item()} elements)")
    assert m.dtype == rm.dtype and m.dim() == 0
    scale = x.float().abs().mean().item() + 1e-6
    torch.testing.assert_close(m, rm, rtol=1e-5, atol=1e-6 * scale, msg=lambda e: f"{backend}: u_mean: {e}")
    assert dx.dtype == x.dtype and dx.shape == x.shape
    rtol = GRAD_RTOL[x.dtype]
    ref = rdx.double()
    err = (dx.double() - ref).abs()
    allowed = rtol * (ref.abs() + _gradient_scale(rdx, grad_spikes, params)) + 1e-30
    if not bool((err <= allowed).all()):
        i = int((err - allowed).argmax())
        raise AssertionError(f"{backend}: dx differs from naive: worst element {i}: {dx.flatten()[i].item()} vs "
                             f"{ref.flatten()[i].item()} (scale {_gradient_scale(rdx, grad_spikes, params):.3g}, "
                             f"rtol {rtol})")
