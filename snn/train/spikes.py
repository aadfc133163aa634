"""Per-layer spike rates of every epoch, in the run folder: <out>/spike_rates.csv and a plot,
<out>/spike_rates.png (the data of the paper's Fig. 2, per epoch).

spike_rates.csv has one row per epoch and LIF layer: `epoch` (1-based), `layer` (its module
name in the model), `index` (0-based, in the model's layer order) and `rate` (its spikes over
its neuron-timesteps on the test set after that epoch, as snn.SpikeRateMonitor counts them).
It is rewritten from the metrics history (the `rate/<layer>` entries) with the metrics files, so
it always holds the epochs the checkpoint holds. The plot shows rate against layer, one line per
epoch (darker = later), and is drawn at the end of a run.
"""

from __future__ import annotations

import io
from pathlib import Path

from ..files import write_atomic

CSV, PNG = "spike_rates.csv", "spike_rates.png"
PREFIX = "rate/"  # the metrics row's key of a layer's rate (engine._evaluated_row)


def table(history: list[dict]) -> list[tuple[int, str, int, float]]:
    """(epoch, layer, index, rate) for every rate of every epoch row of history, in order."""
    rows = []
    for row in history:
        layers = [k for k in row if k.startswith(PREFIX) and row[k] is not None]
        rows.extend((row["epoch"], key[len(PREFIX):], i, float(row[key])) for i, key in enumerate(layers))
    return rows


def write_csv(out: Path, history: list[dict]) -> None:
    """Rewrite <out>/spike_rates.csv from history, atomically (raises snn.files.WriteError)."""
    lines = ["epoch,layer,index,rate"] + [f"{e},{layer},{i},{rate!r}" for e, layer, i, rate in table(history)]
    write_atomic(out / CSV, "\n".join(lines) + "\n")


def write_plot(out: Path, history: list[dict]) -> bool:
    """Draw <out>/spike_rates.png (matplotlib's Agg backend: no display needed), atomically;
    -> False, writing nothing, when history holds no rate (a model without snn.LIF layers)."""
    rows = table(history)
    if not rows:
        return False
    import matplotlib  # here: ~0.5 s to import, needed once per run

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure  # a Figure outside pyplot: no global state, nothing to close

    epochs = sorted({r[0] for r in rows})
    layers = [r[1] for r in rows if r[0] == epochs[-1]]
    fig = Figure(figsize=(max(6.0, 0.45 * len(layers) + 2), 4.0), layout="constrained")
    ax = fig.subplots()
    colors = matplotlib.colormaps["viridis"]
    for n, epoch in enumerate(epochs):
        points = [(i, rate) for e, _, i, rate in rows if e == epoch]
        ax.plot(*zip(*points), marker="o", ms=3, color=colors(n / max(1, len(epochs) - 1)),
                label=f"epoch {epoch}" if len(epochs) <= 10 or epoch in (epochs[0], epochs[-1]) else None)
    ax.set_xticks(range(len(layers)), layers, rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("LIF layer")
    ax.set_ylabel("spike rate on the test set")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    write_atomic(out / PNG, buffer.getvalue())
    return True
