"""Any image-classification tree in torchvision's ImageFolder layout (`--dataset folder --data-root DIR`).

Layouts (the class names are the sub-folder names, sorted; labels are their indices):
- DIR/<class>/<image>: one tree; the test split is test_fraction of each class, held out by
  holdout_split with seed 0 (floor(test_fraction * n_c + 1/2) images of class c), so it is the
  same for every run and every --seed; the validation split (val_fraction) is then held out of
  the rest, per class, with the run's seed, as for every dataset.
- DIR/train/<class>/<image> and DIR/test/<class>/<image> (or DIR/val/<class>/...): already
  split; both must have the same class folders.
Images are read by PIL (torchvision's extensions: .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff
.webp), converted to RGB (channels=3) or greyscale (channels=1), resized to size x size, scaled
to [0, 1] and normalized by mean and std. No augmentation.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Union

import numpy as np
from torch.utils.data import Subset
from torchvision import transforms as tf
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes

from ..checks import integer as check_int, real as check_real
from .errors import DatasetCorrupt, DatasetNotFound
from .imagenet import MEAN, STD, load_rgb
from .info import DatasetInfo, Parts
from .split import holdout_split

TEST_FRACTION = 0.2
TEST_SEED = 0  # the test hold-out does not follow the run's seed: every run of a tree tests on the same images
SPLIT_FOLDERS = (("train", "test"), ("train", "val"))
Stats = Union[float, str, tuple, list]  # one value for every channel, or one per channel ("0.5,0.4,0.3")


def _per_channel(name: str, value: Stats, channels: int) -> tuple[float, ...]:
    """mean / std as a tuple of `channels` floats: one number (every channel) or one per channel."""
    parts = value.split(",") if isinstance(value, str) else value if isinstance(value, (tuple, list)) else [value]
    try:
        numbers = tuple(float(v) for v in parts)
    except (TypeError, ValueError):
        raise ValueError(f"folder: {name} must be a number or {channels} comma-separated numbers, got {value!r}") \
            from None
    if len(numbers) == 1:
        numbers *= channels
    if len(numbers) != channels:
        raise ValueError(f"folder: {name} has {len(numbers)} values for {channels} channels: {value!r}")
    return numbers


def layout(root: Path) -> tuple[Path, Path | None]:
    """(train tree, test tree or None when the test split is held out of the one tree).

    Raises DatasetNotFound when root is not a folder or holds no class folder, DatasetCorrupt
    (naming it) when a class folder holds no image."""
    if not root.is_dir():
        raise DatasetNotFound(f"folder: {root} is not a folder; give --data-root DIR with one sub-folder of images "
                              f"per class (DIR/<class>/*.png), or DIR/train/<class>/ and DIR/test/<class>/")
    split = next(((root / a, root / b) for a, b in SPLIT_FOLDERS if (root / a).is_dir() and (root / b).is_dir()), None)
    trees = split or (root, None)
    for tree in filter(None, trees):
        _check_tree(tree)
    return trees


def _check_tree(tree: Path) -> list[str]:
    """The class names of tree; DatasetNotFound without a class folder, DatasetCorrupt naming an empty one."""
    try:
        classes, _ = find_classes(str(tree))
    except FileNotFoundError:
        classes = []
    if not classes:
        raise DatasetNotFound(f"folder: {tree} holds no class folder; put the images of each class in "
                              f"{tree}/<class>/ (extensions {', '.join(IMG_EXTENSIONS)})")
    for name in classes:
        if not any(p.is_file() and p.suffix.lower() in IMG_EXTENSIONS for p in (tree / name).rglob("*")):
            raise DatasetCorrupt(f"folder: the class folder {tree / name} holds no image (extensions "
                                 f"{', '.join(IMG_EXTENSIONS)}); add its images or remove the folder")
    return classes


def _image_folder(tree: Path) -> ImageFolder:
    return ImageFolder(str(tree), loader=functools.partial(load_rgb, dataset="folder"))


def check_folder(name: str, root: Path) -> tuple[int, list[str]]:
    """Decode every image of the tree(s) once: (files checked, one message per bad file)."""
    samples = [s for tree in filter(None, layout(root)) for s in _image_folder(tree).samples]
    bad = []
    for path, _ in samples:
        try:
            load_rgb(path, dataset="folder")
        except DatasetCorrupt as e:
            bad.append(str(e))
    return len(samples), bad


def build_folder(name: str, root: Path, download: bool, *, size: int = 32, channels: int = 3,
                 mean: Stats = MEAN, std: Stats = STD, test_fraction: float = TEST_FRACTION) -> Parts:
    """An ImageFolder tree at root (see the module docstring) as float32 [channels, size, size].

    size: the side images are resized to (aspect ratio not kept). channels: 3 (RGB) or 1 (grey).
    mean, std: normalization per channel (default ImageNet's; mean=0, std=1 keeps [0, 1]).
    test_fraction: share of each class held out as the test split of a one-tree layout.
    download: unused (there is nothing to download). Raises DatasetNotFound / DatasetCorrupt
    (see layout; DatasetCorrupt naming an undecodable image when it is read), ValueError for
    options out of range."""
    check_int("size", size, 1)
    if channels not in (1, 3):
        raise ValueError(f"folder: channels must be 1 (greyscale) or 3 (RGB), got {channels!r}")
    check_real("test_fraction", test_fraction, 0.0, 1.0, low_open=True, high_open=True)
    mean, std = _per_channel("mean", mean, channels), _per_channel("std", std, channels)
    if not all(s > 0 for s in std):
        raise ValueError(f"folder: std must be > 0 for every channel, got {std}")
    train_tree, test_tree = layout(root)
    train = _image_folder(train_tree)
    classes = train.classes
    if test_tree is None:
        targets = np.asarray(train.targets, dtype=np.int64)
        kept, held = holdout_split(targets, test_fraction, TEST_SEED)
        test = Subset(train, held.tolist())
        train, train_targets, test_targets = Subset(train, kept.tolist()), targets[kept], targets[held]
    else:
        test = _image_folder(test_tree)
        if test.classes != train.classes:
            raise DatasetCorrupt(f"folder: {test_tree} has the class folders {test.classes[:5]}..., which differ "
                                 f"from those of {train_tree} ({train.classes[:5]}...); give both the same classes")
        train_targets, test_targets = (np.asarray(d.targets, dtype=np.int64) for d in (train, test))
    grey = [tf.Grayscale(1)] if channels == 1 else []
    transform = tf.Compose([tf.Resize((size, size)), *grey, tf.ToTensor(), tf.Normalize(mean, std)])
    return Parts(train=train, test=test, train_targets=train_targets, test_targets=test_targets,
                 train_transform=transform, eval_transform=transform,
                 info=DatasetInfo(name=name, num_classes=len(classes), in_channels=channels, size=(size, size),
                                  kind="static", frames=None, classes=tuple(classes)))

