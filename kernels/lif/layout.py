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

import ctypes
import sys

import torch

# Fresh large CPU outputs (the cpu backend's spikes, saved membrane and dx; the upstream
# gradient copied by matching_layout, a [T, N] copy of an expanded tensor for a loss like
# output.sum()) are mapped by the OS on first touch, one
# 4 KiB page fault at a time: at T = 500, N = 65536 (131 MB per output, 1 thread) the faults took
# over half of the forward (174 ms against 68 ms with huge pages). Asking for transparent huge
# pages on them before the kernel writes them (madvise MADV_HUGEPAGE, which the default "madvise"
# THP mode honours; PyTorch's THP_MEM_ALLOC_ENABLE=1 does the same for every allocation) makes
# that one fault per 2 MiB. Advice only: on a system without THP, or on memory already touched,
# nothing changes, and the results never do.
_HUGE = 1 << 21  # 2 MiB, the x86-64 huge page
_MADV_HUGEPAGE = 14
_LIBC = None
if sys.platform.startswith("linux"):
    try:
        _LIBC = ctypes.CDLL(None, use_errno=True)
        _LIBC.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    except (OSError, AttributeError):
        _LIBC = None


def advise_huge_pages(t: torch.Tensor | None) -> None:
    """madvise(MADV_HUGEPAGE) on the 2 MiB-aligned interior of a CPU tensor's memory (nothing below
    2 huge pages, nothing for other devices). Call it before the memory is first written."""
    if _LIBC is None or t is None or t.device.type != "cpu" or t.nbytes < 2 * _HUGE:
        return
    start = (t.data_ptr() + _HUGE - 1) // _HUGE * _HUGE
    end = (t.data_ptr() + t.nbytes) // _HUGE * _HUGE
    if end > start:
        _LIBC.madvise(start, end - start, _MADV_HUGEPAGE)  # advice: a failure changes nothing


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
    out = torch.empty_like(ref, dtype=g.dtype)
    advise_huge_pages(out)
    return out.copy_(g)


def as_matrix(x: torch.Tensor) -> torch.Tensor:
    """[T, N] view of a tensor for which `dense_time_outermost` holds."""
    T = x.shape[0]
    return x.as_strided((T, x.numel() // T), (x.numel() // T, 1))
