#!/usr/bin/env python
"""Fig. 2 of the paper: layer-wise spike rates of spiking CIFARNet and ResNet-19 WITHOUT
normalization, trained with IM-Loss (and ESG), T = 4: at epoch 0 (the initial network), after 1
epoch and at the end of training, each over the whole test set.

    python reproduce/fig2_spike_rate.py                  # smoke on CPU (a few minutes on 2 cores)
    python reproduce/fig2_spike_rate.py --budget paper --data-root ~/data

Epoch 0 evaluates the network the run starts from (built with the same seed in the same order as
snn.train builds it); the other two are the engine's per-epoch spike rates (metrics rate/<layer>).
Writes fig2_spike_rate-<budget>.{csv,md,png} (the paper's claims against ours) and
fig2_spike_rate-<budget>-data.csv (every bar of the figure).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from reproduce._common import plot
from reproduce._common.budget import is_main
from reproduce._common.script import budget_note, command, finish, start
from reproduce._common.table import Measured, ResultsTable
from reproduce._common.training import (ROW_ERRORS, Setting, cells, config, data_label, not_run,
                                        run_device, train)
from snn.data import make_loader
from snn.exits import one_line_errors
from snn.files import write_atomic
from snn.neuron import LIF
from snn.train import Config
from snn.train.distributed import Context
from snn.train.prepare import build_data, build_model, seed_everything
from snn.train.loop import StepSettings, evaluate

SCRIPT = "fig2_spike_rate"
METHOD = {"norm": "none", "surrogate": "esg", "im_lambda": 2.0}
MODELS = {"cifarnet": ("CIFARNet", Setting("paper-cifarnet", "cifarnet", 4, METHOD)),
          "resnet19": ("ResNet-19", Setting("paper-cifar10", "resnet19", 4, METHOD))}
SILENT = 1e-3  # a layer "silent" below this spike rate
CLAIMS = {  # the paper's words (sec. 4.2) for each stage
    "epoch 0": "untrained: spike rates become 0 in the deeper layers",
    "epoch 1": "after 1 epoch with IM-Loss: every layer in an appropriate range, about 50%",
    "end": "end of training: layers restricted by IM-Loss near 0.5",
}
EXTRA = ["stage", "the paper's statement", "ours measures", "silent layers", "rate range"]
PRINTED = ["row", "the paper's statement", "ours", "ours measures", "silent layers", "rate range", "epochs"]


def initial_rates(cfg: Config) -> dict[str, float]:
    """Test-set spike rate of every LIF of the network snn.train.run(cfg) starts from (cached in
    <out>/initial_rates.json)."""
    path = Path(cfg.out) / "initial_rates.json"
    if path.is_file():
        return json.loads(path.read_text())
    device = run_device(cfg)
    ctx = Context(0, 1, device, owns_group=False)
    seed_everything(cfg.seed)  # run()'s order: seed, data, model -> the same initial weights
    _, _, test_set, info = build_data(cfg, ctx)
    model = build_model(cfg, info).to(device)
    settings = StepSettings(T=cfg.T, device=device, amp=False, channels_last=False, im_lambda=cfg.im_lambda,
                            clip_grad=None)
    _, rates = evaluate(model, make_loader(test_set, cfg.batch_size, train=False), settings, ctx, rates=True)
    write_atomic(path, json.dumps(rates) + "\n")
    return rates


def layer_frame(model: str, rates: dict[str, tuple[int, dict[str, float]]], im: dict[str, bool]) -> pd.DataFrame:
    """Long form: model, layer index (1-based), layer, im, stage, epoch, rate.
    rates: stage -> (epochs trained, layer -> rate)."""
    rows = [{"model": model, "layer index": i + 1, "layer": name, "im": im[name], "stage": stage, "epoch": epoch,
             "rate": r[name]} for stage, (epoch, r) in rates.items() for i, name in enumerate(im)]
    return pd.DataFrame(rows)


def stage_cells(frame: pd.DataFrame, stage: str) -> tuple[float, dict]:
    """(the measured number, the extra cells) of one stage's claim."""
    s = frame[frame.stage == stage]
    restricted = s[s.im]
    silent = int((s.rate < SILENT).sum())
    extra = {"silent layers": f"{silent} of {len(s)} (rate < {SILENT:g})",
             "rate range": f"{s.rate.min():.3f} .. {s.rate.max():.3f}"}
    if stage == "epoch 0":
        return s.rate.iloc[-1], {**extra, "ours measures": "spike rate of the last LIF layer"}
    return restricted.rate.mean(), {**extra, "ours measures": "mean spike rate of the IM-Loss layers"}


