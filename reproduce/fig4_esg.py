#!/usr/bin/env python
"""Fig. 4 of the paper: accuracy curves of spiking CIFARNet and ResNet-19 (T = 4) trained with the
gradient of the asymptotic function at a fixed k = 1, a fixed k = 10, and with ESG (K from 1 to
10 over the epochs, eq. 15).

    python reproduce/fig4_esg.py                  # smoke on CPU (about 5 minutes on 2 cores)
    python reproduce/fig4_esg.py --budget paper --data-root ~/data

The paper does not say which other settings Fig. 4 uses; here every curve is the paper's method
(tdBN, IM-Loss weight 2, the CIFAR10 preset) with only the surrogate changed. Curves are the
test accuracy after each epoch. Writes fig4_esg-<budget>.{csv,md,png} and -data.csv (the curves).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import pandas as pd

from reproduce._common import plot
from reproduce._common.budget import is_main
from reproduce._common.script import budget_note, command, finish, start
from reproduce._common.table import Paper, ResultsTable
from reproduce._common.training import (ACCURACY_COLUMNS, ROW_ERRORS, Setting, cells, config,
                                        data_label, measured, not_run, train)
from snn.exits import one_line_errors
from snn.files import write_atomic

SCRIPT = "fig4_esg"
ARCHS = {"cifarnet": ("CIFARNet", "paper-cifarnet", 92.20), "resnet19": ("ResNet-19", "paper-cifar10", 95.40)}
CURVES = {"k1": ("k = 1", "tanh:1"), "k10": ("k = 10", "tanh:10"), "esg": ("ESG", "esg")}
EXTRA = ["surrogate", "test after epoch 1", *ACCURACY_COLUMNS, "notes"]
PRINTED = ["row", "paper value", "ours", "difference", "test after epoch 1", "final test", "epochs", "wall time"]


def curve_frame(arch: str, curve: str, history: list[dict]) -> pd.DataFrame:
    """One curve, long form: model, curve, epoch, K, train/val/test accuracy, train loss."""
    return pd.DataFrame([{"model": arch, "curve": curve, "epoch": r["epoch"], "K": r["K"], "train_acc": r["train_acc"],
                          "val_acc": r["val_acc"], "test_acc": r["test_acc"], "train_loss": r["train_loss"]}
                         for r in history])


def draw(frame: pd.DataFrame, budget, data: str, path: Path) -> Path:
    """Test accuracy against epochs, one panel per network, as the paper's Fig. 4."""
    archs = list(dict.fromkeys(frame.model))
    fig, axes = plot.plt.subplots(1, len(archs), figsize=(5.5 * len(archs), 3.8), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        for j, (curve, c) in enumerate(frame[frame.model == arch].groupby("curve", sort=False)):
            ax.plot(c.epoch, 100 * c.test_acc, marker="o", markersize=3, label=curve, color=f"C{j}")
        ax.set(title=arch, xlabel="epoch", ylabel="test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend()
    plot.banner(fig, budget, data)
    return plot.save(fig, path)


@one_line_errors
def main(argv: Optional[list[str]] = None) -> int:
    ids = [f"{a}/{c}" for a in ARCHS for c in CURVES]
    started = start(SCRIPT, __doc__, argv, ids, ("cifar10",))
    if started is None:
        return 0
    args, budget, selected = started
    notes = [budget_note(budget),
             "paper value: Fig. 4 prints no numbers; the ESG rows show Table 1's accuracy for the same setting "
             "(tdBN, IM-Loss, ESG, T=4), the k rows none.",
             "ours: test accuracy at the epoch of best validation accuracy; the curves are in -data.csv and the PNG.",
             "wall time: training plus evaluation, summed over the epochs."]
    table = ResultsTable(args.out, SCRIPT, budget, f"Fig. 4: k = 1, k = 10 and ESG ({budget.tag})", EXTRA, notes,
                         command(SCRIPT, argv))
    frames = []
    for rid in selected:
        arch, curve = rid.split("/")
        name, preset, table1 = ARCHS[arch]
        label, surrogate = CURVES[curve]
        setting = Setting(preset, arch, 4, {"surrogate": surrogate})
        cfg = config(setting, budget, args.data_root, args.runs)
        row = f"{name} · {label}" + (f" [{budget.tag} on {data_label(setting, budget)}]" if budget.reduced else "")
        paper = Paper(table1, "CIFAR10") if curve == "esg" else None
        print(f"  {rid}: training {cfg.model} with surrogate {surrogate} on {cfg.dataset} ...", flush=True)
        try:
            results = train(cfg)
        except ROW_ERRORS as e:
            table.add(rid, Path(cfg.out).name, row=row, paper=paper, ours=not_run(e), surrogate=surrogate)
            continue
        frames.append(curve_frame(name, label, results.history))
        base = cells(results)
        table.add(rid, Path(cfg.out).name, row=row, paper=paper, ours=measured(results, setting, budget),
                  epochs=base.pop("epochs"), wall=base.pop("wall"), images=base.pop("images"),
                  device=base.pop("device"), **base, surrogate=surrogate,
                  **{"test after epoch 1": f"{100 * results.history[0]['test_acc']:.2f}%",
                     "notes": "paper value: Table 1, same setting" if paper else ""})
    figures = ()
    if frames and is_main():
        data = pd.concat(frames).assign(budget=budget.tag, **{"git sha": table.sha})
        write_atomic(args.out / f"{table.stem}-data.csv", data.to_csv(index=False))
        figures = (draw(data, budget, data_label(Setting("paper-cifar10", "resnet19", 4), budget),
                        args.out / f"{table.stem}.png"), args.out / f"{table.stem}-data.csv")
    return finish(table, PRINTED, figures)


if __name__ == "__main__":
    sys.exit(main())
