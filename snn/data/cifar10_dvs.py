"""CIFAR10-DVS (Li et al. 2017) from its per-class AER-DAT 2.0 files, as cached event frames
(docs/design.md, "CIFAR10-DVS").

Layout: <dir>/<class>/cifar10_<class>_<i>.aedat for the ten CIFAR-10 classes. The dataset has no
official split: within each class the files are ordered by their index i, the first
floor(9 n / 10) of its n files train and the rest test (files 0-899 train and 900-999 test for the
full 1000 per class; fewer files scale the same way, so a class with n >= 1 files keeps >= 1 test file).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import re
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from ..files import WriteError, write_atomic
from .aedat import read_dvs128
from ..checks import integer as check_int
from .errors import DatasetCorrupt, DatasetNotFound
from .frames import RESIZES, FlipRoll, events_to_frames
from .info import DatasetInfo, Parts

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CACHE_VERSION = 2  # bump when the frames for the same parameters change (decoding, slicing, resize)
_INDEX = re.compile(r"_(\d+)\.aedat$")


def find_cifar10_dvs(root: Path) -> Path:
    """The dataset directory: root/cifar10-dvs when it holds the ten class folders, else root itself."""
    for candidate in (root / "cifar10-dvs", root):
        if all((candidate / c).is_dir() for c in CLASSES):
            return candidate
    raise DatasetNotFound(
        f"cifar10-dvs: looked for the class folders {', '.join(CLASSES)} in {root / 'cifar10-dvs'} and in "
        f"{root}; CIFAR10-DVS has no automatic download: get the ten per-class zips (airplane.zip ... "
        f"truck.zip) of 'CIFAR10-DVS' (Li et al. 2017) from figshare and extract them into "
        f"{root / 'cifar10-dvs'}, so that {root / 'cifar10-dvs' / 'airplane' / 'cifar10_airplane_0.aedat'} exists")


def class_files(folder: Path, misnamed: Optional[list[str]] = None) -> list[Path]:
    """The .aedat files of one class folder, ordered by their trailing index _<i>.aedat.

    A .aedat file without that index raises DatasetCorrupt, or, when a `misnamed` list is given
    (the dataset check, which lists every bad file), is skipped with its message appended there."""
    indexed = []
    for path in folder.iterdir():
        if path.suffix != ".aedat":
            continue
        match = _INDEX.search(path.name)
        if match is None:
            message = f"{path}: expected a name ending in _<index>.aedat, as cifar10_<class>_<i>.aedat"
            if misnamed is None:
                raise DatasetCorrupt(message)
            misnamed.append(message)
            continue
        indexed.append((int(match.group(1)), path))
    return [path for _, path in sorted(indexed)]


def split_files(folder: Path, misnamed: Optional[list[str]] = None) -> tuple[list[tuple[Path, int]],
                                                                             list[tuple[Path, int]]]:
    """(train, test) lists of (file, label): per class the first floor(9 n / 10) files by index train.
    misnamed: see class_files."""
    train, test = [], []
    empty = []
    for label, name in enumerate(CLASSES):
        files = class_files(folder / name, misnamed)
        if not files:
            empty.append(name)
        n_train = 9 * len(files) // 10
        train += [(f, label) for f in files[:n_train]]
        test += [(f, label) for f in files[n_train:]]
    if empty:
        raise DatasetNotFound(f"cifar10-dvs: no cifar10_<class>_<i>.aedat files in {folder} for the classes "
                              f"{', '.join(empty)}; extract the dataset's per-class zips there")
    return train, test


def load_events(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel events (x, y, p) of one CIFAR10-DVS file (aedat.read_dvs128), each [N] int64, N >= 1.

    Raises DatasetCorrupt naming the file when read_dvs128 rejects it or it holds no pixel event
    (every recording of the release has many; an empty one is cut off or not a recording).
    """
    x, y, p, _ = read_dvs128(path)
    if x.size == 0:
        raise DatasetCorrupt(f"{path}: no pixel events after the header: the file is truncated or empty")
    return x, y, p


class CacheRefused:
    """Whether a frame cache folder refused a write, shared by the process that builds the datasets
    and every data-loader worker it starts (forked or spawned: multiprocessing shared memory), so
    that the run warns once and no worker tries the folder again. `first()` is True for the one
    caller that records the refusal. Pickled other than to start a process (copy.deepcopy, ...),
    it becomes an unshared copy of the current value."""

    def __init__(self, refused: bool = False):
        # a named semaphore (spawn context's) reaches forked, spawned and forkserver workers alike
        self._value = multiprocessing.get_context("spawn").Value("b", refused)

    def __bool__(self) -> bool:
        return bool(self._value.value)

    def first(self) -> bool:
        with self._value.get_lock():
            if self._value.value:
                return False
            self._value.value = True
            return True

    def __reduce__(self):
        if multiprocessing.context.get_spawning_popen() is not None:
            return _shared_refusal, (self._value,)
        return CacheRefused, (bool(self),)


def _shared_refusal(value) -> CacheRefused:
    refusal = CacheRefused.__new__(CacheRefused)
    refusal._value = value
    return refusal


