"""Datasets for the training engine: one entry point, `build_datasets(name, ...)`.

    train, val, test, info = build_datasets("digits", val_fraction=0.1, seed=0, size=32)
    loader = make_loader(train, batch_size=64, train=True)

Datasets: cifar10, cifar100, imagenet, cifar10-dvs (event frames), folder (any ImageFolder tree),
digits (scikit-learn's bundled 8x8 digits, the default for CPU runs), synthetic (tests).
A missing dataset raises DatasetNotFound, a damaged or foreign file DatasetCorrupt naming it;
check_dataset (python -m snn.data check) lists every bad file of a dataset in one pass.
"""

from .build import DATASETS, DEFAULT_FRAMES, DEFAULT_ROOT, build_datasets, dataset_options
from .errors import DatasetCorrupt, DatasetNotFound
from .info import DatasetInfo
from .loader import make_loader
from .scan import check_dataset
from .split import TransformedSubset, holdout_split

__all__ = ["build_datasets", "check_dataset", "dataset_options", "make_loader", "holdout_split", "DATASETS",
           "DEFAULT_FRAMES", "DEFAULT_ROOT", "DatasetInfo", "DatasetNotFound", "DatasetCorrupt", "TransformedSubset"]
