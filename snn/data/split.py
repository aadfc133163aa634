"""Deterministic stratified hold-out and a transformed view of a subset of a dataset."""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from ..checks import integer as check_int, real as check_real


def holdout_split(targets, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices [0, N) into (kept, held_out), stratified by label.

    targets: [N] integer labels. For each class c (in ascending label order) with n_c samples, its
    indices are permuted by numpy's default_rng(seed) (one generator shared across the classes) and
    the first floor(fraction * n_c + 0.5) go to held_out. Both outputs are sorted int64 arrays; the
    same (targets, fraction, seed) always gives the same split, on every platform.
    """
    fraction = check_real("fraction", fraction, 0.0, 1.0, high_open=True)
    check_int("seed", seed, 0)
    targets = np.asarray(targets)
    if targets.ndim != 1 or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets must be a 1-d integer array, got shape {targets.shape} dtype {targets.dtype}")
    rng = np.random.default_rng(seed)
    _, counts = np.unique(targets, return_counts=True)
    held = []
    for idx in np.split(np.argsort(targets, kind="stable"), np.cumsum(counts)[:-1]):  # ascending per class
        n_held = math.floor(fraction * idx.size + 0.5)
        held.append(rng.permutation(idx)[:n_held])
    held_out = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    kept = np.setdiff1d(np.arange(targets.size), held_out)
    return kept.astype(np.int64), held_out.astype(np.int64)


class TransformedSubset(Dataset):
    """Samples `indices` of `base` (all when None) with `transform` applied to the raw sample.

    base[i] must return (raw_sample, label); targets [len(self)] int64 are the labels of the view,
    taken from base_targets without loading any sample. The transform's random draws come from
    torch's global RNG, unless seed_augmentation() made them a function of the sample.
    """

    def __init__(self, base: Dataset, base_targets, indices: Optional[np.ndarray],
                 transform: Optional[Callable]):
        base_targets = np.asarray(base_targets, dtype=np.int64)
        self.base = base
        self.indices = np.arange(len(base_targets), dtype=np.int64) if indices is None else np.asarray(indices)
        self.targets = base_targets[self.indices]
        self.transform = transform
        self.augmentation: Optional[tuple[int, int]] = None  # (seed, epoch) of seed_augmentation

    def seed_augmentation(self, seed: int, epoch: int) -> None:
        """From now on, the transform of sample i draws from torch's CPU generator seeded with
        sample_seed(seed, epoch, i), and that generator's state is put back afterwards: sample i of
        an epoch is augmented the same in whichever process reads it (loader worker, rank) and
        whatever was read before it, so a resumed epoch, another worker count or another world size
        augments as an uninterrupted run does. The trainer calls it before each epoch's loader.
        Transforms must draw from torch's RNG (torchvision's and snn.data's do)."""
        check_int("seed", seed, 0)
        check_int("epoch", epoch, 0)
        self.augmentation = (seed, epoch)

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, i: int):
        x, y = self.base[int(self.indices[i])]
        if self.transform is not None:
            if self.augmentation is None:
                x = self.transform(x)
            else:
                generator = torch.default_generator
                state = generator.get_state()
                generator.manual_seed(sample_seed(*self.augmentation, i))
                try:
                    x = self.transform(x)
                finally:
                    generator.set_state(state)
        return x, int(y)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of sample index's augmentation in epoch of a run seeded with seed: numpy's
    SeedSequence of the three (distinct triples give independent streams), as a uint64."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, np.uint64)[0])