class EventFrames(Dataset):
    """(frames [frames, 2, size, size] float32, label) per event file, computed once and cached.

    The cache holds one .pt per file at cache_dir/<class>/<file stem>.pt, written atomically
    (snn.files.write_atomic), so concurrent loader workers or ranks never read a partial file.
    A cache file that cannot be read, or holds anything but a float32 [frames, 2, size, size] tensor,
    is rebuilt from its .aedat file with a warning naming both. The cache is optional: when it cannot
    be written (read-only, full disk) one warning says so and the frames are computed without it
    (cache_dir None: no cache at all); datasets sharing a cache folder share its `refused` flag, so
    that the train and test sets and all their loader workers warn once. Raises DatasetCorrupt naming
    the .aedat file when that file is bad (see load_events).
    """

    def __init__(self, files: list[tuple[Path, int]], frames: int, size: int, cache_dir: Optional[Path],
                 resize: str = "bilinear", refused: Optional[CacheRefused] = None):
        self.files = files
        self.frames = frames
        self.size = size
        self.cache_dir = cache_dir
        self.resize = resize
        self.refused = CacheRefused() if refused is None else refused

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        path, label = self.files[i]
        if self.cache_dir is None or self.refused:
            return events_to_frames(*load_events(path), frames=self.frames, size=self.size, resize=self.resize), label
        cached = self.cache_dir / CLASSES[label] / (path.stem + ".pt")
        if cached.is_file():
            frames = self._load_cached(cached, path)
            if frames is not None:
                return frames, label
        frames = events_to_frames(*load_events(path), frames=self.frames, size=self.size, resize=self.resize)
        try:
            write_atomic(cached, lambda f: torch.save(frames, f), fsync=False)  # a cache: losing it costs time only
        except WriteError as e:
            if self.refused.first():
                warnings.warn(f"cifar10-dvs: the frame cache {self.cache_dir} cannot be written ({e}); going on "
                              f"without it (frames are computed on every read); pass the data option cache_dir=DIR "
                              f"with a writable DIR to cache them", stacklevel=2)
        return frames, label

    def _load_cached(self, cached: Path, source: Path) -> Optional[torch.Tensor]:
        """The cached frames, or None (after a warning) when the cache file is unreadable or wrong."""
        shape = (self.frames, 2, self.size, self.size)
        try:
            frames = torch.load(cached, weights_only=True)
        except Exception as e:  # torch.load raises RuntimeError, EOFError, UnpicklingError, ... on a bad file
            problem = f"cannot be read ({type(e).__name__}: {e})"
        else:
            if isinstance(frames, torch.Tensor) and frames.dtype == torch.float32 and tuple(frames.shape) == shape:
                return frames
            got = (f"a {frames.dtype} tensor of shape {tuple(frames.shape)}" if isinstance(frames, torch.Tensor)
                   else f"a {type(frames).__name__}")
            problem = f"holds {got}, not float32 frames of shape {shape}"
        warnings.warn(f"frame cache {cached} {problem}; rebuilding it from {source}", stacklevel=2)
        return None


def cache_key(frames: int, size: int, resize: str = "bilinear") -> str:
    """Cache folder name for one set of preprocessing parameters."""
    return f"frames{frames}_count_{size}px_{resize}_v{CACHE_VERSION}"


def check_cifar10_dvs(name: str, root: Path) -> tuple[int, list[str]]:
    """Read every .aedat file of the dataset once: (files checked, one message per bad file, by class and index)."""
    folder = find_cifar10_dvs(root)
    bad: list[str] = []  # misnamed files first, then the unreadable ones by class and index
    train, test = split_files(folder, bad)
    checked = len(bad) + len(train) + len(test)
    for path, _ in sorted(train + test, key=lambda file_label: file_label[1]):  # stable: index order per class
        try:
            load_events(path)
        except DatasetCorrupt as e:
            bad.append(str(e))
    return checked, bad


def build_cifar10_dvs(name: str, root: Path, download: bool, *, frames: int, size: int = 48,
                      max_roll: int = 5, cache_dir: Optional[str] = None, resize: str = "bilinear") -> Parts:
    """CIFAR10-DVS as frames [frames, 2, size, size] of per-polarity event counts.

    Each file's events (in file order, which is time order) are cut into `frames` slices of equal
    event count, counted per polarity on the 128 x 128 sensor and resized to size x size.
    resize: how, one of frames.RESIZES (see frames.resize_counts): 'bilinear' (antialiased, on the
    counts; the default), 'nearest', or 'tet-pil' (TET's 8-bit PIL path).
    Train augmentation: FlipRoll(max_roll). cache_dir: where the frames are cached (default
    <dataset dir>/frames_cache); a sub-folder named by cache_key(frames, size, resize) keeps settings apart.
    download: no automatic download exists; a missing copy raises DatasetNotFound either way.
    """
    check_int("frames", frames, 1)
    check_int("size", size, 1)
    if resize not in RESIZES:
        raise ValueError(f"resize must be one of {RESIZES}, got {resize!r}")
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(f"cache_dir must be a path (str or os.PathLike) or None, got {cache_dir!r}")
    folder = find_cifar10_dvs(root)
    train_files, test_files = split_files(folder)
    cache = Path(cache_dir) if cache_dir is not None else folder / "frames_cache"
    cache = cache / cache_key(frames, size, resize)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        warnings.warn(f"cifar10-dvs: cannot create the frame cache {cache} ({e.strerror or e}); going on without it "
                      f"(frames are computed on every read); pass the data option cache_dir=DIR with a writable DIR "
                      f"to cache them", stacklevel=2)
        cache = None
    refused = CacheRefused()  # one for the folder both sets share
    return Parts(
        train=EventFrames(train_files, frames, size, cache, resize, refused),
        test=EventFrames(test_files, frames, size, cache, resize, refused),
        train_targets=np.array([label for _, label in train_files], dtype=np.int64),
        test_targets=np.array([label for _, label in test_files], dtype=np.int64),
        train_transform=FlipRoll(max_roll),
        eval_transform=None,
        info=DatasetInfo(name=name, num_classes=len(CLASSES), in_channels=2, size=(size, size),
                         kind="events", frames=frames, classes=CLASSES),
    )
