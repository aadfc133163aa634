"""Native fused CPU path (backend 'cpu'): the LIF scan and its reverse-time backward as one
vectorized, multithreaded loop each, in C++ (kernels/lif/_lif_cpu.cpp, built with the package).

Implements the backend contract of kernels/lif/backends.py (fwd, bwd, the saved-state formats).
Neurons are processed in chunks of CHUNK, each thread (torch.get_num_threads()) taking a
contiguous range of chunks; the membrane stays in fp32 (fp64 for fp64 input) in an L1-resident
array across the time loop, so each [T, N] tensor is read or written once. Spikes and the saved
membrane are bit-equal to `naive.py`, the saved state to `fused_torch`'s; u_mean is summed in a
fixed order (16 lanes per chunk, chunks in order), so it does not depend on the thread count.
The kernel is called through ctypes on the tensors' memory (ctypes releases the GIL).
"""

from __future__ import annotations

import ctypes
import importlib.util
import sys

import torch

from .backends import FUSED_BACKENDS, SAVE_CODES
from .layout import advise_huge_pages, cdiv
from .params import SURROGATE_CODES, LIFParams, compute_dtype

CHUNK = 4096  # neurons per chunk (a multiple of 8, for the spike bits); measured on 2 cores
DTYPE_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2, torch.float64: 3}

_ptr, _i64, _int, _f64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_double


# The same kernel source built twice (setup.py): for x86-64's AVX2 (8-wide vectors; twice the
# speed of the compute-bound backward, measured) where the processor has it, and for the baseline
# ISA (SSE2 on x86-64, any other architecture). Both round identically: no FMA contraction, no
# reassociation, so the choice changes speed, never a bit of the results.
VARIANTS = ("_lif_cpu_avx2", "_lif_cpu")


def _cpu_has_avx2() -> bool:
    return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


def load_variant(name: str):
    """The native kernel built as kernels/lif/<name> (one of VARIANTS), or None if it was not built."""
    spec = importlib.util.find_spec(f"{__package__}.{name}")
    if spec is None or not spec.origin:
        return None
    lib = ctypes.CDLL(spec.origin)
    lib.lif_cpu_forward.argtypes = [_ptr, _ptr, _ptr, _ptr, _i64, _i64, _int, _int, _int, _f64, _f64, _i64, _int,
                                    ctypes.POINTER(_f64)]
    lib.lif_cpu_backward.argtypes = [_ptr, _ptr, _ptr, _ptr, _i64, _i64, _int, _int, _int, _int, _int, _f64, _f64,
                                     _f64, _f64, _f64, _i64, _int, ctypes.POINTER(_f64)]
    lib.lif_cpu_forward.restype = lib.lif_cpu_backward.restype = _int
    return lib


def _load_library():
    """(variant name, library) of the fastest built variant this processor runs, or (None, None)."""
    for name in VARIANTS:
        if name.endswith("_avx2") and not _cpu_has_avx2():
            continue
        lib = load_variant(name)
        if lib is not None:
            return name, lib
    return None, None


# Loaded at import, not on first call: lif_scan's dispatch asks available() (backends.py) inside
# code that torch.compile traces, and dynamo cannot trace the loading.
VARIANT, _LIBRARY = _load_library()


def available() -> bool:
    """True when the native kernel was built (it needs a C++ compiler at install time)."""
    return _LIBRARY is not None


def usable(x: torch.Tensor) -> bool:
    """True when backend 'cpu' can run on x."""
    return x.device.type == "cpu" and available()


def require(x: torch.Tensor):
    """This module, after checking that x can run on it; raises ValueError (not a CPU tensor) or
    RuntimeError (kernel not built)."""
    if x.device.type != "cpu":
        others = [name for name in FUSED_BACKENDS if name != "cpu"]
        raise ValueError(f"backend='cpu' needs a CPU tensor, got a tensor on {x.device}; "
                         f"use backend='auto' (it picks by device) or one of {others}")
    if not available():
        raise RuntimeError("backend='cpu' needs the native kernel kernels/lif/_lif_cpu, which was not built: "
                           "reinstall with a C++ compiler available (pip install -e .) or run "
                           "`python setup.py build_ext --inplace`; backend='torch' works without it")
    return sys.modules[__name__]


