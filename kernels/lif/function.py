"""The fused backends' interface, and `scan`, which runs one through the custom ops of `op.py`.

A fused backend is a module, registered by name in `backends.FUSED_BACKENDS`, with two functions
on time-major matrices:
  fwd(x [T, N], out [T, N], p, save) -> (saved tensors or None, u_mean 0-d)
      writes the spikes into `out`; save is None (inference: nothing kept), "exact" or "compact";
      u_mean in fp32 (fp64 for fp64 x).
  bwd(grad_spikes [T, N] or None, grad_mean 0-d or None, saved, p, dx [T, N]) -> None
      one reverse-time pass writing dL/dx into `dx`.
x, out, grad_spikes and dx are views of dense memory with row stride N; the ops make them.
Saved for backward, per element:
  "exact":   (u,): the pre-reset membrane in fp32, [T, N] (4 bytes; fp64 for fp64 input). The
             spikes are recomputed as u >= vth, bit for bit those the forward emitted.
  "compact": (u, bits): u rounded to bf16 [T, N] (2 bytes) plus the emitted spikes as packed
             bits [T, ceil(N / 8)] uint8 (bit j of byte k = neuron 8k + j). Spikes stay exact; the
             surrogate and reset-path gradients see the bf16 membrane.
"""

from __future__ import annotations

import torch

from . import op  # importing op registers torch.ops.lif.scan_fwd / scan_bwd
from .params import LIFParams


class _EagerScan(torch.autograd.Function):
    """The custom ops' forward and backward implementations (`op.forward` / `op.backward`) called
    directly, for eager calls: the same computation without the dispatcher's round trips, the
    float64 alpha tensor and a second validation of the settings (about half of a call's host
    time; bench/host_time.py). torch.compile never sees it (`scan` takes the ops while tracing),
    so every layout decision still happens on the tensors that arrive."""

    @staticmethod
    def forward(ctx, x, p: LIFParams, backend: str, state: str):
        spikes, u_mean, u, bits = op.forward(x, p, backend, state)
        ctx.save_for_backward(u, bits)
        ctx.set_materialize_grads(False)  # an unused output must not cost a [T, N] zero tensor
        ctx.settings = (p, backend, state)
        ctx.layout = (spikes.shape, spikes.stride(), spikes.dtype)
        return spikes, u_mean

    @staticmethod
    def backward(ctx, grad_spikes, grad_mean):
        u, bits = ctx.saved_tensors
        return op.backward(grad_spikes, grad_mean, u, bits, *ctx.settings, *ctx.layout), None, None, None


def scan(backend: str, x: torch.Tensor, p: LIFParams, compact_state: bool = False):
    """(spikes, u_mean) of fused backend `backend` (a name in FUSED_BACKENDS) on x [T, ...].

    Saves the exact (or compact) state only when autograd needs dL/dx; otherwise nothing. Under
    torch.compile, and for meta tensors (the ops' fake implementations), it calls the custom ops;
    otherwise the same implementations directly (`_EagerScan`).
    """
    if torch.is_grad_enabled() and x.requires_grad:
        state = "compact" if compact_state else "exact"
    else:
        state = "none"
    if torch.compiler.is_compiling() or x.device.type == "meta":
        spikes, u_mean, _, _ = torch.ops.lif.scan_fwd(x, p.vth, p.decay, p.surrogate, op.alpha_arg(p.alpha), p.reset,
                                                      p.detach_reset, backend, state)
        return spikes, u_mean
    if state == "none":
        spikes, u_mean, _, _ = op.forward(x, p, backend, state)
        return spikes, u_mean
    return _EagerScan.apply(x, p, backend, state)
