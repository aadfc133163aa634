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

from .op import alpha_arg  # importing op registers torch.ops.lif.scan_fwd / scan_bwd
from .params import LIFParams


def scan(backend: str, x: torch.Tensor, p: LIFParams, compact_state: bool = False):
    """(spikes, u_mean) of fused backend `backend` (a name in FUSED_BACKENDS) on x [T, ...].

    Saves the exact (or compact) state only when autograd needs dL/dx; otherwise nothing.
    """
    if torch.is_grad_enabled() and x.requires_grad:
        state = "compact" if compact_state else "exact"
    else:
        state = "none"
    spikes, u_mean, _, _ = torch.ops.lif.scan_fwd(x, p.vth, p.decay, p.surrogate, alpha_arg(p.alpha), p.reset,
                                                  p.detach_reset, backend, state)
    return spikes, u_mean
