"""`lif_scan`: the multi-timestep LIF neuron with a surrogate-gradient backward and the
differentiable membrane mean that IM-Loss needs, on three interchangeable backends."""

from __future__ import annotations

import torch

from . import fused_cpu
from .backends import FUSED_BACKENDS
from .function import scan
from .layout import in_layout_of
from .naive import lif_scan_naive
from .params import RESETS, SURROGATES, LIFParams, validated

BACKENDS = ("auto", "naive", *FUSED_BACKENDS)
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def _check_input(x) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape [T, ...], got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"x must be a floating tensor (float32, float16, bfloat16; float64 on the cpu, "
                        f"torch and naive backends), got dtype {x.dtype}")
    if x.dim() == 0:
        raise ValueError("x must have a leading time dimension, shape [T, ...] with T >= 1; got a 0-d tensor")
    if x.shape[0] == 0:
        raise ValueError(f"x must have T >= 1 timesteps along dim 0, got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"x must have at least one neuron per timestep, got shape {tuple(x.shape)}")


def _check_triton_input(x: torch.Tensor) -> None:
    from . import fused_triton  # imported lazily: triton is optional off Linux

    if x.device.type not in ("cuda", "meta") and not fused_triton.interpreting():
        raise ValueError(f"backend='triton' needs a CUDA tensor, or TRITON_INTERPRET=1 set before triton is "
                         f"imported to run on CPU tensors; got a tensor on {x.device}")
    if x.dtype not in fused_triton.SUPPORTED_DTYPES:
        raise TypeError(f"backend='triton' supports float32, float16 and bfloat16, got {x.dtype}; "
                        f"use backend='torch' for float64")


def _check_cpu_input(x: torch.Tensor) -> None:
    if x.device.type != "meta":  # meta tensors only need the op's fake implementation
        fused_cpu.require(x)


_INPUT_CHECKS = {"triton": _check_triton_input, "cpu": _check_cpu_input}  # backends that accept only some devices or dtypes


def lif_scan(x: torch.Tensor, vth: float = 0.5, decay: float = 0.25, surrogate: str = "tanh",
             alpha: float = 1.0, reset: str = "hard", detach_reset: bool = False,
             backend: str = "auto", compact_state: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-timestep LIF neuron (paper eq. 5-6) with the membrane mean of IM-Loss (eq. 11).

    x: [T, ...] float32/float16/bfloat16 (float64 on 'torch' and 'naive'), any layout; meta
    tensors give output shapes without computing (fake implementations of the custom ops).
    Returns (spikes, u_mean): spikes [T, ...] in x.dtype with values 0/1, laid out as
    `torch.empty_like(x)` (x's strides when x is dense, else contiguous; the fused backends' dL/dx
    too); u_mean the 0-d mean of the pre-reset membrane over all T x N elements (fp32; fp64 for
    fp64 input), differentiable.
      hard reset: u(t) = decay * u(t-1) * (1 - o(t-1)) + x(t);  soft: decay * (u(t-1) - vth o(t-1)) + x(t)
      o(t) = 1[u(t) >= vth], u(0) = o(0) = 0.
    Non-finite input follows IEEE arithmetic of these formulas, and spikes stay 0/1 in every
    backend: a NaN membrane never fires (NaN >= vth is false), +inf fires, -inf does not (a hard
    reset after +inf gives inf * 0 = NaN, so the next membrane is NaN); u_mean becomes NaN.
    Gradients on non-finite values, the same in every backend (what autograd gives on the naive
    loop): the reverse-time recurrence of fused_torch.bwd in IEEE arithmetic, except that rect and
    dspike select exactly 0 outside their window (a NaN membrane is outside every window), also
    for a NaN or infinite dL/do(t); tanh has no window (sg(+-inf) = 0, sg(NaN) = NaN); the
    hard-reset factor is 1 - o(t) of the emitted spike (1 for a NaN membrane); a path that does
    not exist adds nothing, not 0 * NaN (no reset path leaves t = T-1 or exists under
    detach_reset; without a spike gradient, no surrogate term where no reset path leaves t).
    surrogate (spike backward), alpha its runtime parameter:
      'tanh'   d/du [0.5 tanh(alpha (u - vth)) + 0.5]  (ESG sets alpha = K(i), eq. 13-15)
      'rect'   1/alpha on |u - vth| < alpha/2           (tdBN's rectangular)
      'dspike' Dspike of temperature b = alpha on x = u / (2 vth): window 0 <= u <= 2 vth, centred on vth
    detach_reset: stop the gradient through o(t-1) in the reset term.
    backend: 'naive' (autograd loop, the reference), 'cpu' (native fused CPU loops, built with
    the package), 'torch' (fused in-place torch ops, any device), 'triton' (CUDA, or CPU under
    TRITON_INTERPRET=1), 'auto' (triton on CUDA; cpu on CPU when built, else torch). The fused
    backends (backends.FUSED_BACKENDS) run as the custom ops torch.ops.lif.scan_fwd / scan_bwd
    (op.py), so torch.compile(fullgraph=True) traces a model without a graph break.
    compact_state (fused backends): save the membrane in bf16 plus spike bits (2.125 bytes per
    element instead of 4) for the backward; spikes stay exact, gradients see a bf16 membrane.
    """
    p = validated(vth, decay, surrogate, alpha, reset, detach_reset)
    _check_input(x)
    if not isinstance(compact_state, bool):
        raise TypeError(f"compact_state must be a bool, got {compact_state!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        backend = ("triton" if x.device.type == "cuda" and x.dtype != torch.float64
                   else "cpu" if fused_cpu.usable(x) else "torch")
    if backend == "naive":
        if compact_state:
            raise ValueError(f"compact_state=True needs a fused backend (one of {tuple(FUSED_BACKENDS)}); "
                             f"'naive' is the exact reference")
        spikes, u_mean = lif_scan_naive(x, p)
        return in_layout_of(spikes, x), u_mean
    if backend in _INPUT_CHECKS:
        _INPUT_CHECKS[backend](x)
    return scan(backend, x, p, compact_state)


__all__ = ["lif_scan", "LIFParams", "BACKENDS", "SURROGATES", "RESETS"]
