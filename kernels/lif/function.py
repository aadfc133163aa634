"""The autograd wiring shared by the fused backends (`torch` and `triton`).

A backend is a module with two functions on time-major matrices:
  fwd(x [T, N], out [T, N], p, save) -> (u [T, N] fp32 or None, u_mean 0-d)
      writes the spikes into `out`; returns the pre-reset membrane only when `save`.
  bwd(grad_spikes [T, N] or None, grad_mean 0-d or None, u [T, N], p, dx [T, N]) -> None
      one reverse-time pass writing dL/dx into `dx`.
Saved for backward: the pre-reset membrane u alone (4 bytes per element in fp32, 8 for fp64
input); the spikes are recomputed from it as `u >= vth`, which reproduces bit for bit the
spikes the forward emitted, whatever the storage dtype. Inference saves nothing.
"""

from __future__ import annotations

import torch

from .layout import as_matrix, matching_layout, scan_layout
from .params import LIFParams


def run_forward(backend, x: torch.Tensor, p: LIFParams, save: bool):
    """-> (spikes shaped like x, u [T, N] or None, u_mean 0-d)."""
    x = scan_layout(x)
    spikes = torch.empty_like(x)
    u, u_mean = backend.fwd(as_matrix(x), as_matrix(spikes), p, save)
    return spikes, u, u_mean


class ScanFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: LIFParams, backend):
        spikes, u, u_mean = run_forward(backend, x, p, save=True)
        ctx.set_materialize_grads(False)  # an unused output must not cost a [T, N] zero tensor
        ctx.save_for_backward(u)
        # Keep only the layout of x (not a tensor) so that nothing but u stays alive.
        ctx.p, ctx.backend = p, backend
        ctx.layout = (spikes.shape, spikes.stride(), spikes.dtype, spikes.device)
        return spikes, u_mean

    @staticmethod
    def backward(ctx, grad_spikes, grad_mean):
        (u,) = ctx.saved_tensors
        shape, stride, dtype, device = ctx.layout
        dx = torch.empty_strided(shape, stride, dtype=dtype, device=device)
        gs = None if grad_spikes is None else as_matrix(matching_layout(grad_spikes, dx))
        ctx.backend.bwd(gs, grad_mean, u, ctx.p, as_matrix(dx))
        return dx, None, None


def scan(backend, x: torch.Tensor, p: LIFParams):
    """Differentiable when autograd needs dL/dx; otherwise a forward that saves nothing."""
    if torch.is_grad_enabled() and x.requires_grad:
        return ScanFunction.apply(x, p, backend)
    spikes, _, u_mean = run_forward(backend, x, p, save=False)
    return spikes, u_mean
