"""Budgets, the shared command-line flags, and what a row records about where it ran.

A budget says how a paper row is scaled down: `paper` keeps the row's dataset, network and
recipe (snn.train presets); `smoke` trains the static rows on scikit-learn's digits and the
CIFAR10-DVS row on a generated event set, at reduced width and epochs; `tiny` is the CI size
(snn.data's synthetic patterns, one epoch, T <= 2). --epochs and --width override any budget;
the overrides become part of the budget's tag, hence of the file names.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import torch

from snn.data import DatasetNotFound, build_datasets
from snn.data.cifar10_dvs import find_cifar10_dvs
from snn.data.imagenet import find_imagenet

REPO = Path(__file__).resolve().parents[2]
RUNS = REPO / "runs" / "reproduce"
# A run writes its tables and figures outside the tracked tree by default; the committed
# reference results are rewritten only on purpose, with --out reproduce/results.
RESULTS = RUNS / "results"
REFERENCE_RESULTS = REPO / "reproduce" / "results"


@dataclass(frozen=True)
class Budget:
    """How rows are scaled. None keeps the paper's value (preset or row).

    static_data: dataset standing in for CIFAR10/100 and ImageNet (None: the row's own).
    data_options: options of that stand-in dataset. dvs_files: files per class of the generated
    CIFAR10-DVS-format event set that stands in for CIFAR10-DVS (0: the real dataset).
    max_T: cap on the row's timesteps. overrides: the --epochs / --width given, for the tag.
    """

    name: str
    description: str
    static_data: Optional[str] = None
    data_options: dict = field(default_factory=dict)
    dvs_files: int = 0
    width: Optional[float] = None
    epochs: Optional[int] = None
    input_size: Optional[int] = None
    batch_size: Optional[int] = None
    max_T: Optional[int] = None
    overrides: tuple = ()

    @property
    def tag(self) -> str:
        """The budget name plus its overrides, e.g. 'smoke' or 'paper-e10-w0.5' (used in file names)."""
        return "-".join([self.name, *self.overrides])

    @property
    def reduced(self) -> bool:
        """True when rows do not run on the paper's own data (smoke, tiny)."""
        return self.name != "paper"


BUDGETS = {
    "paper": Budget("paper", "the paper's networks (width 1), timesteps and recipe (snn.train presets: SGD "
                             "lr 0.1, momentum 0.9, wd 1e-4, cosine, batch 128, 100 epochs, tdBN, ESG K 1..10, "
                             "IM-Loss weight 2) on the real datasets under --data-root"),
    "smoke": Budget("smoke", "SMOKE RUN, not a reproduction: static rows train on scikit-learn's 8x8 digits "
                             "resized to 16x16 (10 classes, 1 channel), the CIFAR10-DVS row on a generated "
                             "set of synthetic events written in the CIFAR10-DVS file format; width 0.125, "
                             "6 epochs, batch 32, the row's timesteps",
                    static_data="digits", dvs_files=60, width=0.125, epochs=6, input_size=16, batch_size=32),
    "tiny": Budget("tiny", "TINY CI RUN, not a reproduction: snn.data's synthetic patterns (10 classes, 1 "
                           "channel, 16x16, 8 train / 4 test per class) and a generated event set, width "
                           "0.125, 1 epoch, batch 16, T <= 2",
                   static_data="synthetic", data_options={"num_classes": 10, "channels": 1, "train_per_class": 8,
                                                          "test_per_class": 4},
                   dvs_files=10, width=0.125, epochs=1, input_size=16, batch_size=16, max_T=2),
}


def parser(description: str, variation: bool = False) -> argparse.ArgumentParser:
    """The flags every training script takes; variation: also --seeds (see _common/variation.py)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", choices=tuple(BUDGETS),
                   help="paper, smoke or tiny (default: paper when a CUDA device and one of the script's "
                        "datasets are found, else smoke)")
    p.add_argument("--epochs", type=int, help="epochs of every row (overrides the budget's)")
    p.add_argument("--width", type=float, help="width multiplier of every network (overrides the budget's)")
    p.add_argument("--rows", help="comma-separated row ids or globs to run (see --list); others are skipped")
    p.add_argument("--list", action="store_true", help="print the row ids and exit")
    p.add_argument("--data-root", default="data", help="folder holding the datasets (paper budget; default: data)")
    p.add_argument("--out", type=Path, default=RESULTS,
                   help=f"results folder (default: {RESULTS.relative_to(REPO)}; the committed reference results "
                        f"are in {REFERENCE_RESULTS.relative_to(REPO)})")
    p.add_argument("--runs", type=Path, default=RUNS,
                   help=f"training run folders, checkpoints included, for resuming (default: {RUNS})")
    if variation:
        p.add_argument("--seeds", type=int, default=3,
                       help="at the smoke and tiny budgets, train one row with this many seeds and state the "
                            "run-to-run variation in the table's notes (default: 3; 0 or 1: skip)")
    return p


def missing_dataset(name: str, root) -> Optional[str]:
    """None when dataset `name` is under root, else the reason (DatasetNotFound's message).

    Cheap probes: CIFAR loads its pickles; ImageNet and CIFAR10-DVS only look for their folders."""
    try:
        if name == "imagenet":
            find_imagenet(Path(root).expanduser())
        elif name == "cifar10-dvs":
            find_cifar10_dvs(Path(root).expanduser())
        else:
            build_datasets(name, root=root, val_fraction=0.0)
    except DatasetNotFound as e:
        return str(e)
    return None


def choose(args: argparse.Namespace, datasets: tuple[str, ...]) -> tuple[Budget, str]:
    """(budget, why it was chosen) from --budget, or from the device and the datasets found."""
    if args.budget:
        budget, why = BUDGETS[args.budget], "--budget"
    elif not torch.cuda.is_available():
        budget, why = BUDGETS["smoke"], "no CUDA device"
    else:
        found = [d for d in datasets if missing_dataset(d, args.data_root) is None]
        budget = BUDGETS["paper" if found else "smoke"]
        why = f"CUDA and {', '.join(found)} under {args.data_root}" if found else f"no dataset under {args.data_root}"
    overrides = []
    if args.epochs is not None:
        if args.epochs < 1:
            raise SystemExit(f"--epochs must be >= 1, got {args.epochs}")
        budget, overrides = replace(budget, epochs=args.epochs), overrides + [f"e{args.epochs}"]
    if args.width is not None:
        if not args.width > 0:
            raise SystemExit(f"--width must be > 0, got {args.width}")
        budget, overrides = replace(budget, width=args.width), overrides + [f"w{args.width:g}"]
    return replace(budget, overrides=tuple(overrides)), why


def select(ids: list[str], pattern: Optional[str]) -> list[str]:
    """The ids matched by --rows (comma-separated ids or globs; None: all), in their order."""
    if pattern is None:
        return list(ids)
    wanted = [p.strip() for p in pattern.split(",") if p.strip()]
    unknown = [p for p in wanted if not fnmatch.filter(ids, p)]
    if unknown:
        raise SystemExit(f"--rows: no row matches {', '.join(unknown)}; rows are: {', '.join(ids)}")
    return [i for i in ids if any(fnmatch.fnmatch(i, p) for p in wanted)]


def is_main() -> bool:
    """False on the torchrun ranks other than 0: they train alongside rank 0 but write nothing,
    and leave the one-off measurements (warm start, Dspike cost, epoch-0 rates) to rank 0."""
    return int(os.environ.get("RANK", "0")) == 0


def device_label(device: torch.device) -> str:
    """'cuda (NVIDIA H200)' or 'cpu (2 threads)'."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'s' if threads > 1 else ''})"


def git_sha() -> str:
    """Short HEAD commit, '+dirty' when the code (snn, kernels, reproduce but its results) has
    changes or untracked files not in it; 'unknown' outside git."""
    git = ["git", "--no-optional-locks", "-C", str(REPO)]  # read-only: never rewrites the index
    try:
        sha = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        changes = subprocess.run([*git, "status", "--porcelain", "--", "snn", "kernels", "reproduce",
                                  ":!reproduce/results"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if changes.strip() else "")
