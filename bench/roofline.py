"""The byte model of the LIF scan and the copy bandwidth it is measured against.

Minimal bytes per element (E = T * N) with s the storage bytes of the dtype and S the saved
state (4: fp32 membrane; 2.125: bf16 membrane plus a spike bit):
  forward   s (read x) + s (write spikes) + S (write the state)
  backward  s (read grad-spikes) + S (read the state) + s (write grad-x)
The membrane mean adds nothing: it is reduced in registers and its gradient is a scalar.
"""

from __future__ import annotations

import torch

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


def copy_bandwidth(device: str, nbytes: int = 1 << 30, repeats: int = 10) -> float:
    """Measured device-to-device copy bandwidth in bytes/s (read + write counted), median of repeats."""
    if device != "cuda":
        raise ValueError("copy bandwidth is measured on CUDA only")
    import triton.testing

    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    ms = triton.testing.do_bench(lambda: dst.copy_(src), warmup=25, rep=repeats * 10, return_mode="median")
    return 2 * nbytes / (ms * 1e-3)
