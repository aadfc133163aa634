"""Kernel demo: `python -m kernels.demo` times the LIF scan (forward + backward with the IM-Loss
membrane term) per backend on this machine, checks every backend against `naive`, and reports
the bytes each one saves for backward."""

from __future__ import annotations

import argparse
import platform

import pandas as pd
import torch

from . import lif_scan
from .profiling import median_seconds, saved_tensor_bytes


def _step(x: torch.Tensor, backend: str, lam: float = 2.0):
    """One forward+backward: loss = sum(spikes * w) + lam * (u_mean - vth)^2."""
    x = x.detach().requires_grad_()
    spikes, u_mean = lif_scan(x, backend=backend)
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
    backends = ["naive", "torch"] + (["triton"] if x.is_cuda else [])
    ref = _step(x, "naive")
    rows = []
    for backend in backends:
        out = _step(x, backend)
        grad_err = ((out[2] - ref[2]).abs().max() / ref[2].abs().max()).item()
        rows.append({
            "backend": backend,
            "spikes_equal": torch.equal(out[0], ref[0]),
            "u_mean_abs_err": (out[1] - ref[1]).abs().item(),
            "dx_rel_err": grad_err,
            "fwd+bwd_ms": 1e3 * median_seconds(lambda: _step(x, backend), repeats=args.repeats),
            "saved_bytes": saved_tensor_bytes(lambda: lif_scan(x.detach().requires_grad_(), backend=backend)),
        })
    table = pd.DataFrame(rows)
    naive = table.set_index("backend").loc["naive"]
    table["speedup_vs_naive"] = naive["fwd+bwd_ms"] / table["fwd+bwd_ms"]
    table["saved_bytes_per_elem"] = table["saved_bytes"] / x.numel()
    device = torch.cuda.get_device_name() if x.is_cuda else f"{platform.processor() or 'cpu'} ({torch.get_num_threads()} threads)"
    print(f"LIF scan fwd+bwd with the IM-Loss term, fp32, T={args.T}, N=2^{args.log2_n}, on {device}, torch {torch.__version__}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return table


if __name__ == "__main__":
    main()
