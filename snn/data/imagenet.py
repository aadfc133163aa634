"""ImageNet (ILSVRC2012) in torchvision's ImageFolder layout: <dir>/train/<wnid>/*.JPEG, <dir>/val/<wnid>/*.JPEG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from torchvision import transforms as tf
from torchvision.datasets import ImageFolder

from ..checks import integer as check_int
from .errors import DatasetCorrupt, DatasetNotFound
from .info import DatasetInfo, Parts

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def find_imagenet(root: Path) -> Path:
    """The ImageNet directory: root/imagenet when it has train/ and val/, else root itself."""
    for candidate in (root / "imagenet", root):
        if (candidate / "train").is_dir() and (candidate / "val").is_dir():
            return candidate
    raise DatasetNotFound(
        f"imagenet: looked for train/ and val/ in {root / 'imagenet'} and in {root}; ImageNet cannot be "
        f"downloaded automatically: get ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from image-net.org "
        f"and extract them to {root / 'imagenet'}/train/<wnid>/*.JPEG and {root / 'imagenet'}/val/<wnid>/*.JPEG "
        f"(the validation images sorted into one folder per class)")


def load_rgb(path: str, dataset: str = "imagenet") -> Image.Image:
    """The image file at path as a decoded RGB PIL image (ImageFolder's loader); dataset: the
    name its error message starts with.

    Raises DatasetCorrupt naming the file when PIL cannot decode all of it (garbage bytes, a
    truncated JPEG: PIL's ImageFile.LOAD_TRUNCATED_IMAGES stays False, so nothing is padded).
    """
    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:  # what PIL raises on bad data
        raise DatasetCorrupt(f"{dataset}: {path} is not a readable image ({type(e).__name__}: {e}); "
                             f"replace it with the original file or delete it") from e


def _image_folders(folder: Path) -> tuple[ImageFolder, ImageFolder]:
    try:
        return (ImageFolder(str(folder / "train"), loader=load_rgb),
                ImageFolder(str(folder / "val"), loader=load_rgb))
    except FileNotFoundError as e:  # ImageFolder's message for an empty or class-less folder
        raise DatasetNotFound(f"imagenet: {e}") from e


def check_imagenet(name: str, root: Path) -> tuple[int, list[str]]:
    """Decode every image of train/ and val/ once: (files checked, one message per bad file)."""
    train, test = _image_folders(find_imagenet(root))
    bad = []
    for path, _ in train.samples + test.samples:
        try:
            load_rgb(path)
        except DatasetCorrupt as e:
            bad.append(str(e))
    return len(train.samples) + len(test.samples), bad


def build_imagenet(name: str, root: Path, download: bool, *, size: int = 224) -> Parts:
    """ImageNet: train RandomResizedCrop(size) + flip; eval Resize(size * 8 / 7) + CenterCrop(size).

    Samples are normalized float32 [3, size, size] (size 224: Resize(256) + CenterCrop(224)).
    download: ImageNet has no automatic download; a missing copy raises DatasetNotFound either way.
    Reading a sample whose file cannot be decoded raises DatasetCorrupt naming it (see load_rgb).
    """
    check_int("size", size, 1)
    folder = find_imagenet(root)
    train, test = _image_folders(folder)
    if train.classes != test.classes:
        raise DatasetCorrupt(f"imagenet: {folder / 'val'} has {len(test.classes)} class folders that differ "
                             f"from the {len(train.classes)} in {folder / 'train'}; sort the validation "
                             f"images into the same <wnid> folders as the training images")
    normalize = [tf.ToTensor(), tf.Normalize(MEAN, STD)]
    return Parts(
        train=train, test=test,
        train_targets=np.asarray(train.targets, dtype=np.int64),
        test_targets=np.asarray(test.targets, dtype=np.int64),
        train_transform=tf.Compose([tf.RandomResizedCrop(size), tf.RandomHorizontalFlip(), *normalize]),
        eval_transform=tf.Compose([tf.Resize(round(size * 8 / 7)), tf.CenterCrop(size), *normalize]),
        info=DatasetInfo(name=name, num_classes=len(train.classes), in_channels=3, size=(size, size),
                         kind="static", frames=None, classes=tuple(train.classes)),
    )
