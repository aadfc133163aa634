"""Memory layouts of the LIF scan: which `[T, ...]` tensors are seen as a `[T, N]` time-major
matrix in place, and the layout rule for outputs.

The scan is elementwise across neurons, so any memory order of the trailing dimensions works as
long as time is the outermost dimension and the tensor is dense: then the raw memory *is* a
contiguous `[T, N]` matrix (contiguous tensors, `[T, B, C, H, W]` views of channels_last feature
maps). Outputs follow torch's rule for elementwise ops (`torch.empty_like`): spikes (and dL/dx)
have x's strides when x is dense and non-overlapping, contiguous strides otherwise. When that
layout does not keep time outermost (e.g. a transposed input), the scan runs on a contiguous
copy and the result is copied into the output once.

These functions compare strides, so they run inside the custom ops (`dispatch.py`) on real tensors,
never in a traced graph, where a compiler may change a layout after the comparison was made.
"""

from __future__ import annotations

import torch


def cdiv(a: int, b: int) -> int:
    """ceil(a / b) for positive ints, on the host (triton.cdiv is a JIT function: calling it on the
    host costs microseconds)."""
    return -(-a // b)


def dense_time_outermost(x: torch.Tensor) -> bool:
    """True when x's memory is exactly T consecutive blocks of N = numel / T elements."""
    if x.is_contiguous():  # the common case, without the stride walk below
        return True
    T = x.shape[0]
    n = x.numel() // T
    if T > 1 and x.stride(0) != n:
        return False
    expected = 1
    for size, stride in sorted(((s, st) for s, st in zip(x.shape[1:], x.stride()[1:]) if s != 1), key=lambda d: d[1]):
        if stride != expected:
            return False
        expected *= size
    return True


def dense_order(x: torch.Tensor) -> list[int] | None:
    """x's dimensions from outermost to innermost in memory when x is dense and non-overlapping
    (its memory is a permutation of a contiguous tensor), else None."""
    order = sorted(range(x.dim()), key=lambda d: (x.stride(d), x.shape[d]), reverse=True)
    expected = 1
    for d in reversed(order):
        if x.shape[d] != 1 and x.stride(d) != expected:
            return None
        expected *= x.shape[d]
    return order


def in_layout_of(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """y (x's shape) laid out like `torch.empty_like(x)`: with x's dimension order when x is dense,
    contiguous otherwise. Functional (permute and contiguous, no write into a preallocated
    tensor), so it is also safe inside a traced graph."""
    order = dense_order(x)
    if order is None:
        return y.contiguous()
    return y.permute(order).contiguous().permute([order.index(d) for d in range(x.dim())])


def scan_buffer(ref: torch.Tensor) -> torch.Tensor:
    """ref itself when its memory is a [T, N] matrix, else a new contiguous tensor like it: the
    tensor a scan writes into before its values land in ref."""
    return ref if dense_time_outermost(ref) else torch.empty(ref.shape, dtype=ref.dtype, device=ref.device)


def matching_layout(g: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """g (same shape as ref) with ref's strides, copied only if its strides differ."""
    if g.stride() == ref.stride():
        return g
    return torch.empty_like(ref, dtype=g.dtype).copy_(g)


def as_matrix(x: torch.Tensor) -> torch.Tensor:
    """[T, N] view of a tensor for which `dense_time_outermost` holds."""
    T = x.shape[0]
    return x.as_strided((T, x.numel() // T), (x.numel() // T, 1))
