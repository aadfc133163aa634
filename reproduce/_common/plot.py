"""Figure helpers: a file-only matplotlib backend, the budget banner, atomic PNG writes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402

from snn.files import write_atomic  # noqa: E402

from .budget import Budget  # noqa: E402


def banner(fig, budget: Budget, data: str) -> None:
    """A red line across the top of reduced-budget figures: what they were trained on."""
    if budget.reduced:
        fig.suptitle(f"{budget.tag.upper()} RUN on {data}, not the paper's data: a code-path check, "
                     f"not a reproduction", color="red", fontsize=9, y=0.995)


def save(fig, path: Path) -> Path:
    """Write fig as PNG to path atomically and close it."""
    try:
        write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=150, bbox_inches="tight"))
    finally:
        plt.close(fig)
    return path
