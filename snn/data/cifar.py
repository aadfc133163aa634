"""CIFAR-10 / CIFAR-100 read from the official python pickles, in the folder layout torchvision uses.

The files are read here rather than through torchvision's dataset classes because those insist
on the official md5 sums at every construction; the md5 check is kept (verify=True, the default)
but separate, so that files in the same format that are not the official release (test fixtures,
re-packed copies) can be read with verify=False.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torchvision
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as tf
from torchvision.datasets.utils import check_integrity, download_and_extract_archive

from ..checks import boolean as check_bool
from .errors import DatasetCorrupt, DatasetNotFound
from .info import DatasetInfo, Parts

# name: (torchvision class holding the file list and md5 sums, label key, class-name key, mean, std);
# mean/std are the per-channel statistics of the training images scaled to [0, 1].
SPECS = {
    "cifar10": (torchvision.datasets.CIFAR10, "labels", "label_names",
                (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": (torchvision.datasets.CIFAR100, "fine_labels", "fine_label_names",
                 (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


class CIFARImages(Dataset):
    """images [N, 32, 32, 3] uint8 (HWC) and labels [N] int64; a sample is (PIL RGB image, label)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return Image.fromarray(self.images[i]), int(self.labels[i])


def _unpickle(path: Path) -> dict:
    # The official pickles were written by Python 2; latin1 maps their byte strings one-to-one.
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise DatasetCorrupt(f"{path} is not a CIFAR python pickle ({e})") from e
    if not isinstance(entry, dict):
        raise DatasetCorrupt(f"{path} holds a {type(entry).__name__}, expected the dict of a CIFAR pickle")
    return entry


def _read_batches(folder: Path, files: list[str], label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the batch files: images [N, 32, 32, 3] uint8, labels [N] int64."""
    images, labels = [], []
    for name in files:
        entry = _unpickle(folder / name)
        if "data" not in entry or label_key not in entry:
            raise DatasetCorrupt(f"{folder / name} lacks the 'data' or '{label_key}' entry of a CIFAR batch")
        data = np.asarray(entry["data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] != len(entry[label_key]):
            raise DatasetCorrupt(f"{folder / name}: 'data' must be [N, 3072] with one label per row, "
                                 f"got {data.shape} and {len(entry[label_key])} labels")
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(entry[label_key], dtype=np.int64))
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)


def _files(cls) -> list[tuple[str, str]]:
    return [(f, md5) for f, md5 in cls.train_list + cls.test_list] + [(cls.meta["filename"], cls.meta["md5"])]


def _intact(folder: Path, cls) -> bool:
    return all(check_integrity(str(folder / f), md5) for f, md5 in _files(cls))


def _fetch(name: str, root: Path, cls) -> None:
    try:
        download_and_extract_archive(cls.url, str(root), filename=cls.filename, md5=cls.tgz_md5)
    except (OSError, RuntimeError) as e:  # URLError is an OSError; a bad archive md5 is a RuntimeError
        raise DatasetNotFound(f"{name}: download of {cls.url} into {root} failed ({e}); "
                              f"download {cls.filename} elsewhere and extract it into {root}") from e


def build_cifar(name: str, root: Path, download: bool, *, verify: bool = True) -> Parts:
    """CIFAR-10/100 from root/cifar-10-batches-py or root/cifar-100-python.

    Samples are normalized float32 [3, 32, 32]; train: RandomCrop(32, padding=4) and a horizontal
    flip. verify: compare every file with the official md5 sums (DatasetCorrupt when one differs);
    verify=False unpickles the files unchecked, so use it only on files you trust.
    download: fetch and extract the official archive when the files are missing or not intact.
    """
    check_bool("verify", verify)
    cls, label_key, names_key, mean, std = SPECS[name]
    folder = root / cls.base_folder
    if download and not _intact(folder, cls):
        _fetch(name, root, cls)
    missing = [f for f, _ in _files(cls) if not (folder / f).is_file()]
    if missing:
        raise DatasetNotFound(f"{name}: looked in {folder} and found no {', '.join(missing)}; pass download=True "
                              f"(--download) to fetch {cls.filename} from {cls.url}, or extract it into {root}")
    if verify:
        for f, md5 in _files(cls):
            if not check_integrity(str(folder / f), md5):
                raise DatasetCorrupt(f"{name}: {folder / f} does not match the official md5 {md5}; delete "
                                     f"{folder} and pass download=True to fetch it again, or pass verify=False "
                                     f"to read files in this format that are not the official release")
    train = CIFARImages(*_read_batches(folder, [f for f, _ in cls.train_list], label_key))
    test = CIFARImages(*_read_batches(folder, [f for f, _ in cls.test_list], label_key))
    classes = tuple(_unpickle(folder / cls.meta["filename"]).get(names_key, ()))
    num_classes = len(classes)
    for split in (train, test):
        if split.labels.size and not 0 <= split.labels.min() <= split.labels.max() < num_classes:
            raise DatasetCorrupt(f"{name}: {folder / cls.meta['filename']} names {num_classes} classes "
                                 f"under '{names_key}' but a label lies outside [0, {num_classes})")
    normalize = [tf.ToTensor(), tf.Normalize(mean, std)]
    return Parts(
        train=train, test=test, train_targets=train.labels, test_targets=test.labels,
        train_transform=tf.Compose([tf.RandomCrop(32, padding=4), tf.RandomHorizontalFlip(), *normalize]),
        eval_transform=tf.Compose(normalize),
        info=DatasetInfo(name=name, num_classes=num_classes, in_channels=3, size=(32, 32), kind="static",
                         frames=None, classes=classes),
    )


def check_cifar(name: str, root: Path, *, verify: bool = True) -> tuple[int, list[str]]:
    """Read every file of the dataset once: (files checked, one message per bad file).

    A file is bad when missing, when it differs from the official md5 (verify=True), or when it is not
    a readable CIFAR pickle. Raises DatasetNotFound when none of the files is there.
    """
    check_bool("verify", verify)
    cls, label_key, _, _, _ = SPECS[name]
    folder = root / cls.base_folder
    files = _files(cls)
    if not any((folder / f).is_file() for f, _ in files):
        raise DatasetNotFound(f"{name}: looked in {folder} and found none of its files; pass --download to "
                              f"python -m snn.train to fetch {cls.filename} from {cls.url}, or extract it into {root}")
    batches = {f for f, _ in cls.train_list + cls.test_list}
    bad = []
    for f, md5 in files:
        path = folder / f
        try:
            if not path.is_file():
                raise DatasetCorrupt(f"{path} is missing")
            if verify and not check_integrity(str(path), md5):
                raise DatasetCorrupt(f"{path} does not match the official md5 {md5}")
            if f in batches:
                _read_batches(folder, [f], label_key)
            else:
                _unpickle(path)
        except DatasetCorrupt as e:
            bad.append(str(e))
    return len(files), bad


__all__ = ["build_cifar", "check_cifar", "CIFARImages", "SPECS"]
