"""The byte model of the LIF scan and the copy bandwidth it is measured against.

Minimal bytes per element (E = T * N) with s the storage bytes of the dtype and S the saved
state (4: fp32 membrane; 2.125: bf16 membrane plus a spike bit):
  forward   s (read x) + s (write spikes) + S (write the state)
  backward  s (read grad-spikes) + S (read the state) + s (write grad-x)
The membrane mean adds nothing: it is reduced in registers and its gradient is a scalar.
"""

from __future__ import annotations

import torch

from kernels.profiling import median_seconds

EXACT_STATE_BYTES = 4.0
COMPACT_STATE_BYTES = 2.0 + 1 / 8


def lif_min_bytes(T: int, N: int, dtype: torch.dtype, mode: str, state_bytes: float = EXACT_STATE_BYTES) -> float:
    """Bytes the LIF scan must move in `mode` ('fwd', 'bwd' or 'fwdbwd')."""
    s = torch.empty((), dtype=dtype).element_size()
    per_elem = {"fwd": 2 * s + state_bytes, "bwd": 2 * s + state_bytes}
    per_elem["fwdbwd"] = per_elem["fwd"] + per_elem["bwd"]
    if mode not in per_elem:
        raise ValueError(f"mode must be one of {sorted(per_elem)}, got {mode!r}")
    return per_elem[mode] * T * N


def copy_bandwidth(device: str, nbytes: int | None = None, repeats: int = 10) -> float:
    """Measured copy bandwidth in bytes/s (read + write counted), median of repeats: a
    device-to-device copy of 1 GiB on CUDA; on CPU a copy of 256 MiB (far beyond the last-level
    cache) by torch's copy_ with torch.get_num_threads() threads, the threads the CPU
    providers use."""
    if device == "cuda":
        import triton.testing

        src = torch.empty((nbytes or 1 << 30) // 4, dtype=torch.float32, device=device)
        dst = torch.empty_like(src)
        ms = triton.testing.do_bench(lambda: dst.copy_(src), warmup=25, rep=repeats * 10, return_mode="median")
        return 2 * src.nbytes / (ms * 1e-3)
    if device != "cpu":
        raise ValueError(f"copy bandwidth is measured on 'cuda' or 'cpu', got {device!r}")
    src = torch.ones((nbytes or 1 << 28) // 4, dtype=torch.float32)
    dst = torch.zeros_like(src)  # written once: its pages are mapped before the timing
    dst.copy_(src)
    return 2 * src.nbytes / median_seconds(lambda: dst.copy_(src), repeats=repeats)
