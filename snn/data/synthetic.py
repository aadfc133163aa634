"""A tiny generated dataset for tests: one fixed random pattern per class plus Gaussian noise."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from ..checks import integer as check_int, real as check_real
from .info import DatasetInfo, Parts


def build_synthetic(name: str, root: Path, download: bool, *, num_classes: int = 4, channels: int = 3,
                    size: int = 8, train_per_class: int = 32, test_per_class: int = 16,
                    noise: float = 0.5, data_seed: int = 0) -> Parts:
    """Static images float32 [channels, size, size]: sample = pattern[label] + noise * N(0, 1).

    The patterns are N(0, 1) images drawn, like the noise, from torch.Generator(data_seed), so the
    data is identical on every call; with the default noise a small net separates the classes in a
    few steps. Samples are ordered by class within each split. root and download are unused.
    """
    for arg, value in (("num_classes", num_classes), ("channels", channels), ("size", size),
                       ("train_per_class", train_per_class), ("test_per_class", test_per_class)):
        check_int(arg, value, 1)
    noise = check_real("noise", noise, 0.0, float("inf"))
    check_int("data_seed", data_seed, 0)
    g = torch.Generator().manual_seed(data_seed)
    patterns = torch.randn(num_classes, channels, size, size, generator=g)

    def draw(per_class: int) -> TensorDataset:
        labels = torch.arange(num_classes).repeat_interleave(per_class)
        images = patterns[labels] + noise * torch.randn(len(labels), channels, size, size, generator=g)
        return TensorDataset(images, labels)

    train, test = draw(train_per_class), draw(test_per_class)
    return Parts(
        train=train, test=test,
        train_targets=train.tensors[1].numpy(), test_targets=test.tensors[1].numpy(),
        train_transform=None, eval_transform=None,
        info=DatasetInfo(name=name, num_classes=num_classes, in_channels=channels, size=(size, size),
                         kind="static", frames=None, classes=tuple(f"class{c}" for c in range(num_classes))),
    )
