"""`build_datasets`: one entry point from a dataset name to (train, val, test, info)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from ..checks import boolean as check_bool, integer as check_int, real as check_real
from .cifar import build_cifar
from .cifar10_dvs import build_cifar10_dvs
from .digits import build_digits
from .folder import build_folder
from .imagenet import build_imagenet
from .info import DatasetInfo
from .split import TransformedSubset, holdout_split
from .synthetic import build_synthetic

DEFAULT_ROOT = "data"
DEFAULT_FRAMES = 10  # CIFAR10-DVS frames per sample (docs/design.md, "CIFAR10-DVS")

BUILDERS = {
    "cifar10": build_cifar,
    "cifar100": build_cifar,
    "imagenet": build_imagenet,
    "cifar10-dvs": build_cifar10_dvs,
    "digits": build_digits,
    "synthetic": build_synthetic,
    "folder": build_folder,
}
DATASETS = tuple(BUILDERS)
EVENT_DATASETS = ("cifar10-dvs",)  # their builders take frames=T


def dataset_options(name: str) -> tuple[str, ...]:
    """The extra keyword options (**opts of build_datasets) that dataset `name` accepts."""
    if name not in BUILDERS:
        raise ValueError(f"name must be one of {DATASETS}, got {name!r}")
    params = inspect.signature(BUILDERS[name]).parameters.values()
    return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name != "frames")


def build_datasets(name: str, root=None, T=None, download: bool = False, val_fraction: float = 0.1,
                   seed: int = 0, **opts) -> tuple[TransformedSubset, TransformedSubset | None,
                                                   TransformedSubset, DatasetInfo]:
    """Train, validation and test datasets of `name`, and their DatasetInfo.

    Every dataset yields (input, label int). input: float32 [C, H, W] for info.kind 'static' (the
    model repeats it over its T timesteps), [T, 2, H, W] for 'events'; training samples carry the
    training augmentation, validation and test samples none.
    name: one of DATASETS.
    root: the data root, default 'data' in the working directory: cifar10 and cifar100 live in
      root/cifar-10-batches-py and root/cifar-100-python; imagenet and cifar10-dvs in root/imagenet
      and root/cifar10-dvs, or in root itself; folder is the ImageFolder tree root itself
      (snn.data.folder); digits and synthetic need no files.
    T: frames per sample for event datasets (default 10); static datasets ignore it.
    download: fetch a missing dataset where an automatic download exists (cifar10, cifar100).
    val_fraction, seed: val holds out floor(val_fraction * n_c + 1/2) training samples of each class c,
      drawn by holdout_split (numpy default_rng(seed)); the same seed gives the same split. val is
      None when nothing is held out (val_fraction 0).
    opts: per-dataset options, listed by dataset_options(name) (for example size for digits,
      verify for cifar, cache_dir for cifar10-dvs).
    Raises DatasetNotFound (DatasetCorrupt for files that are not the official release) with a
    message that says where it looked and how to get the data.
    """
    if not isinstance(name, str) or name not in BUILDERS:
        raise ValueError(f"name must be one of {DATASETS}, got {name!r}")
    if root is None:
        root = DEFAULT_ROOT
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path (str or os.PathLike) or None, got {root!r}")
    if T is not None:
        check_int("T", T, 1)
    check_bool("download", download)
    check_real("val_fraction", val_fraction, 0.0, 1.0, high_open=True)
    check_int("seed", seed, 0)
    accepted = dataset_options(name)
    unknown = sorted(set(opts) - set(accepted))
    if unknown:
        hint = "; set the number of frames with T" if "frames" in unknown else ""
        raise TypeError(f"dataset {name!r} got unknown option(s) {unknown}; it accepts {list(accepted)}{hint}")
    if name in EVENT_DATASETS:
        opts["frames"] = DEFAULT_FRAMES if T is None else T
    parts = BUILDERS[name](name, Path(root).expanduser(), download, **opts)
    kept, held = holdout_split(parts.train_targets, val_fraction, seed)
    train = TransformedSubset(parts.train, parts.train_targets, kept, parts.train_transform)
    val = TransformedSubset(parts.train, parts.train_targets, held, parts.eval_transform) if held.size else None
    test = TransformedSubset(parts.test, parts.test_targets, None, parts.eval_transform)
    return train, val, test, parts.info
