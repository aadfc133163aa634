"""Per-epoch metrics: one row per epoch in <out>/metrics.csv and <out>/metrics.jsonl (and <out>/spike_rates.csv).

Columns (accuracies are fractions in [0, 1]; an empty cell / null means "not applicable"):
  epoch           1-based epoch number (= epochs completed after it)
  lr              learning rate the epoch trained with
  train_loss      CE + im_lambda * IM, mean over the epoch's training samples
  train_ce        cross-entropy part;  train_im: the IM-Loss term (eq. 11), before im_lambda
  train_acc       accuracy of the training forwards (train mode, augmented samples)
  val_acc         accuracy on the held-out validation split (null when val_fraction = 0)
  test_acc        accuracy on the test split
  K               the tanh surrogate's K during the epoch (ESG schedule or tanh:K), else null
  dspike_b        Dspike temperature chosen for the epoch;  dspike_seconds: wall time of its
                  finite-difference selection;  dspike_forwards: perturbed-loss evaluations (2 per
                  first-layer weight);  dspike_skipped: why the selection kept b (a flat finite
                  difference), else null
  epoch_seconds   wall time of the training pass (includes the Dspike selection)
  eval_seconds    wall time of validation and test evaluation
  images_per_s    training images (all ranks) / epoch_seconds
  peak_mem_mib    CUDA: peak allocated memory during the epoch (max over ranks);
                  CPU: peak resident memory of the process so far (max over ranks)
  rate/<layer>    spike rate of each LIF layer over the test set (the data of the paper's Fig. 2)
spike_rates.csv holds the rate/<layer> entries in long form (snn.train.spikes).
The files are rewritten from the checkpoint's history after every epoch, so a resumed run's
files hold exactly the epochs its checkpoint holds.
"""

from __future__ import annotations

import json
import resource
from pathlib import Path

import pandas as pd
import torch

from . import spikes
from .checkpoint import write_atomic

CSV, JSONL = "metrics.csv", "metrics.jsonl"


def write(out: Path, history: list[dict]) -> None:
    """Rewrite <out>/metrics.csv and <out>/metrics.jsonl from history (one dict per epoch), atomically
    (checkpoint.write_atomic; raises checkpoint.WriteError)."""
    csv = pd.DataFrame(history).to_csv(index=False)
    jsonl = "".join(json.dumps(row) + "\n" for row in history)
    write_atomic(out / CSV, lambda f: f.write(csv.encode()))
    write_atomic(out / JSONL, lambda f: f.write(jsonl.encode()))
    spikes.write_csv(out, history)  # the rate/<layer> columns again, one row per epoch and layer


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mib(device: torch.device) -> float:
    """CUDA: peak allocated bytes since reset_peak_memory; CPU: the process's peak RSS (in MiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def best(history: list[dict], key: str) -> tuple[float | None, int | None]:
    """(highest value of key, its first epoch) over history, ignoring null entries."""
    rows = [r for r in history if r.get(key) is not None]
    if not rows:
        return None, None
    top = max(rows, key=lambda r: r[key])  # max keeps the first of equal values
    return top[key], top["epoch"]


def summary(row: dict, epochs: int) -> str:
    """One log line for an epoch row."""
    def pct(v):
        return "-" if v is None else f"{100 * v:.2f}%"

    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {row['train_loss']:.4f} (CE {row['train_ce']:.4f}, "
             f"IM {row['train_im']:.4f})", f"train {pct(row['train_acc'])}", f"val {pct(row['val_acc'])}",
             f"test {pct(row['test_acc'])}"]
    if row.get("K") is not None:
        parts.append(f"K {row['K']:.3g}")
    if row.get("dspike_b") is not None:
        parts.append(f"b {row['dspike_b']:.3g} (selection {row['dspike_seconds']:.1f} s)")
    parts.append(f"{row['epoch_seconds']:.1f} s, {row['images_per_s']:.0f} img/s, peak {row['peak_mem_mib']:.0f} MiB")
    return ", ".join(parts)
