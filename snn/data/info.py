"""What a dataset builder hands back: the raw train/test datasets, their transforms, and a summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from torch.utils.data import Dataset

KINDS = ("static", "events")


@dataclass(frozen=True)
class DatasetInfo:
    """Summary the model and the trainer need.

    kind 'static': a sample is an image [C, H, W] (the model repeats it over its T timesteps);
    kind 'events': a sample is a frame sequence [T, C, H, W] with T == frames (C == 2 polarities).
    size is (H, W); classes holds the class names in label order.
    """

    name: str
    num_classes: int
    in_channels: int
    size: tuple[int, int]
    kind: str
    frames: Optional[int]
    classes: tuple[str, ...]

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if (self.kind == "events") != (self.frames is not None):
            raise ValueError(f"frames must be set for kind 'events' and None for 'static', "
                             f"got kind={self.kind!r}, frames={self.frames!r}")
        if len(self.classes) != self.num_classes:
            raise ValueError(f"classes has {len(self.classes)} names but num_classes is {self.num_classes}")


@dataclass(frozen=True)
class Parts:
    """A builder's output before the validation hold-out.

    train/test return (raw_sample, label); train_targets [N_train] and test_targets [N_test] hold
    their labels (read without loading samples, for the stratified hold-out); the transforms map a raw sample
    to the model input (None: the raw sample already is the input).
    """

    train: Dataset
    test: Dataset
    train_targets: np.ndarray
    test_targets: np.ndarray
    train_transform: Optional[Callable]
    eval_transform: Optional[Callable]
    info: DatasetInfo
