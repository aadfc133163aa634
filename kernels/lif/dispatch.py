"""Between `lif_scan` and the fused backends: the custom ops `torch.ops.lif.scan_fwd` /
`torch.ops.lif.scan_bwd` and the eager autograd Function, side by side, over one pair of
implementations (`forward`, `backward`) that call a backend's `fwd` / `bwd` (backends.py).
`lif_scan` picks the path: the ops while torch.compile traces and for meta tensors, `EagerScan`
otherwise, and `forward` alone when no gradient is needed.

Two autograd paths reach the same implementations:
- The custom ops, for torch.compile and meta tensors. Each op is opaque to the compiler, which
  sees only its schema and its fake implementation (output shapes, dtypes and strides) and calls
  the real implementation on real tensors. Layout decisions (stride comparisons, `as_strided`
  views, writes into preallocated buffers) therefore happen at run time on the tensors that
  actually arrive: made at trace time they would be wrong, since Inductor may give a
  convolution's input gradient a channels_last layout at run time. The ops carry
  `needs_exact_strides`, so Inductor passes inputs with the strides seen while tracing.
- `EagerScan`, for eager calls: the same implementations without the dispatcher's round trips,
  the float64 scalar tensors and a second validation of the settings (about half of a call's
  host time; bench/host_time.py).

alpha and decay reach the ops as 0-d tensors (`scalar_arg`, or the caller's learnable decay). A
float argument of a custom op is a constant of the compiled graph: torch.compile guards on its
value and traces again for every new one (until its recompile limit, 8 by default). ESG gives
each epoch a new alpha (paper eq. 15) and a learnable decay changes every step, so both travel as
tensors, which the compiled graph takes as inputs. Their values are read back with `.item()`
inside the op (free for the float64 CPU tensors of `scalar_arg`; one device sync for a learnable
decay on CUDA) and validated by `LIFParams` on every call, where they are concrete.

The Triton backend runs through these ops too, as an opaque custom op rather than
`torch.library.triton_op`: under TRITON_INTERPRET=1 a `triton_op` cannot be traced, since the
interpreter reads tensor data while torch.compile runs it on fake tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .backends import SAVED_STATES, backend_module, saved_state
from .layout import as_matrix, matching_layout, scan_buffer
from .params import LIFParams, compute_dtype

_TAGS = (torch.Tag.needs_exact_strides,)


def scalar_arg(value: float) -> torch.Tensor:
    """A setting as the ops' 0-d float64 CPU tensor, holding the Python float exactly.

    Written as an addition to a zero tensor: torch.compile turns a dynamic float used in tensor
    arithmetic into a graph input, while torch.tensor / torch.full / torch.scalar_tensor of it
    make it a constant again (one recompile per value; torch 2.14).
    """
    return torch.zeros((), dtype=torch.float64) + value


def _value(name: str, t: torch.Tensor) -> float:
    if not isinstance(t, torch.Tensor) or t.shape != () or not t.dtype.is_floating_point:
        raise TypeError(f"{name} must reach the op as a 0-d floating tensor (dispatch.scalar_arg(value) for a "
                        f"number), got {t!r}")
    return t.item()


def _params(vth, decay, surrogate, alpha, reset, detach_reset) -> LIFParams:
    return LIFParams(vth=vth, decay=_value("decay", decay), surrogate=surrogate, alpha=_value("alpha", alpha),
                     reset=reset, detach_reset=detach_reset)


def forward(x: torch.Tensor, p: LIFParams, backend: str, state: str):
    """x [T, ...] -> (spikes, u_mean, u, bits) of fused backend `backend`, settings validated in p.

    spikes: like `torch.empty_like(x)`, x.dtype, 0/1. u_mean: 0-d in the compute dtype, the mean
    pre-reset membrane. u, bits: the saved state of format `state` (backends.saved_state); empty
    tensors for the parts a format does not have. Raises ValueError for an unknown state or
    backend, RuntimeError when a backend breaks the contract.
    """
    if state not in SAVED_STATES:
        raise ValueError(f"state must be one of {SAVED_STATES}, got {state!r}")
    module = backend_module(backend)
    spikes = torch.empty_like(x)
    out = scan_buffer(spikes)
    saved, u_mean = module.fwd(as_matrix(matching_layout(x, out)), as_matrix(out), p,
                               None if state == "none" else state)
    if out is not spikes:
        spikes.copy_(out)
    T = x.shape[0]
    u_shape, u_dtype, bits_shape = saved_state(T, x.numel() // T, x.dtype, state)
    saved = saved or ()
    u = saved[0] if saved else torch.empty(u_shape, dtype=u_dtype, device=x.device)
    bits = saved[1] if len(saved) == 2 else torch.empty(bits_shape, dtype=torch.uint8, device=x.device)
    mean_dtype = compute_dtype(x.dtype)
    got = (tuple(u.shape), u.dtype, tuple(bits.shape), tuple(u_mean.shape), u_mean.dtype)
    if got != (u_shape, u_dtype, bits_shape, (), mean_dtype):
        raise RuntimeError(f"backend {backend!r} returned u {got[0]} {got[1]}, bits {got[2]} and u_mean {got[3]} "
                           f"{got[4]} for state {state!r}; the contract (kernels/lif/backends.py) asks for u "
                           f"{u_shape} {u_dtype}, bits {bits_shape} and a 0-d {mean_dtype} u_mean")
    return spikes, u_mean, u, bits


def backward(grad_spikes: torch.Tensor | None, grad_mean: torch.Tensor | None, u: torch.Tensor, bits: torch.Tensor,
             p: LIFParams, backend: str, state: str, decay_grad: bool, shape: Sequence[int], stride: Sequence[int],
             dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(dL/dx shaped `shape` with strides `stride` in `dtype`, dL/d decay) of a forward with
    `state` ('exact' or 'compact'); dL/d decay is 0-d in the compute dtype when decay_grad, else
    None."""
    if state not in ("exact", "compact"):
        raise RuntimeError(f"lif_scan's backward needs the state saved by a forward with state 'exact' or "
                           f"'compact', got state {state!r}")
    dx = torch.empty_strided(shape, stride, dtype=dtype, device=u.device)
    work = scan_buffer(dx)
    gs = None if grad_spikes is None else as_matrix(matching_layout(grad_spikes, work))
    saved = (u, bits) if state == "compact" else (u,)
    d_decay = backend_module(backend).bwd(gs, grad_mean, saved, p, as_matrix(work), decay_grad)
    if work is not dx:
        dx.copy_(work)
    return dx, d_decay


