"""Run-to-run variation at a reduced budget: one row trained with several seeds, so that a table
can say how far apart two of its smoke rows must be before the difference means anything."""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path
from typing import Optional

from .budget import Budget
from .training import Setting, config, measured, train_or_reason

DEFAULT_SEEDS = 3


def seed_spread(label: str, setting: Setting, budget: Budget, data_root: str, runs: Path,
                seeds: int = DEFAULT_SEEDS) -> Optional[str]:
    """Train `setting` at `budget` with seeds 0 .. seeds-1 (the row's own run is seed 0's, so it is
    reused) and describe the spread of "ours" (percent) in one note; None when seeds < 2.

    Raises nothing for a seed whose run fails with one of the row errors: the note says so."""
    if seeds < 2:
        return None
    accs, failed = [], []
    for seed in range(seeds):
        cfg = config(replace(setting, method={**setting.method, "seed": seed}), budget, data_root, runs)
        print(f"  variation: {label}, seed {seed} (trained, or reused from its finished run folder) ...", flush=True)
        results, reason = train_or_reason(cfg)
        if results is None:
            failed.append(f"seed {seed}: {reason}")
        else:
            accs.append(measured(results, setting, budget).pct)
    if len(accs) < 2:
        return f"run-to-run variation: not measured ({'; '.join(failed)})"
    values = ", ".join(f"{a:.2f}%" for a in accs)
    return (f"run-to-run variation at this budget, measured: {label} trained with seeds 0..{seeds - 1} gave "
            f"{values} (max - min {max(accs) - min(accs):.2f} pp, sample std {statistics.stdev(accs):.2f} pp); "
            f"differences between {budget.tag} rows smaller than this are noise"
            + (f"; failed: {'; '.join(failed)}" if failed else "") + ".")