def draw(frame: pd.DataFrame, budget, data: str, path: Path) -> Path:
    """Grouped bars per layer, one group per stage, as the paper's Fig. 2; hatched: not under IM-Loss."""
    models = list(dict.fromkeys(frame.model))
    fig, axes = plot.plt.subplots(1, len(models), figsize=(6.5 * len(models), 3.6), squeeze=False)
    for ax, model in zip(axes[0], models):
        m = frame[frame.model == model]
        stages = list(dict.fromkeys(m.stage))
        width = 0.8 / len(stages)
        for j, stage in enumerate(stages):
            s = m[m.stage == stage]
            x = s["layer index"].to_numpy() + (j - (len(stages) - 1) / 2) * width
            ax.bar(x, s.rate, width, label=f"epoch {s.epoch.iloc[0]}" + (" (end)" if stage == "end" else ""),
                   color=f"C{j}",
                   hatch=["" if im else "//" for im in s.im], edgecolor="white", linewidth=0.3)
        ax.axhline(0.5, color="gray", linestyle="--", linewidth=0.8)
        ax.set(title=model, xlabel="layer", ylabel="spike rate", ylim=(0, 1),
               xticks=np.arange(1, m["layer index"].max() + 1))
        ax.legend(fontsize=8, title="hatched: inside a residual block (no IM-Loss)", title_fontsize=7)
    plot.banner(fig, budget, data)
    return plot.save(fig, path)


@one_line_errors
def main(argv: Optional[list[str]] = None) -> int:
    started = start(SCRIPT, __doc__, argv, list(MODELS), ("cifar10",))
    if started is None:
        return 0
    args, budget, selected = started
    notes = [budget_note(budget),
             "networks without normalization and without bias in any hidden layer, IM-Loss weight 2, ESG, T=4; rates "
             "over the whole test set; 'end' is the last epoch of this budget (the paper shows epoch 1000).",
             "wall time: training plus evaluation, summed over the epochs."]
    table = ResultsTable(args.out, SCRIPT, budget, f"Fig. 2: layer-wise spike rates without normalization "
                         f"({budget.tag})", EXTRA, notes, command(SCRIPT, argv))
    frames = []
    for model in selected:
        name, setting = MODELS[model]
        cfg = config(setting, budget, args.data_root, args.runs)
        label = name + (f" [{budget.tag} on {data_label(setting, budget)}]" if budget.reduced else "")
        run_id = Path(cfg.out).name
        print(f"  {model}: epoch-0 rates, then training on {cfg.dataset} ...", flush=True)
        try:
            if not is_main():  # torchrun: the other ranks only help rank 0 train
                train(cfg)
                continue
            rates = {"epoch 0": (0, initial_rates(cfg))}
            results = train(cfg)
        except ROW_ERRORS as e:
            table.add(model, run_id, row=label, paper=None, ours=not_run(e))
            continue
        h = results.history
        for stage, epoch in (("epoch 1", 1), ("end", len(h))):
            rates[stage] = (epoch, {k[5:]: v for k, v in h[epoch - 1].items() if k.startswith("rate/")})
        im = {n: m.im for n, m in results.model.named_modules() if isinstance(m, LIF)}
        frame = layer_frame(name, rates, im)
        frames.append(frame)
        base = cells(results)
        for stage in CLAIMS:
            value, extra = stage_cells(frame, stage)
            row = f"{label} · {stage}" + (f" (epoch {len(h)})" if stage == "end" else "")
            table.add(f"{model}/{stage}", run_id, row=row, paper=None,
                      ours=Measured(100 * value, data_label(setting, budget), budget.tag),
                      epochs=base["epochs"], wall=base["wall"], images=base["images"], device=base["device"],
                      stage=stage, **{"the paper's statement": CLAIMS[stage]}, **extra)
    figures = ()
    if frames and is_main():
        data = pd.concat(frames).assign(budget=budget.tag, device=table.rows[-1]["device"], **{"git sha": table.sha})
        write_atomic(args.out / f"{table.stem}-data.csv", data.to_csv(index=False))
        figures = (draw(data, budget, data_label(MODELS["cifarnet"][1], budget), args.out / f"{table.stem}.png"),
                   args.out / f"{table.stem}-data.csv")
    return finish(table, PRINTED, figures)


if __name__ == "__main__":
    sys.exit(main())
