"""scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes; real data, no download).

The project's default dataset for CPU runs. The test split is fixed: 20 % of each class, drawn by
holdout_split with seed 0, whatever seed the caller uses for its validation hold-out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from ..checks import integer as check_int
from .info import DatasetInfo, Parts
from .split import holdout_split

TEST_FRACTION = 0.2
TEST_SEED = 0


def build_digits(name: str, root: Path, download: bool, *, size: int = 32) -> Parts:
    """Digits as normalized float32 [1, size, size], no augmentation.

    The 8x8 images (values 0-16) are scaled to [0, 1], resized bilinearly to size x size, and
    normalized by the mean and std of the training pixels. size defaults to 32 so that the CIFAR
    architectures (which downsample by up to 16x) take it unchanged; 16 is 4x cheaper for small nets.
    root and download are unused: the data ships with scikit-learn.
    """
    check_int("size", size, 1)
    from sklearn.datasets import load_digits  # here, not at module level: scikit-learn takes ~1 s to import

    bunch = load_digits()
    labels = np.asarray(bunch.target, dtype=np.int64)
    images = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32) / 16.0).unsqueeze(1)
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    train_idx, test_idx = (torch.from_numpy(i) for i in holdout_split(labels, TEST_FRACTION, TEST_SEED))
    mean, std = images[train_idx].mean(), images[train_idx].std()
    images = ((images - mean) / std).contiguous()
    train_labels, test_labels = labels[train_idx.numpy()], labels[test_idx.numpy()]
    return Parts(
        train=TensorDataset(images[train_idx], torch.from_numpy(train_labels)),
        test=TensorDataset(images[test_idx], torch.from_numpy(test_labels)),
        train_targets=train_labels, test_targets=test_labels,
        train_transform=None, eval_transform=None,
        info=DatasetInfo(name=name, num_classes=10, in_channels=1, size=(size, size), kind="static",
                         frames=None, classes=tuple(str(d) for d in range(10))),
    )
