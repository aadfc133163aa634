"""The fused LIF scan as PyTorch custom ops: `torch.ops.lif.scan_fwd` and `torch.ops.lif.scan_bwd`.

Each op is opaque to `torch.compile`: the compiler sees only its schema and its fake
implementation (output shapes, dtypes and strides, also used for meta tensors), and calls the
real implementation on real tensors. Layout decisions (stride comparisons, `as_strided` views,
writes into preallocated buffers) therefore happen at run time on the tensors that actually
arrive. Made at trace time they would be wrong: Inductor may give a convolution's input
gradient a channels_last layout at run time, and a traced `as_strided` would then read the
upstream spike gradient in the wrong order. The ops carry `needs_exact_strides`, so
Inductor passes inputs with the strides seen while tracing and the outputs match the fake ones.

alpha is a 0-d float64 CPU tensor (`alpha_arg`), the other settings Python scalars. A float
argument of a custom op is a constant of the compiled graph: torch.compile guards on its value
and traces again for every new one (until its recompile limit, 8 by default, then it runs the
model eagerly). ESG gives each epoch a new alpha (paper eq. 15), so alpha travels as a tensor,
which the compiled graph takes as an input: after one recompile (alpha from constant to
dynamic) every later alpha reuses the graph. The value is read back with `.item()` on the host
(no device sync; float64 holds the Python float exactly) and validated by `LIFParams` on every
call, where it is concrete, with the errors of an eager call.

Dispatch: `backend` names an entry of `backends.FUSED_BACKENDS`, whose `fwd` / `bwd` (interface
in `function.py`) do the work. The Triton backend runs through these ops too (as an opaque custom
op rather than `torch.library.triton_op`: under TRITON_INTERPRET=1 a `triton_op` cannot be traced,
since the interpreter reads tensor data while torch.compile runs it on fake tensors).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .backends import backend_module
from .layout import as_matrix, matching_layout, scan_buffer
from .params import LIFParams

STATES = ("none", "exact", "compact")
_TAGS = (torch.Tag.needs_exact_strides,)


def alpha_arg(alpha: float) -> torch.Tensor:
    """alpha as the ops' 0-d float64 CPU tensor, holding the Python float exactly.

    Written as an addition to a zero tensor: torch.compile turns a dynamic float used in tensor
    arithmetic into a graph input, while torch.tensor / torch.full / torch.scalar_tensor of it
    make it a constant again (one recompile per value; torch 2.14).
    """
    return torch.zeros((), dtype=torch.float64) + alpha


def _alpha(alpha: torch.Tensor) -> float:
    if alpha.shape != () or alpha.dtype != torch.float64 or alpha.device.type != "cpu":
        raise TypeError(f"alpha must be a 0-d float64 CPU tensor (op.alpha_arg(value)), got shape "
                        f"{tuple(alpha.shape)}, {alpha.dtype} on {alpha.device}")
    return alpha.item()


def _state_shapes(x: torch.Tensor, state: str):
    """(u shape, u dtype, bits shape) of the saved state; empty tensors stand for unused parts."""
    T = x.shape[0]
    N = x.numel() // T
    compute = torch.promote_types(x.dtype, torch.float32)
    if state == "exact":
        return (T, N), compute, (0,)
    if state == "compact":
        return (T, N), torch.bfloat16, (T, (N + 7) // 8)
    return (0,), compute, (0,)


@torch.library.custom_op("lif::scan_fwd", mutates_args=(), tags=_TAGS)
def scan_fwd(x: torch.Tensor, vth: float, decay: float, surrogate: str, alpha: torch.Tensor, reset: str,
             detach_reset: bool, backend: str, state: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                     torch.Tensor]:
    """x [T, ...] -> (spikes, u_mean, u, bits).

    spikes: like `torch.empty_like(x)` (x's strides if x is dense, else contiguous), x.dtype, 0/1.
    u_mean: 0-d, fp32 (fp64 for fp64 x): mean pre-reset membrane.
    u, bits: the state for `scan_bwd`. state 'exact': u [T, N] fp32 (fp64 for fp64 x), bits [0];
    'compact': u [T, N] bf16, bits [T, ceil(N / 8)] uint8; 'none' (inference): u [0], bits [0].
    alpha: 0-d float64 CPU tensor (`alpha_arg`). surrogate, alpha and detach_reset are unused
    here; they are inputs so that the autograd formula of this op has them. Raises ValueError for
    a bad parameter, state or backend name, TypeError for an alpha that is not such a tensor.
    """
    p = LIFParams(vth=vth, decay=decay, surrogate=surrogate, alpha=_alpha(alpha), reset=reset,
                  detach_reset=detach_reset)
    return forward(x, p, backend, state)


def forward(x: torch.Tensor, p: LIFParams, backend: str, state: str):
    """What `scan_fwd` computes, with the settings already validated in p: -> (spikes, u_mean,
    u, bits). Called by the op and, outside torch.compile, directly by `function.scan`."""
    if state not in STATES:
        raise ValueError(f"state must be one of {STATES}, got {state!r}")
    module = backend_module(backend)
    spikes = torch.empty_like(x)
    out = scan_buffer(spikes)
    x_scan = matching_layout(x, out)
    saved, u_mean = module.fwd(as_matrix(x_scan), as_matrix(out), p, None if state == "none" else state)
    if out is not spikes:
        spikes.copy_(out)
    u_shape, u_dtype, bits_shape = _state_shapes(x, state)
    saved = saved or ()
    u = saved[0] if saved else torch.empty(u_shape, dtype=u_dtype, device=x.device)
    bits = saved[1] if len(saved) == 2 else torch.empty(bits_shape, dtype=torch.uint8, device=x.device)
    mean_dtype = torch.promote_types(x.dtype, torch.float32)
    if (tuple(u.shape), u.dtype, tuple(bits.shape), tuple(u_mean.shape), u_mean.dtype) != (u_shape, u_dtype, bits_shape, (),
                                                                                   mean_dtype):
        raise RuntimeError(f"backend {backend!r} returned u {tuple(u.shape)} {u.dtype}, bits {tuple(bits.shape)} and "
                           f"u_mean {tuple(u_mean.shape)} {u_mean.dtype} for state {state!r}; the interface "
                           f"(kernels/lif/function.py) asks for u {u_shape} {u_dtype}, bits {bits_shape} and a 0-d "
                           f"{mean_dtype} u_mean")
    return spikes, u_mean, u, bits


@scan_fwd.register_fake
def _scan_fwd_fake(x, vth, decay, surrogate, alpha, reset, detach_reset, backend, state):
    u_shape, u_dtype, bits_shape = _state_shapes(x, state)
    compute = torch.promote_types(x.dtype, torch.float32)
    return (torch.empty_like(x), x.new_empty((), dtype=compute), x.new_empty(u_shape, dtype=u_dtype),
            x.new_empty(bits_shape, dtype=torch.uint8))


@torch.library.custom_op("lif::scan_bwd", mutates_args=(), tags=_TAGS)
def scan_bwd(grad_spikes: torch.Tensor | None, grad_mean: torch.Tensor | None, u: torch.Tensor, bits: torch.Tensor,
             vth: float, decay: float, surrogate: str, alpha: torch.Tensor, reset: str, detach_reset: bool, backend: str,
             state: str, shape: Sequence[int], stride: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """dL/dx of `scan_fwd`, shaped `shape` with strides `stride` (those of the spikes) in `dtype`.

    grad_spikes: like the spikes (any strides) or None; grad_mean: 0-d or None; u, bits: the
    state `scan_fwd` returned for `state` ('exact' or 'compact').
    """
    p = LIFParams(vth=vth, decay=decay, surrogate=surrogate, alpha=_alpha(alpha), reset=reset,
                  detach_reset=detach_reset)
    return backward(grad_spikes, grad_mean, u, bits, p, backend, state, shape, stride, dtype)


def backward(grad_spikes: torch.Tensor | None, grad_mean: torch.Tensor | None, u: torch.Tensor, bits: torch.Tensor,
             p: LIFParams, backend: str, state: str, shape: Sequence[int], stride: Sequence[int],
             dtype: torch.dtype) -> torch.Tensor:
    """What `scan_bwd` computes, with the settings already validated in p."""
    if state not in ("exact", "compact"):
        raise RuntimeError(f"lif_scan's backward needs the state saved by a forward with state 'exact' or "
                           f"'compact', got state {state!r}")
    dx = torch.empty_strided(shape, stride, dtype=dtype, device=u.device)
    work = scan_buffer(dx)
    gs = None if grad_spikes is None else as_matrix(matching_layout(grad_spikes, work))
    saved = (u, bits) if state == "compact" else (u,)
    backend_module(backend).bwd(gs, grad_mean, saved, p, as_matrix(work))
    if work is not dx:
        dx.copy_(work)
    return dx


@scan_bwd.register_fake
def _scan_bwd_fake(grad_spikes, grad_mean, u, bits, vth, decay, surrogate, alpha, reset, detach_reset, backend,
                   state, shape, stride, dtype):
    return u.new_empty_strided(shape, stride, dtype=dtype)


def _setup_context(ctx, inputs, output):
    _, vth, decay, surrogate, alpha, reset, detach_reset, backend, state = inputs
    spikes, _, u, bits = output
    ctx.save_for_backward(u, bits)
    ctx.mark_non_differentiable(u, bits)
    ctx.set_materialize_grads(False)  # an unused output must not cost a [T, N] zero tensor
    ctx.settings = (vth, decay, surrogate, alpha, reset, detach_reset, backend, state)  # alpha: 0-d, not state
    ctx.layout = (spikes.shape, spikes.stride(), spikes.dtype)


def _backward(ctx, grad_spikes, grad_mean, _grad_u, _grad_bits):
    u, bits = ctx.saved_tensors
    dx = scan_bwd(grad_spikes, grad_mean, u, bits, *ctx.settings, *ctx.layout)
    return dx, None, None, None, None, None, None, None, None


scan_fwd.register_autograd(_backward, setup_context=_setup_context)