def _keep_for_backward(ctx, spikes: torch.Tensor, u: torch.Tensor, bits: torch.Tensor, settings: tuple,
                       decay: torch.Tensor | None) -> None:
    """What both autograd paths keep: the saved state, the settings, the spikes' layout (dL/dx
    gets it) and the decay tensor's dtype and device (dL/d decay gets them)."""
    ctx.save_for_backward(u, bits)
    ctx.set_materialize_grads(False)  # an unused output must not cost a [T, N] zero tensor
    ctx.settings = settings
    ctx.layout = (spikes.shape, spikes.stride(), spikes.dtype)
    ctx.decay_like = None if decay is None else (decay.dtype, decay.device)


def _decay_grad_out(ctx, d_decay: torch.Tensor | None) -> torch.Tensor | None:
    if ctx.decay_like is None or d_decay is None or d_decay.numel() == 0:
        return None
    dtype, device = ctx.decay_like
    return d_decay.to(dtype=dtype, device=device)


class EagerScan(torch.autograd.Function):
    """`forward` / `backward` called directly, for eager calls. torch.compile never sees it
    (`lif_scan` takes the ops while tracing). decay: the learnable decay tensor (its gradient is
    returned) or None for a constant decay, whose value p holds."""

    @staticmethod
    def forward(ctx, x, decay, p: LIFParams, backend: str, state: str):
        spikes, u_mean, u, bits = forward(x, p, backend, state)
        _keep_for_backward(ctx, spikes, u, bits, (p, backend, state), decay)
        return spikes, u_mean

    @staticmethod
    def backward(ctx, grad_spikes, grad_mean):
        u, bits = ctx.saved_tensors
        p, backend, state = ctx.settings
        dx, d_decay = backward(grad_spikes, grad_mean, u, bits, p, backend, state, ctx.needs_input_grad[1],
                               *ctx.layout)
        return dx, _decay_grad_out(ctx, d_decay), None, None, None


