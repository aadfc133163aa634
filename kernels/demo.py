"""Kernel demo: `python -m kernels.demo` times the LIF scan (forward + backward with the IM-Loss
membrane term) per backend on this machine, checks every backend against `naive`, and reports
the bytes each one saves for backward."""

from __future__ import annotations

import argparse
import platform

import pandas as pd
import torch

from . import lif_scan
from .lif.backends import runnable
from .profiling import median_seconds, saved_tensor_bytes


def _scan(x: torch.Tensor, provider: str):
    """provider: a backend name, with '+compact' for the compact saved state."""
    backend, _, compact = provider.partition("+")
    return lif_scan(x, backend=backend, compact_state=bool(compact))


def _step(x: torch.Tensor, provider: str, lam: float = 2.0):
    """One forward+backward: loss = 1e-3 sum(spikes) + lam (u_mean - vth)^2 (the IM-Loss term)."""
    x = x.detach().requires_grad_()
    spikes, u_mean = _scan(x, provider)
    loss = (spikes * 1e-3).sum() + lam * (u_mean - 0.5) ** 2
    loss.backward()
    return spikes.detach(), u_mean.detach(), x.grad


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--T", type=int, default=4)
    parser.add_argument("--log2-n", type=int, default=20, help="neurons per timestep: 2**log2_n")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    x = 0.6 * torch.randn(args.T, 2 ** args.log2_n, device=args.device) + 0.3
    fused = runnable(x)
    providers = ["naive", *fused, *(f"{b}+compact" for b in fused)]
    ref = _step(x, "naive")
    rows = []
    for provider in providers:
        out = _step(x, provider)
        rows.append({
            "provider": provider,
            "spikes_equal": torch.equal(out[0], ref[0]),
            "u_mean_abs_err": (out[1] - ref[1]).abs().item(),
            "dx_rel_l2_err": ((out[2] - ref[2]).norm() / ref[2].norm()).item(),
            "fwd+bwd_ms": 1e3 * median_seconds(lambda: _step(x, provider), repeats=args.repeats),
            "saved_bytes": saved_tensor_bytes(lambda: _scan(x.detach().requires_grad_(), provider)),
        })
    table = pd.DataFrame(rows)
    naive = table.set_index("provider").loc["naive"]
    table["speedup_vs_naive"] = naive["fwd+bwd_ms"] / table["fwd+bwd_ms"]
    table["saved_bytes_per_elem"] = table["saved_bytes"] / x.numel()
    cpu = f"{platform.processor() or 'cpu'} ({torch.get_num_threads()} threads)"
    device = torch.cuda.get_device_name() if x.is_cuda else cpu
    print(f"LIF scan fwd+bwd with the IM-Loss term, fp32, T={args.T}, N=2^{args.log2_n}, on {device}, "
          f"torch {torch.__version__}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return table


if __name__ == "__main__":
    main()
