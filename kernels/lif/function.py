"""The autograd wiring shared by the fused backends (`torch` and `triton`).

A backend is a module with two functions on time-major matrices:
  fwd(x [T, N], out [T, N], p, save) -> (saved tensors or None, u_mean 0-d)
      writes the spikes into `out`; save is None (inference: nothing kept), "exact" or "compact".
  bwd(grad_spikes [T, N] or None, grad_mean 0-d or None, saved, p, dx [T, N]) -> None
      one reverse-time pass writing dL/dx into `dx`.
Saved for backward, per element:
  "exact":   the pre-reset membrane u in fp32 (4 bytes; 8 for fp64 input). The spikes are
             recomputed as u >= vth, bit for bit those the forward emitted, whatever the dtype.
  "compact": u rounded to bf16 (2 bytes) plus the emitted spikes as packed bits (1/8 byte).
             Spikes stay exact; the surrogate and reset-path gradients see the bf16 membrane.
"""

from __future__ import annotations

import torch

from .layout import as_matrix, matching_layout, scan_layout
from .params import LIFParams

STATES = ("exact", "compact")


def run_forward(backend, x: torch.Tensor, p: LIFParams, save: str | None):
    """-> (spikes shaped like x, saved tensors or None, u_mean 0-d)."""
    x = scan_layout(x)
    spikes = torch.empty_like(x)
    saved, u_mean = backend.fwd(as_matrix(x), as_matrix(spikes), p, save)
    return spikes, saved, u_mean


class ScanFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: LIFParams, backend, state: str):
        spikes, saved, u_mean = run_forward(backend, x, p, save=state)
        ctx.set_materialize_grads(False)  # an unused output must not cost a [T, N] zero tensor
        ctx.save_for_backward(*saved)
        # Keep only the layout of x (not a tensor) so that nothing but the saved state stays alive.
        ctx.p, ctx.backend = p, backend
        ctx.layout = (spikes.shape, spikes.stride(), spikes.dtype, spikes.device)
        return spikes, u_mean

    @staticmethod
    def backward(ctx, grad_spikes, grad_mean):
        shape, stride, dtype, device = ctx.layout
        dx = torch.empty_strided(shape, stride, dtype=dtype, device=device)
        gs = None if grad_spikes is None else as_matrix(matching_layout(grad_spikes, dx))
        ctx.backend.bwd(gs, grad_mean, ctx.saved_tensors, ctx.p, as_matrix(dx))
        return dx, None, None, None


def scan(backend, x: torch.Tensor, p: LIFParams, state: str = "exact"):
    """Differentiable when autograd needs dL/dx; otherwise a forward that saves nothing."""
    if torch.is_grad_enabled() and x.requires_grad:
        return ScanFunction.apply(x, p, backend, state)
    spikes, _, u_mean = run_forward(backend, x, p, save=None)
    return spikes, u_mean
