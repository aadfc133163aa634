#!/usr/bin/env python
"""Fig. 3 of the paper: the asymptotic function phi_k(x) = 0.5 tanh(k (x - Vth)) + 0.5 (eq. 13)
and its gradient 0.5 k (1 - tanh^2(k (x - Vth))) for several k, beside the spike function
1[x >= Vth] and its true gradient (0 except an impulse at Vth). Pure math: no training, no budget.

    python reproduce/fig3_surrogate.py            # k = 1, 2, 5, 10, Vth = 0.5
    python reproduce/fig3_surrogate.py --k 1 3 10 --vth 1.0

The gradient is also taken from the LIF kernel the networks train with (kernels.lif_scan, T = 1,
tanh surrogate with alpha = k, float64): its backward must be the formula, and the markdown
reports the largest difference. Writes fig3_surrogate.{csv,md,png} (csv: every plotted sample).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import torch

from kernels import lif_scan
from reproduce._common import plot
from reproduce._common.budget import REFERENCE_RESULTS, REPO, RESULTS, git_sha
from snn.exits import one_line_errors
from snn.files import make_folder, write_atomic

SCRIPT = "fig3_surrogate"
K_VALUES = (1.0, 2.0, 5.0, 10.0)
SPAN, SAMPLES = 1.5, 301  # x in [Vth - SPAN, Vth + SPAN]


def asymptotic(x: np.ndarray, k: float, vth: float) -> np.ndarray:
    """Eq. 13: 0.5 tanh(k (x - vth)) + 0.5."""
    return 0.5 * np.tanh(k * (x - vth)) + 0.5


def asymptotic_grad(x: np.ndarray, k: float, vth: float) -> np.ndarray:
    """d/dx of eq. 13: 0.5 k (1 - tanh^2(k (x - vth)))."""
    return 0.5 * k * (1.0 - np.tanh(k * (x - vth)) ** 2)


def kernel_grad(x: np.ndarray, k: float, vth: float) -> np.ndarray:
    """The surrogate gradient d spike / d x of kernels.lif_scan at T = 1 (where u = x), float64."""
    u = torch.tensor(x, dtype=torch.float64).unsqueeze(0).requires_grad_(True)
    spikes, _ = lif_scan(u, vth=vth, surrogate="tanh", alpha=k, backend="torch")
    spikes.sum().backward()
    return u.grad[0].numpy()


def curves(k_values, vth: float) -> pd.DataFrame:
    """Every sample: x, k, the spike function, phi_k, its gradient by formula and by the kernel."""
    x = np.linspace(vth - SPAN, vth + SPAN, SAMPLES)
    return pd.concat([pd.DataFrame({"x": x, "k": k, "spike": (x >= vth).astype(float), "phi": asymptotic(x, k, vth),
                                    "grad": asymptotic_grad(x, k, vth), "grad_lif_scan": kernel_grad(x, k, vth)})
                      for k in k_values], ignore_index=True)


def summary(frame: pd.DataFrame, vth: float) -> pd.DataFrame:
    """Per k: phi(Vth), the gradient's peak (k / 2), its width at half peak, the kernel's largest deviation."""
    rows = []
    for k, c in frame.groupby("k"):
        half = c.x[c.grad >= c.grad.max() / 2]
        rows.append({"k": k, "phi(Vth)": float(asymptotic(np.array([vth]), k, vth)[0]),
                     "peak gradient (k/2)": c.grad.max(), "width at half peak": half.max() - half.min(),
                     "max |lif_scan - formula|": (c.grad_lif_scan - c.grad).abs().max()})
    return pd.DataFrame(rows)


def draw(frame: pd.DataFrame, vth: float, path: Path) -> Path:
    """Left: phi_k and the spike function (blue); right: the gradients and the true one (blue impulse)."""
    fig, (left, right) = plot.plt.subplots(1, 2, figsize=(10, 3.8))
    first = frame[frame.k == frame.k.iloc[0]]
    left.plot(first.x, first.spike, color="C0", linewidth=2, label="spike function")
    right.plot(first.x, np.zeros(len(first)), color="C0", linewidth=2, label="true gradient")
    right.annotate("", xy=(vth, frame.grad.max() * 1.15), xytext=(vth, 0),
                   arrowprops={"arrowstyle": "-|>", "color": "C0", "linewidth": 2})
    for j, (k, c) in enumerate(frame.groupby("k"), start=1):
        left.plot(c.x, c.phi, color=f"C{j}", label=f"k = {k:g}")
        right.plot(c.x, c.grad, color=f"C{j}", label=f"k = {k:g}")
    left.set(xlabel="x", ylabel="asymptotic function", title="0.5 tanh(k (x - Vth)) + 0.5")
    right.set(xlabel="x", ylabel="gradient", title="0.5 k (1 - tanh²(k (x - Vth)))", ylim=(0, frame.grad.max() * 1.2))
    for ax in (left, right):
        ax.axvline(vth, color="gray", linestyle=":", linewidth=0.8)
        ax.legend(fontsize=8)
    return plot.save(fig, path)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--k", type=float, nargs="+", default=list(K_VALUES), help="the k values (default: 1 2 5 10)")
    p.add_argument("--vth", type=float, default=0.5, help="the threshold (default: 0.5, the project's)")
    p.add_argument("--out", type=Path, default=RESULTS,
                   help=f"results folder (default: {RESULTS.relative_to(REPO)}; the committed reference results "
                        f"are in {REFERENCE_RESULTS.relative_to(REPO)})")
    return p


@one_line_errors
def main(argv: Optional[list[str]] = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not all(k > 0 for k in args.k):
        p.error(f"every k must be > 0, got {args.k}")
    frame = curves(args.k, args.vth)
    make_folder(args.out, "--out", files=tuple(SCRIPT + s for s in (".csv", ".md", ".png")))
    csv, md = args.out / f"{SCRIPT}.csv", args.out / f"{SCRIPT}.md"
    write_atomic(csv, frame.to_csv(index=False))
    table = summary(frame, args.vth).to_markdown(index=False, floatfmt=".3g")
    write_atomic(md, f"# Fig. 3: the asymptotic function and its gradient (Vth = {args.vth:g})\n\n{table}\n\n"
                  f"- Exact formulas (eq. 13 and its derivative), sampled at {SAMPLES} points on "
                  f"[Vth - {SPAN:g}, Vth + {SPAN:g}]; no training, so there is no budget.\n"
                  f"- max |lif_scan - formula|: the tanh surrogate gradient of kernels.lif_scan (T = 1, float64, "
                  f"torch backend) against the formula.\n\nWritten at git {git_sha()}.\n")
    png = draw(frame, args.vth, args.out / f"{SCRIPT}.png")
    print(table)
    print(f"\nwritten: {csv}, {md}, {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
