"""`lif_scan`: the multi-timestep LIF neuron with a surrogate-gradient backward and the
differentiable membrane mean that IM-Loss needs, on interchangeable backends (backends.py)."""

from __future__ import annotations

import torch

from .backends import ALL_FLOATS, BACKENDS, FUSED_BACKENDS, auto_backend
from .dispatch import EagerScan, forward, scalar_arg
from .layout import in_layout_of
from .naive import lif_scan_naive
from .params import validated

# The backends that take float64 input, for the error message: the registry's dtypes say which.
_FLOAT64_BACKENDS = ("naive", *(name for name, b in FUSED_BACKENDS.items() if torch.float64 in b.dtypes))


def _check_input(x) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape [T, ...], got {type(x).__name__}")
    if x.dtype not in ALL_FLOATS:
        raise TypeError(f"x must be a floating tensor (float32, float16, bfloat16; float64 on the backends "
                        f"{_FLOAT64_BACKENDS}), got dtype {x.dtype}")
    if x.dim() == 0:
        raise ValueError("x must have a leading time dimension, shape [T, ...] with T >= 1; got a 0-d tensor")
    if x.shape[0] == 0:
        raise ValueError(f"x must have T >= 1 timesteps along dim 0, got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"x must have at least one neuron per timestep, got shape {tuple(x.shape)}")


def _decay_value(decay):
    """(the float decay to validate, the learnable decay tensor or None). A tensor decay must be
    0-d and floating; its value is read on the host (one device sync for a CUDA tensor), except
    while torch.compile traces, where the custom op reads it at run time."""
    if not isinstance(decay, torch.Tensor):
        return decay, None
    if decay.shape != () or not decay.dtype.is_floating_point:
        raise TypeError(f"decay must be a number or a 0-d floating tensor (a learnable decay), got a tensor of "
                        f"shape {tuple(decay.shape)} and dtype {decay.dtype}")
    if torch.compiler.is_compiling() or decay.device.type == "meta":
        return 0.25, decay  # a stand-in that passes validation; the op validates the real value
    return decay.detach().item(), decay


def lif_scan(x: torch.Tensor, vth: float = 0.5, decay: float | torch.Tensor = 0.25, surrogate: str = "tanh",
             alpha: float = 1.0, reset: str = "hard", detach_reset: bool = False,
             backend: str = "auto", compact_state: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-timestep LIF neuron (paper eq. 5-6) with the membrane mean of IM-Loss (eq. 11).
    The contract (equations, non-finite rule, surrogates, ranges, saved state): docs/kernel.md.

    x: [T, ...] float32/float16/bfloat16 (float64 where the backend's registry entry admits it), T >= 1, at least
    one neuron, any layout; meta tensors give output shapes without computing.
    Returns (spikes, u_mean): spikes [T, ...] in x.dtype with values 0/1, laid out as
    `torch.empty_like(x)` (the fused backends' dL/dx too); u_mean the 0-d mean of the pre-reset
    membrane over all T x N elements (fp32; fp64 for fp64 input), differentiable.
    vth: threshold; decay: the leak, a number or a 0-d floating tensor whose gradient the
    backward computes (a learnable decay, e.g. PLIF's 1 - sigmoid(w)); reset: 'hard' or 'soft';
    detach_reset: no gradient through o(t-1) in the reset term.
    surrogate (params.SURROGATES: 'tanh', 'rect', 'dspike', 'atan') and alpha, its runtime
    parameter: the spike's backward.
    backend: 'naive' (autograd loop, the reference), a registered fused backend
    (backends.FUSED_BACKENDS; they run as the custom ops torch.ops.lif.scan_fwd / scan_bwd, so
    torch.compile(fullgraph=True) traces them without a graph break), or 'auto' (the registry's
    auto order: triton on CUDA; cpu on CPU when built, else torch).
    compact_state (fused backends): save the membrane in bf16 plus spike bits (2.125 bytes per
    element instead of 4) for the backward; spikes stay exact, gradients see a bf16 membrane.
    Raises TypeError / ValueError naming the bad argument and what is accepted (also for a
    device or dtype the chosen backend does not take), RuntimeError for a backend not built.
    """
    decay_value, decay_tensor = _decay_value(decay)
    p = validated(vth, decay_value, surrogate, alpha, reset, detach_reset)
    _check_input(x)
    if not isinstance(compact_state, bool):
        raise TypeError(f"compact_state must be a bool, got {compact_state!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        backend = auto_backend(x)
    if backend == "naive":
        if compact_state:
            raise ValueError(f"compact_state=True needs a fused backend (one of {tuple(FUSED_BACKENDS)}); "
                             f"'naive' is the exact reference")
        spikes, u_mean = lif_scan_naive(x, p, decay_tensor)
        return in_layout_of(spikes, x), u_mean
    check = FUSED_BACKENDS[backend].check
    if check is not None:
        check(x)
    # The state the backward needs, kept only when autograd will ask for a gradient
    learnable = decay_tensor is not None and decay_tensor.requires_grad
    wants_grad = torch.is_grad_enabled() and (x.requires_grad or learnable)
    state = ("compact" if compact_state else "exact") if wants_grad else "none"
    if torch.compiler.is_compiling() or x.device.type == "meta":  # the ops: opaque to the compiler, fake for meta
        decay_arg = scalar_arg(p.decay) if decay_tensor is None else decay_tensor
        return torch.ops.lif.scan_fwd(x, p.vth, decay_arg, p.surrogate, scalar_arg(p.alpha), p.reset, p.detach_reset,
                                      backend, state)[:2]
    if state == "none":
        return forward(x, p, backend, state)[:2]
    return EagerScan.apply(x, decay_tensor, p, backend, state)