def _address(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _check(status: int) -> None:
    if status == 2:
        raise MemoryError("the cpu LIF kernel could not allocate its per-thread chunk buffers")
    if status != 0:
        raise RuntimeError(f"the cpu LIF kernel rejected its arguments (status {status}); this is a bug")


def _matrix(t: torch.Tensor, name: str) -> None:
    if t.dim() != 2 or not t.is_contiguous() or t.device.type != "cpu":
        raise ValueError(f"{name} must be a contiguous [T, N] CPU matrix, got shape {tuple(t.shape)}, "
                         f"strides {t.stride()} on {t.device}")


def fwd(x: torch.Tensor, out: torch.Tensor, p: LIFParams, save: str | None):
    """x, out: contiguous [T, N] CPU matrices of the same dtype. Writes spikes into out; returns
    (saved, u_mean 0-d in the compute dtype).

    save: None (inference), "exact" -> saved = (u [T, N] in the compute dtype,),
    "compact" -> saved = (u bf16 [T, N], spike bits uint8 [T, ceil(N / 8)]).
    """
    _matrix(x, "x")
    _matrix(out, "out")
    T, N = x.shape
    dtype = compute_dtype(x.dtype)
    u = bits = None
    if save == "exact":
        u = torch.empty((T, N), dtype=dtype)
    elif save == "compact":
        u = torch.empty((T, N), dtype=torch.bfloat16)
        bits = torch.empty((T, cdiv(N, 8)), dtype=torch.uint8)
    for t in (out, u, bits):
        advise_huge_pages(t)
    total = _f64()
    _check(_LIBRARY.lif_cpu_forward(
        x.data_ptr(), out.data_ptr(), _address(u), _address(bits), T, N, DTYPE_CODES[x.dtype], SAVE_CODES[save],
        int(p.reset == "hard"), p.vth, p.decay, CHUNK, torch.get_num_threads(), ctypes.byref(total)))
    u_mean = torch.tensor(total.value / (T * N), dtype=dtype)
    saved = {None: None, "exact": (u,), "compact": (u, bits)}[save]
    return saved, u_mean


def bwd(gs, gm, saved: tuple, p: LIFParams, dx: torch.Tensor, decay_grad: bool = False):
    """Reverse-time pass (the recurrence of fused_torch.bwd). gs: [T, N] or None; gm: 0-d or
    None; saved: what fwd returned; writes dx [T, N] (contiguous, the dtype of x). Returns
    dL/d decay (0-d, compute dtype; summed in double in a fixed order) when decay_grad, else None."""
    u = saved[0]
    bits = saved[1] if len(saved) == 2 else None
    _matrix(dx, "dx")
    T, N = u.shape
    if gs is not None:
        gs = gs.to(dx.dtype).contiguous()  # autograd hands the spikes' dtype: normally a no-op
        _matrix(gs, "grad_spikes")
    c = 0.0 if gm is None else gm.item() / (T * N)
    dspike_scale = p.dspike_scale if p.surrogate == "dspike" else 0.0
    advise_huge_pages(dx)
    d_decay = _f64()
    _check(_LIBRARY.lif_cpu_backward(
        _address(gs), u.data_ptr(), _address(bits), dx.data_ptr(), T, N, DTYPE_CODES[dx.dtype], int(bits is not None),
        int(p.reset == "hard"), int(p.detach_reset), SURROGATE_CODES[p.surrogate], p.vth, p.decay, p.alpha,
        dspike_scale, c, CHUNK, torch.get_num_threads(), ctypes.byref(d_decay) if decay_grad else None))
    return torch.tensor(d_decay.value, dtype=compute_dtype(dx.dtype)) if decay_grad else None
