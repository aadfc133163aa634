"""Training one row through snn.train: its Config at a budget, its run folder, the run itself
(resumed from its checkpoint), and the table cells of what it measured.

Run folders are <runs>/<budget name>/<model>-<dataset>-T<T>-<fingerprint>, the fingerprint
hashing every setting that changes the result, so identical rows share one run (Table 1's last
rows are Table 2's CIFARNet and ResNet-19 T=4 rows) and a rerun resumes or reuses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import mean
from typing import Optional

import pandas as pd
import torch

from snn.data import DatasetNotFound, make_loader
from snn.files import write_atomic
from snn.train import Config, NonFiniteLoss, Results, run, runlock
from snn.train.distributed import Context
from snn.train.prepare import build_data, build_model
from snn.train.loop import StepSettings, model_input
from snn.train.presets import PRESETS

from .budget import Budget, device_label
from .events import write_event_set
from .table import Measured, NotRun

# What makes a row say "not run" instead of stopping the script.
ROW_ERRORS = (DatasetNotFound, NonFiniteLoss, torch.OutOfMemoryError, MemoryError)
DATA_NAMES = {"cifar10": "CIFAR10", "cifar100": "CIFAR100", "imagenet": "ImageNet", "cifar10-dvs": "CIFAR10-DVS"}
EVENT_SET = "synthetic events"  # the data label of the generated CIFAR10-DVS-format set
ACCURACY_COLUMNS = ["final test", "best test (chosen on test)"]
DEVICES = "devices.json"


@dataclass(frozen=True)
class Setting:
    """A paper row's training: a snn.train preset, then the row's model, T and method fields."""

    preset: str
    model: str
    T: int
    method: dict = field(default_factory=dict)

    @property
    def dataset(self) -> str:
        return PRESETS[self.preset]["dataset"]


def data_label(setting: Setting, budget: Budget) -> str:
    """What the row trains on at this budget: 'CIFAR10', 'digits', 'synthetic events', ..."""
    if not budget.reduced:
        return DATA_NAMES[setting.dataset]
    return EVENT_SET if setting.dataset == "cifar10-dvs" else budget.static_data


def fingerprint(cfg: Config) -> str:
    """10 hex digits hashing the run's identity (Config.identity) and its data root."""
    text = json.dumps({**cfg.identity(), "data_root": cfg.data_root}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def config(setting: Setting, budget: Budget, data_root: str, runs: Path, suffix: str = "") -> Config:
    """The row's Config at this budget, resuming from (and writing to) its run folder (+ suffix,
    for runs that start from something else than the engine's initialization); the engine's
    per-epoch progress bar shows on a terminal."""
    fields = {"model": setting.model, "T": setting.T, **setting.method, "progress": sys.stderr.isatty(),
              "resume": True}
    if budget.reduced:
        if setting.dataset == "cifar10-dvs":
            root = runs / "data" / f"events-{budget.dvs_files}"
            fields["data_root"] = str(write_event_set(root, budget.dvs_files))
        else:
            fields.update(dataset=budget.static_data, data_options=dict(budget.data_options))
    else:
        fields["data_root"] = data_root
    for name in ("width", "epochs", "input_size", "batch_size"):
        if getattr(budget, name) is not None:
            fields[name] = getattr(budget, name)
    if budget.max_T is not None:
        fields["T"] = min(setting.T, budget.max_T)
    cfg = Config.from_preset(setting.preset, **fields)
    return replace(cfg, out=str(runs / budget.name / f"{cfg.model}-{cfg.dataset}-T{cfg.T}-{fingerprint(cfg)}{suffix}"))


def run_device(cfg: Config) -> torch.device:
    """The device snn.train.run(cfg) trains on (single process)."""
    return torch.device("cuda" if torch.cuda.is_available() and cfg.device != "cpu" else "cpu")


def train(cfg: Config) -> Results:
    """snn.train.run(cfg), its log appended to <out>/train.log (a finished run just reloads).

    The run folder's lock (snn.train.runlock) is held throughout: a row whose folder another script
    is training waits for it, then resumes (or reloads) what that one wrote, instead of training
    the same folder twice at once. <out>/devices.json lists the device of every call that trained
    epochs, so a run reused or resumed elsewhere reports where its epochs really ran (see trained_on)."""
    out = Path(cfg.out)

    def waiting(holder: str) -> None:
        print(f"  {out} is being trained by {holder}; waiting for it to finish", flush=True)

    with runlock.hold(out, wait=True, on_wait=waiting):
        done = len(pd.read_csv(out / "metrics.csv")) if (out / "metrics.csv").is_file() else 0
        if done < cfg.epochs:
            labels = trained_on(out)
            label = device_label(run_device(cfg))
            write_atomic(out / DEVICES, json.dumps(labels + [label] if label not in labels else labels) + "\n")
        with open(out / "train.log", "a") as log, contextlib.redirect_stdout(log):
            return run(cfg)


UNREADABLE = "unknown (devices.json unreadable)"


def trained_on(out: Path) -> list[str]:
    """The device labels recorded for the run in out (see train). A devices.json that is not a JSON
    list of strings (empty or damaged: a file not written by `train`'s atomic write, or a disk
    fault) gives [UNREADABLE] and a warning naming it: the devices of the earlier epochs are not
    known."""
    path = Path(out) / DEVICES
    if not path.is_file():
        return []
    try:
        labels = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        labels, reason = None, f"{type(e).__name__}: {e}"
    else:
        reason = f"it holds {type(labels).__name__} {labels!r:.60}, not a list of device names"
    if isinstance(labels, list) and all(isinstance(label, str) for label in labels):
        return labels
    warnings.warn(f"{path} cannot be read ({reason}); the devices of the run's earlier epochs are reported as "
                  f"{UNREADABLE!r}", stacklevel=2)
    return [UNREADABLE]


def model_device(results: Results) -> torch.device:
    return next(results.model.parameters()).device


@dataclass(frozen=True)
class TrainedBatch:
    """A trained network rebuilt on its device and one training batch laid out for it."""

    model: torch.nn.Module
    x: torch.Tensor
    y: torch.Tensor
    device: torch.device


def trained_model_on_batch(cfg: Config, results: Results) -> TrainedBatch:
    """The trained network of `results` rebuilt from cfg (in training mode) on the device it trained
    on, and the first training batch of cfg.batch_size drawn with cfg.seed, moved and laid out as
    the engine's step feeds it.

    Rebuilt rather than reused, so cfg may change what holds no weights (LIFs hold none: another
    surrogate loads the same state dict) and a measurement does not touch the run's own model."""
    device = model_device(results)
    train_set, _, _, info = build_data(cfg, Context(0, 1, device, owns_group=False))
    channels_last = device.type == "cuda" if cfg.channels_last is None else cfg.channels_last
    model = build_model(cfg, info).to(device, memory_format=torch.channels_last if channels_last
                                      else torch.preserve_format)
    model.load_state_dict(results.model.state_dict())
    model.train()
    x, y = next(iter(make_loader(train_set, cfg.batch_size, train=True,
                                 generator=torch.Generator().manual_seed(cfg.seed))))
    settings = StepSettings(T=cfg.T, device=device, amp=False, channels_last=channels_last,
                            im_lambda=cfg.im_lambda, clip_grad=None)
    return TrainedBatch(model, model_input(x, settings), y.to(device), device)


def sync(device: torch.device) -> None:
    """Wait for the work queued on device, so that a host clock read next covers it (CUDA runs
    asynchronously; a CPU call returns when its work is done)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measured(results: Results, setting: Setting, budget: Budget) -> Measured:
    """"ours": test accuracy at the epoch of best validation accuracy (no selection on the test set)."""
    acc = results.test_acc_at_best_val if results.best_val_epoch is not None else results.final_test_acc
    return Measured(100 * acc, data_label(setting, budget), budget.tag)


def cells(results: Results) -> dict:
    """The standard and accuracy cells of a finished run, from its per-epoch metrics.

    wall time: training plus evaluation seconds summed over the epochs (a resumed run counts
    every epoch once); images/s: mean training throughput over the epochs; device: where the
    epochs ran."""
    h = results.history
    return {"epochs": str(len(h)),
            "wall": f"{sum(r['epoch_seconds'] + r['eval_seconds'] for r in h):.1f} s",
            "images": f"{mean(r['images_per_s'] for r in h):.0f}",
            "device": " + ".join(trained_on(results.out)) or "not recorded",
            "final test": f"{100 * results.final_test_acc:.2f}%",
            "best test (chosen on test)": f"{100 * results.best_test_acc:.2f}% (epoch {results.best_test_epoch})"}


def not_run(error: BaseException) -> NotRun:
    """The NotRun of a row whose run raised one of ROW_ERRORS (first line of the message)."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return NotRun(f"{type(error).__name__}: {message}")


def train_or_reason(cfg: Config) -> tuple[Optional[Results], Optional[NotRun]]:
    """(results, None), or (None, why) when the run raised one of ROW_ERRORS."""
    try:
        return train(cfg), None
    except ROW_ERRORS as e:
        return None, not_run(e)
