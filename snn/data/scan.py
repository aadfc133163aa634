"""`check_dataset`: read every file of a dataset once and list the bad ones (python -m snn.data check)."""

from __future__ import annotations

import os
from pathlib import Path

from .build import DATASETS, DEFAULT_ROOT
from ..checks import boolean as check_bool
from .cifar import check_cifar
from .cifar10_dvs import check_cifar10_dvs
from .folder import check_folder
from .imagenet import check_imagenet

# Datasets read from files; digits ships with scikit-learn and synthetic is generated.
CHECKERS = {
    "cifar10": check_cifar,
    "cifar100": check_cifar,
    "imagenet": check_imagenet,
    "cifar10-dvs": check_cifar10_dvs,
    "folder": check_folder,
}


def check_dataset(name: str, root=None, verify: bool = True) -> tuple[int, list[str]]:
    """(files checked, one message per bad file, each naming the file and what is wrong with it).

    cifar10/cifar100: each pickle unpickled and its layout checked, plus the official md5 when verify;
    imagenet: every image of train/ and val/ decoded in full (folder: every image of its tree);
    cifar10-dvs: every .aedat file read and decoded as DVS128 events (its frame cache is not checked: a
    bad cache file is rebuilt when read).
    digits and synthetic have no files: (0, []). root: as for build_datasets (default 'data').
    Raises DatasetNotFound when the dataset is not there at all, ValueError for an unknown name.
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"name must be one of {DATASETS}, got {name!r}")
    check_bool("verify", verify)
    if name not in CHECKERS:
        return 0, []
    if root is None:
        root = DEFAULT_ROOT
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path (str or os.PathLike) or None, got {root!r}")
    root = Path(root).expanduser()
    if name in ("cifar10", "cifar100"):
        return check_cifar(name, root, verify=verify)
    return CHECKERS[name](name, root)