@torch.library.custom_op("lif::scan_fwd", mutates_args=(), tags=_TAGS)
def scan_fwd(x: torch.Tensor, vth: float, decay: torch.Tensor, surrogate: str, alpha: torch.Tensor, reset: str,
             detach_reset: bool, backend: str, state: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                     torch.Tensor]:
    """x [T, ...] -> (spikes, u_mean, u, bits) of `forward`. decay, alpha: 0-d floating tensors
    (`scalar_arg`, or a learnable decay). surrogate, alpha and detach_reset are unused here; they
    are inputs so that the autograd formula of this op has them. Raises ValueError for a bad
    parameter, state or backend name, TypeError for a decay or alpha that is not a 0-d tensor."""
    return forward(x, _params(vth, decay, surrogate, alpha, reset, detach_reset), backend, state)


@scan_fwd.register_fake
def _scan_fwd_fake(x, vth, decay, surrogate, alpha, reset, detach_reset, backend, state):
    T = x.shape[0]
    u_shape, u_dtype, bits_shape = saved_state(T, x.numel() // T, x.dtype, state)
    return (torch.empty_like(x), x.new_empty((), dtype=compute_dtype(x.dtype)), x.new_empty(u_shape, dtype=u_dtype),
            x.new_empty(bits_shape, dtype=torch.uint8))


@torch.library.custom_op("lif::scan_bwd", mutates_args=(), tags=_TAGS)
def scan_bwd(grad_spikes: torch.Tensor | None, grad_mean: torch.Tensor | None, u: torch.Tensor, bits: torch.Tensor,
             vth: float, decay: torch.Tensor, surrogate: str, alpha: torch.Tensor, reset: str, detach_reset: bool,
             backend: str, state: str, decay_grad: bool, shape: Sequence[int], stride: Sequence[int],
             dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(dL/dx, dL/d decay) of `backward`: dL/dx shaped `shape` with strides `stride` (the
    spikes') in `dtype`; dL/d decay 0-d when decay_grad, else empty (an op output cannot be None)."""
    p = _params(vth, decay, surrogate, alpha, reset, detach_reset)
    dx, d_decay = backward(grad_spikes, grad_mean, u, bits, p, backend, state, decay_grad, shape, stride, dtype)
    return dx, torch.empty((0,), dtype=compute_dtype(dtype), device=u.device) if d_decay is None else d_decay


@scan_bwd.register_fake
def _scan_bwd_fake(grad_spikes, grad_mean, u, bits, vth, decay, surrogate, alpha, reset, detach_reset, backend,
                   state, decay_grad, shape, stride, dtype):
    return (u.new_empty_strided(shape, stride, dtype=dtype),
            u.new_empty(() if decay_grad else (0,), dtype=compute_dtype(dtype)))


def _setup_context(ctx, inputs, output):
    x, vth, decay, surrogate, alpha, reset, detach_reset, backend, state = inputs
    spikes, _, u, bits = output
    ctx.mark_non_differentiable(u, bits)
    _keep_for_backward(ctx, spikes, u, bits, (vth, decay, surrogate, alpha, reset, detach_reset, backend, state),
                       decay)


def _backward(ctx, grad_spikes, grad_mean, _grad_u, _grad_bits):
    u, bits = ctx.saved_tensors
    dx, d_decay = scan_bwd(grad_spikes, grad_mean, u, bits, *ctx.settings, ctx.needs_input_grad[2], *ctx.layout)
    return dx, None, _decay_grad_out(ctx, d_decay), None, None, None, None, None, None


scan_fwd.register_autograd(_backward, setup_context=_setup_context)

