"""Seeing a `[T, ...]` tensor as a `[T, N]` time-major matrix without copying when possible.

The scan is elementwise across neurons, so any memory order of the trailing dimensions works as
long as time is the outermost dimension and the tensor is dense: then the raw memory *is* a
contiguous `[T, N]` matrix (this covers contiguous tensors and `[T, B, C, H, W]` views of
channels_last feature maps). Other tensors are copied once to contiguous memory.
"""

from __future__ import annotations

import torch


def _dense_time_outermost(x: torch.Tensor) -> bool:
    """True when x's memory is exactly T consecutive blocks of N = numel / T elements."""
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


def scan_layout(x: torch.Tensor) -> torch.Tensor:
    """A tensor with x's values whose memory is a contiguous [T, N] matrix (x itself if possible)."""
    return x if _dense_time_outermost(x) else x.contiguous()


def as_matrix(x: torch.Tensor) -> torch.Tensor:
    """[T, N] view of a tensor returned by `scan_layout` (or allocated with `empty_like` of one)."""
    T = x.shape[0]
    return x.as_strided((T, x.numel() // T), (x.numel() // T, 1))


def matching_layout(g: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """g (same shape as ref) with ref's strides, copied only if its strides differ."""
    if g.stride() == ref.stride():
        return g
    return torch.empty_like(ref, dtype=g.dtype).copy_(g)
