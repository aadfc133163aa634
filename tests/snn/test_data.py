"""snn.data loaders on small files written here in the real formats (no download)."""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from snn.data import (DATASETS, DatasetCorrupt, DatasetNotFound, build_datasets, dataset_options, holdout_split,
                      make_loader)
from snn.data import cifar10_dvs
from snn.data.aedat import decode_dvs128, read_aedat, read_dvs128
from snn.data.scan import check_dataset
from snn.data.frames import FlipRoll, events_to_frames, slice_bounds

from ..conftest import save_onto_a_filling_disk

DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


# ---------------------------------------------------------------- writers of the real formats

def write_cifar(root: Path, hundred: bool, n: int = 6, seed: int = 0) -> dict:
    """The torchvision folder layout of the official python pickles; returns what was written."""
    rng = np.random.default_rng(seed)
    num_classes = 100 if hundred else 10
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    label_key = "fine_labels" if hundred else "labels"
    batches = ["train"] if hundred else [f"data_batch_{i}" for i in range(1, 6)]
    written = {}
    for name in batches + ["test" if hundred else "test_batch"]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = rng.integers(0, num_classes, size=n).tolist()
        entry = {"batch_label": name, "data": data, label_key: labels, "filenames": [f"{i}.png" for i in range(n)]}
        if hundred:
            entry["coarse_labels"] = [lab // 5 for lab in labels]
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
        written[name] = (data, labels)
    if hundred:
        meta_name, meta = "meta", {"fine_label_names": [f"fine{i}" for i in range(100)],
                                   "coarse_label_names": [f"coarse{i}" for i in range(20)]}
    else:
        meta_name, meta = "batches.meta", {"label_names": list(DVS_CLASSES), "num_cases_per_batch": n,
                                           "num_vis": 3072}
    with open(folder / meta_name, "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return written


def write_image_tree(folder: Path, classes: list[str], per_class: int = 3) -> None:
    """ImageFolder layout: folder/<class>/<i>.JPEG (and a .png), small RGB images of odd sizes."""
    rng = np.random.default_rng(1)
    for c in classes:
        (folder / c).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(11 + i, 9 + 2 * i, 3), dtype=np.uint8)
            ext, fmt = (".JPEG", "JPEG") if i % 2 == 0 else (".png", "PNG")
            Image.fromarray(pixels).save(folder / c / f"{c}_{i}{ext}", fmt)


def write_aedat(path: Path, x, y, p, t=None) -> None:
    """AER-DAT 2.0 with the DVS128 address of SpikingJelly's CIFAR10-DVS reader, the inverse of
    x = 127 - bits 8-14, y = 127 - bits 1-7, p = 1 - bit 0."""
    x, y, p = (np.asarray(a, dtype=np.uint32) for a in (x, y, p))
    t = np.arange(len(x), dtype=np.uint32) * 7 if t is None else np.asarray(t, dtype=np.uint32)
    addr = ((127 - x) << 8) | ((127 - y) << 1) | (1 - p)
    header = b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n# Data format is int32 address, " \
             b"int32 timestamp (8 bytes total)\r\n# Timestamps tick is 1 us\r\n"
    path.write_bytes(header + np.stack([addr, t], axis=1).astype(">u4").tobytes())


def half_up(v: float) -> int:
    """The hold-out count rule floor(v + 1/2)."""
    return math.floor(v + 0.5)


def random_events(rng, n):
    return rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)


def write_dvs_tree(folder: Path, files_per_class) -> None:
    """One folder per class; file cifar10_<class>_<k>.aedat holds k + 3 random events."""
    rng = np.random.default_rng(2)
    for c, n_files in zip(DVS_CLASSES, files_per_class):
        (folder / c).mkdir(parents=True)
        for k in range(n_files):
            write_aedat(folder / c / f"cifar10_{c}_{k}.aedat", *random_events(rng, k + 3))


# ---------------------------------------------------------------- the hold-out split

def test_holdout_split_is_stratified_disjoint_and_seeded():
    targets = np.repeat(np.arange(3), [10, 21, 7])
    kept, held = holdout_split(targets, 0.2, seed=3)
    assert np.intersect1d(kept, held).size == 0
    np.testing.assert_array_equal(np.union1d(kept, held), np.arange(targets.size))
    assert np.bincount(targets[held], minlength=3).tolist() == [2, 4, 1]  # floor(0.2 n + 1/2) per class
    again = holdout_split(targets, 0.2, seed=3)
    np.testing.assert_array_equal(held, again[1])
    assert not np.array_equal(held, holdout_split(targets, 0.2, seed=4)[1])
    assert holdout_split(targets, 0.0, seed=0)[1].size == 0
    halves = np.repeat(np.arange(2), [5, 25])  # 0.5 and 2.5 round half up, to 1 and 3
    assert np.bincount(halves[holdout_split(halves, 0.1, seed=0)[1]]).tolist() == [1, 3]


@pytest.mark.parametrize("fraction, error", [(1.0, ValueError), (-0.1, ValueError), ("0.1", TypeError)])
def test_holdout_split_rejects_bad_fraction(fraction, error):
    with pytest.raises(error, match="fraction"):
        holdout_split(np.zeros(4, dtype=np.int64), fraction, seed=0)


# ---------------------------------------------------------------- CIFAR

CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def normalized(row: np.ndarray, mean, std) -> torch.Tensor:
    """A pickle row [3072] (1024 R, 1024 G, 1024 B, each row-major) as the expected input [3, 32, 32]."""
    img = torch.from_numpy(row.reshape(3, 32, 32).astype(np.float32) / 255.0)
    return (img - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def test_cifar10_reads_the_official_pickle_layout(tmp_path):
    written = write_cifar(tmp_path, hundred=False)
    train, val, test, info = build_datasets("cifar10", root=tmp_path, val_fraction=0.2, seed=0, verify=False)
    assert (info.num_classes, info.in_channels, info.size, info.kind, info.frames) == (10, 3, (32, 32), "static", None)
    assert info.classes == DVS_CLASSES  # the names come from batches.meta
    assert len(train) + len(val) == 30 and len(test) == 6
    data, labels = written["test_batch"]
    for i in range(6):
        x, y = test[i]
        assert y == labels[i]
        torch.testing.assert_close(x, normalized(data[i], CIFAR10_MEAN, CIFAR10_STD), atol=1e-6, rtol=0)
    all_train = np.concatenate([written[f"data_batch_{b}"][0] for b in range(1, 6)])
    all_labels = sum((written[f"data_batch_{b}"][1] for b in range(1, 6)), [])
    j = int(val.indices[0])
    x, y = val[0]  # validation samples are held-out training images, without augmentation
    assert y == all_labels[j]
    torch.testing.assert_close(x, normalized(all_train[j], CIFAR10_MEAN, CIFAR10_STD), atol=1e-6, rtol=0)
    x, y = train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == all_labels[int(train.indices[0])]


def test_cifar10_training_samples_are_cropped_and_flipped(tmp_path):
    written = write_cifar(tmp_path, hundred=False)
    train, _, _, _ = build_datasets("cifar10", root=tmp_path, val_fraction=0.0, verify=False)
    plain = normalized(written["data_batch_1"][0][0], CIFAR10_MEAN, CIFAR10_STD)
    torch.manual_seed(0)
    draws = [train[0][0] for _ in range(40)]
    assert any(not torch.equal(d, plain) for d in draws)
    # every draw is the image shifted by at most 4 pixels (zero padding, in raw pixel units) and maybe flipped
    pad = torch.nn.functional.pad(torch.from_numpy(written["data_batch_1"][0][0].reshape(3, 32, 32)).float(), (4,) * 4)
    for d in draws[:10]:
        raw = (d * torch.tensor(CIFAR10_STD).view(3, 1, 1) + torch.tensor(CIFAR10_MEAN).view(3, 1, 1)) * 255
        matches = [torch.allclose(raw, cand[:, i:i + 32, j:j + 32], atol=1e-3)
                   for cand in (pad, pad.flip(-1)) for i in range(9) for j in range(9)]
        assert any(matches)


def test_cifar_verify_checks_the_official_md5(tmp_path, monkeypatch):
    write_cifar(tmp_path, hundred=False)
    with pytest.raises(DatasetCorrupt, match=r"data_batch_1 does not match the official md5.*verify=False"):
        build_datasets("cifar10", root=tmp_path)
    # with these files' sums declared official, verify=True reads them; then one changed byte fails
    folder = tmp_path / "cifar-10-batches-py"
    md5 = {f.name: hashlib.md5(f.read_bytes()).hexdigest() for f in folder.iterdir()}
    cls = torchvision.datasets.CIFAR10
    monkeypatch.setattr(cls, "train_list", [[f, md5[f]] for f, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[f, md5[f]] for f, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5["batches.meta"]})
    assert len(build_datasets("cifar10", root=tmp_path)[2]) == 6
    blob = bytearray((folder / "test_batch").read_bytes())
    blob[-20] ^= 1
    (folder / "test_batch").write_bytes(bytes(blob))
    with pytest.raises(DatasetCorrupt, match="test_batch"):
        build_datasets("cifar10", root=tmp_path)


def test_cifar100_reads_fine_labels(tmp_path):
    written = write_cifar(tmp_path, hundred=True, n=8)
    train, val, test, info = build_datasets("cifar100", root=tmp_path, val_fraction=0.0, verify=False)
    assert val is None and len(train) == 8 and len(test) == 8
    assert info.num_classes == 100 and info.classes[:2] == ("fine0", "fine1")
    data, labels = written["test"]
    x, y = test[3]
    assert y == labels[3]
    torch.testing.assert_close(x, normalized(data[3], (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
                               atol=1e-6, rtol=0)


def test_cifar_missing_files_say_where_and_how(tmp_path):
    with pytest.raises(DatasetNotFound, match=r"cifar-10-batches-py.*data_batch_1.*download=True"):
        build_datasets("cifar10", root=tmp_path)
    write_cifar(tmp_path, hundred=True)
    (tmp_path / "cifar-100-python" / "meta").unlink()
    with pytest.raises(DatasetNotFound, match=r"found no meta"):
        build_datasets("cifar100", root=tmp_path, verify=False)


def test_cifar_rejects_a_malformed_pickle(tmp_path):
    write_cifar(tmp_path, hundred=False)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DatasetCorrupt, match="data_batch_3"):
        build_datasets("cifar10", root=tmp_path, verify=False)


# ---------------------------------------------------------------- ImageNet (ImageFolder)

def test_imagenet_imagefolder_layout(tmp_path):
    classes = ["n01440764", "n01443537", "n01484850"]
    write_image_tree(tmp_path / "imagenet" / "train", classes, per_class=4)
    write_image_tree(tmp_path / "imagenet" / "val", classes, per_class=2)
    train, val, test, info = build_datasets("imagenet", root=tmp_path, val_fraction=0.25, seed=1)
    assert info.classes == tuple(classes) and info.num_classes == 3 and info.size == (224, 224)
    assert len(train) == 9 and len(val) == 3 and len(test) == 6
    assert np.bincount(val.targets, minlength=3).tolist() == [1, 1, 1]
    x, y = test[5]
    assert x.shape == (3, 224, 224) and y == 2
    torch.testing.assert_close(val[0][0], val[0][0])  # evaluation transform: deterministic
    assert train[0][0].shape == (3, 224, 224)
    # the dataset directory may also be the root itself, and the crop size is an option
    _, _, test, info = build_datasets("imagenet", root=tmp_path / "imagenet", size=32)
    assert test[0][0].shape == (3, 32, 32) and info.size == (32, 32)


def test_imagenet_class_mismatch_and_missing(tmp_path):
    with pytest.raises(DatasetNotFound, match=r"imagenet.*image-net\.org"):
        build_datasets("imagenet", root=tmp_path)
    write_image_tree(tmp_path / "train", ["a", "b"])
    write_image_tree(tmp_path / "val", ["a", "c"])
    with pytest.raises(DatasetCorrupt, match="differ"):
        build_datasets("imagenet", root=tmp_path)


# ---------------------------------------------------------------- CIFAR10-DVS: format and frames

def test_read_aedat_returns_the_records_and_decodes_addresses(tmp_path):
    path = tmp_path / "a.aedat"
    write_aedat(path, [0, 5, 127], [0, 9, 127], [0, 1, 1], t=[10, 20, 4_000_000_000])
    addr, t = read_aedat(path)
    assert t.tolist() == [10, 20, 4_000_000_000]
    assert addr.tolist() == [(127 << 8) | (127 << 1) | 1, (122 << 8) | (118 << 1), 0]
    x, y, p = decode_dvs128(addr)
    assert (x.tolist(), y.tolist(), p.tolist()) == ([0, 5, 127], [0, 9, 127], [0, 1, 1])
    # the raw bits, independently of write_aedat: bits 8-14 -> x = 127 - field, bits 1-7 -> y, bit 0 -> 1 - p
    x, y, p = decode_dvs128(np.array([(3 << 8) | (100 << 1) | 1], dtype=np.uint32))
    assert (x[0], y[0], p[0]) == (124, 27, 0)


def test_read_aedat_rejects_other_formats(tmp_path):
    path = tmp_path / "v3.aedat"
    path.write_bytes(b"#!AER-DAT3.1\r\n" + bytes(16))
    with pytest.raises(DatasetCorrupt, match="v3.aedat: unsupported version AER-DAT 3.1"):
        read_aedat(path)
    path.write_bytes(bytes(16))
    with pytest.raises(DatasetCorrupt, match="unsupported file: its header has no '#!AER-DAT' version line"):
        read_aedat(path)
    path.write_bytes(b"#!AER-DAT2.0\r\n" + bytes(12))
    with pytest.raises(DatasetCorrupt, match="multiple of the 8-byte.*truncated"):
        read_aedat(path)
    path.write_bytes(b"#!AER-DAT2.0\r\n# This is a raw AE da")  # cut inside the header
    with pytest.raises(DatasetCorrupt, match="no end of line: the file is truncated"):
        read_aedat(path)


def test_slice_bounds_equal_event_count():
    assert slice_bounds(23, 5).tolist() == [0, 4, 8, 12, 16, 23]  # the last slice takes the remainder
    assert slice_bounds(3, 5).tolist() == [0, 0, 0, 0, 0, 3]
    assert slice_bounds(0, 2).tolist() == [0, 0, 0]


def test_frames_count_each_polarity_per_equal_count_slice():
    rng = np.random.default_rng(5)
    n, frames = 1003, 10
    x, y, p = random_events(rng, n)
    out = events_to_frames(x, y, p, frames=frames, size=128)
    assert out.shape == (10, 2, 128, 128) and out.dtype == torch.float32
    expected = np.zeros((frames, 2, 128, 128), dtype=np.float32)
    for k in range(n):
        expected[min(k // (n // frames), frames - 1), p[k], y[k], x[k]] += 1
    np.testing.assert_array_equal(out.numpy(), expected)
    sizes = out.sum(dim=(1, 2, 3))
    assert sizes.tolist() == [100] * 9 + [103]
    for c in (0, 1):
        assert out[:, c].sum().item() == (p == c).sum()


def test_resize_to_48_keeps_a_constant_frame():
    xs, ys = np.meshgrid(np.arange(128), np.arange(128))
    x, y = np.tile(xs.ravel(), 2), np.tile(ys.ravel(), 2)  # every pixel once per frame, polarity 0
    out = events_to_frames(x, y, np.zeros_like(x), frames=2, size=48)
    assert out.shape == (2, 2, 48, 48)
    torch.testing.assert_close(out[:, 0], torch.ones(2, 48, 48))
    assert out[:, 1].abs().max() == 0


def test_flip_roll_is_a_flip_and_a_roll_of_at_most_max_roll():
    frames = torch.arange(3 * 2 * 16 * 16, dtype=torch.float32).view(3, 2, 16, 16)
    aug = FlipRoll(5)
    torch.manual_seed(0)
    seen = set()
    for _ in range(300):
        out = aug(frames)
        hits = [(f, dy, dx) for f in (False, True) for dy in range(-5, 6) for dx in range(-5, 6)
                if torch.equal(out, torch.roll(frames.flip(-1) if f else frames, (dy, dx), (-2, -1)))]
        assert len(hits) == 1
        seen.add(hits[0])
    assert {f for f, _, _ in seen} == {False, True}
    assert {dy for _, dy, _ in seen} == set(range(-5, 6)) and {dx for _, _, dx in seen} == set(range(-5, 6))
    with pytest.raises(ValueError, match="max_roll"):
        FlipRoll(-1)


# ---------------------------------------------------------------- CIFAR10-DVS: the dataset

FILES_PER_CLASS = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]


@pytest.fixture
def dvs_root(tmp_path):
    write_dvs_tree(tmp_path / "cifar10-dvs", FILES_PER_CLASS)
    return tmp_path


def test_cifar10_dvs_split_shapes_and_counts(dvs_root, tmp_path):
    train, val, test, info = build_datasets("cifar10-dvs", root=dvs_root, T=4, val_fraction=0.0, size=128,
                                            cache_dir=tmp_path / "cache")
    assert val is None
    assert (info.kind, info.frames, info.in_channels, info.size, info.classes) == ("events", 4, 2, (128, 128),
                                                                                   DVS_CLASSES)
    n_train = [9 * n // 10 for n in FILES_PER_CLASS]
    assert len(train) == sum(n_train) and len(test) == sum(FILES_PER_CLASS) - sum(n_train)
    assert np.bincount(test.targets).tolist() == [n - t for n, t in zip(FILES_PER_CLASS, n_train)]
    # file k holds k + 3 events: the test set is the highest indices of each class, in numeric order
    # (class 1 has files 0-10: 9 and 10 test, although '10' sorts before '9' as text)
    got = {}
    for i in range(len(test)):
        x, y = test[i]
        assert x.shape == (4, 2, 128, 128)
        got.setdefault(y, []).append(int(x.sum().item()) - 3)
    assert got == {c: list(range(t, n)) for c, (n, t) in enumerate(zip(FILES_PER_CLASS, n_train))}
    # per-polarity totals match the file
    path = dvs_root / "cifar10-dvs" / "automobile" / "cifar10_automobile_10.aedat"
    _, _, p, _ = read_dvs128(path)
    x, y = test[int(np.flatnonzero(test.targets == 1)[1])]
    assert [x[:, c].sum().item() for c in (0, 1)] == [(p == 0).sum(), (p == 1).sum()]


def test_cifar10_dvs_default_frames_size_and_augmentation(dvs_root):
    train, val, test, info = build_datasets("cifar10-dvs", root=dvs_root / "cifar10-dvs", val_fraction=0.2, seed=0)
    assert info.frames == 10 and info.size == (48, 48)
    assert test[0][0].shape == (10, 2, 48, 48)
    assert np.bincount(val.targets).tolist() == [half_up(0.2 * (9 * n // 10)) for n in FILES_PER_CLASS]
    cached = val.base[int(val.indices[0])][0]
    torch.testing.assert_close(val[0][0], cached)  # no augmentation outside training
    torch.manual_seed(1)
    j = int(train.indices[-1])
    assert any(not torch.equal(train[len(train) - 1][0], train.base[j][0]) for _ in range(10))
    assert (dvs_root / "cifar10-dvs" / "frames_cache" / "frames10_count_48px_bilinear_v2").is_dir()


def test_cifar10_dvs_reuses_the_cache(dvs_root, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    _, _, test, _ = build_datasets("cifar10-dvs", root=dvs_root, T=3, cache_dir=cache)
    first = test[0][0]
    stored = list(cache.rglob("*.pt"))
    assert [f.relative_to(cache).as_posix() for f in stored] == [
        "frames3_count_48px_bilinear_v2/airplane/cifar10_airplane_9.pt"]
    assert not list(cache.rglob("*.tmp"))

    def no_reading(path):
        raise AssertionError(f"read {path} although its frames are cached")

    monkeypatch.setattr(cifar10_dvs, "read_dvs128", no_reading)
    _, _, test, _ = build_datasets("cifar10-dvs", root=dvs_root, T=3, cache_dir=cache)
    assert torch.equal(test[0][0], first)
    # other preprocessing parameters use another cache folder, so the file is read again
    _, _, test, _ = build_datasets("cifar10-dvs", root=dvs_root, T=2, cache_dir=cache)
    with pytest.raises(AssertionError, match="although its frames are cached"):
        test[0]


def test_an_unwritable_frame_cache_folder_means_no_cache_with_one_warning(dvs_root, tmp_path):
    """cache_dir under a regular file (as a read-only mount would refuse it): the set builds with one
    warning and its frames are those computed without a cache."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.warns(UserWarning, match="cannot create the frame cache.*going on without it"):
        _, _, test, _ = build_datasets("cifar10-dvs", root=dvs_root, T=3, cache_dir=blocker / "cache")
    _, _, reference, _ = build_datasets("cifar10-dvs", root=dvs_root, T=3, cache_dir=tmp_path / "cache")
    assert torch.equal(test[0][0], reference[0][0])


def test_a_full_disk_under_the_frame_cache_warns_once_and_goes_on(dvs_root, tmp_path, monkeypatch):
    """Writing a cache file fails mid-epoch (ENOSPC): one warning, one write tried (the folder is
    not tried again), every sample still read, the frames equal to a working cache's, no temporary
    file left."""
    cache = tmp_path / "cache"
    _, _, reference, _ = build_datasets("cifar10-dvs", root=dvs_root, T=3, cache_dir=tmp_path / "good")
    expected = [reference[i][0] for i in range(len(reference))]
    _, _, test, _ = build_datasets("cifar10-dvs", root=dvs_root, T=3, cache_dir=cache)
    filling, tries = save_onto_a_filling_disk(room=100), []

    def full_disk(obj, f, *args, **kwargs):
        tries.append(f)
        return filling(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = [test[i][0] for i in range(len(test))]
    assert len(expected) >= 2 and all(torch.equal(a, b) for a, b in zip(got, expected))
    assert len(tries) == 1
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "No space left on device" in messages[0] and "going on without it" in messages[0]
    assert not list(cache.rglob("*.pt")) and not list(cache.rglob("*.tmp"))


def test_cifar10_dvs_missing_or_incomplete(tmp_path):
    with pytest.raises(DatasetNotFound, match=r"cifar10-dvs.*airplane.*figshare"):
        build_datasets("cifar10-dvs", root=tmp_path)
    write_dvs_tree(tmp_path, [2] * 9 + [0])
    with pytest.raises(DatasetNotFound, match=r"for the classes truck"):
        build_datasets("cifar10-dvs", root=tmp_path)
    with pytest.raises(TypeError, match="set the number of frames with T"):
        build_datasets("cifar10-dvs", root=tmp_path, frames=10)


# ---------------------------------------------------------------- digits and synthetic

def test_digits_shapes_classes_and_fixed_split():
    train, val, test, info = build_datasets("digits", val_fraction=0.1, seed=0)
    assert (info.num_classes, info.in_channels, info.size, info.kind) == (10, 1, (32, 32), "static")
    assert len(train) + len(val) + len(test) == 1797
    per_class = np.bincount(np.concatenate([train.targets, val.targets, test.targets]))
    assert np.bincount(test.targets).tolist() == [half_up(0.2 * n) for n in per_class]
    x, y = train[0]
    assert x.shape == (1, 32, 32) and x.dtype == torch.float32 and 0 <= y < 10
    pixels = torch.stack([train[i][0] for i in range(len(train))])
    assert abs(pixels.mean().item()) < 0.1 and abs(pixels.std().item() - 1) < 0.1
    train2, val2, test2, _ = build_datasets("digits", val_fraction=0.1, seed=1, size=16)
    assert test2[0][0].shape == (1, 16, 16)
    np.testing.assert_array_equal(test.targets, test2.targets)  # the test split ignores the seed
    assert not np.array_equal(val.indices, val2.indices)
    _, val3, _, _ = build_datasets("digits", val_fraction=0.1, seed=0, size=8)
    np.testing.assert_array_equal(val.indices, val3.indices)


def nearest_mean_accuracy(train, test) -> float:
    xs = torch.stack([train[i][0] for i in range(len(train))]).flatten(1)
    ys = torch.tensor([train[i][1] for i in range(len(train))])
    means = torch.stack([xs[ys == c].mean(0) for c in range(int(ys.max()) + 1)])
    xt = torch.stack([test[i][0] for i in range(len(test))]).flatten(1)
    yt = torch.tensor([test[i][1] for i in range(len(test))])
    return (torch.cdist(xt, means).argmin(1) == yt).float().mean().item()


def test_digits_and_synthetic_are_learnable():
    train, _, test, _ = build_datasets("digits", size=8)
    assert nearest_mean_accuracy(train, test) > 0.85
    train, _, test, info = build_datasets("synthetic", num_classes=5, size=6, channels=2)
    assert info.num_classes == 5 and test[0][0].shape == (2, 6, 6)
    assert nearest_mean_accuracy(train, test) > 0.95
    again = build_datasets("synthetic", num_classes=5, size=6, channels=2)[2]
    assert torch.equal(again[7][0], test[7][0])


# ---------------------------------------------------------------- entry point and loaders

def test_build_datasets_rejects_bad_arguments(tmp_path):
    assert set(DATASETS) == {"cifar10", "cifar100", "imagenet", "cifar10-dvs", "digits", "synthetic", "folder"}
    with pytest.raises(ValueError, match="name must be one of"):
        build_datasets("mnist")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['sise'\]; it accepts \['size'\]"):
        build_datasets("digits", sise=16)
    with pytest.raises(ValueError, match="T must be an int >= 1"):
        build_datasets("digits", T=0)
    with pytest.raises(TypeError, match="root must be a path"):
        build_datasets("cifar10", root=3)
    with pytest.raises(ValueError, match="val_fraction"):
        build_datasets("digits", val_fraction=1.0)
    with pytest.raises(TypeError, match="size must be an int"):
        build_datasets("digits", size=16.0)
    assert dataset_options("cifar10-dvs") == ("size", "max_roll", "cache_dir", "resize")


def test_make_loader_batches_and_orders():
    train, _, test, _ = build_datasets("synthetic")
    xb, yb = next(iter(make_loader(test, 5, train=False)))
    assert xb.shape == (5, 3, 8, 8) and yb.dtype == torch.int64
    assert yb.tolist() == test.targets[:5].tolist()
    order = [make_loader(train, 200, train=True, generator=torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    labels = [next(iter(loader))[1] for loader in order]
    assert torch.equal(labels[0], labels[1]) and not torch.equal(labels[0], labels[2])
    sampler = torch.utils.data.SequentialSampler(train)
    assert next(iter(make_loader(train, 4, train=True, sampler=sampler)))[1].tolist() == train.targets[:4].tolist()
    with pytest.raises(ValueError, match="batch_size"):
        make_loader(train, 0, train=True)


# ---------------------------------------------------------------- AER-DAT files from other cameras

DVS_HEADER = (b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n# Data format is int32 address, "
              b"int32 timestamp (8 bytes total), repeated for each event\r\n# Timestamps tick is 1 us\r\n")


def write_raw_aedat(path: Path, addresses, header: bytes = DVS_HEADER) -> None:
    """AER-DAT 2.0 records (big-endian uint32 address, uint32 timestamp) with these exact addresses."""
    addr = np.asarray(addresses, dtype=np.uint32)
    t = np.arange(len(addr), dtype=np.uint32) * 10 + 100
    path.write_bytes(header + np.stack([addr, t], axis=1).astype(">u4").tobytes())


def first_test_file(root: Path) -> Path:
    """The file that test[0] reads in a write_dvs_tree(FILES_PER_CLASS) tree: airplane's highest index."""
    return root / "cifar10-dvs" / "airplane" / "cifar10_airplane_9.aedat"


def test_davis_header_is_rejected_with_file_and_chip(dvs_root, tmp_path):
    davis = first_test_file(dvs_root)
    header = DVS_HEADER + b"# AEChip: eu.seebetter.ini.chips.davis.DAVIS240C\r\n"
    write_raw_aedat(davis, [(3 << 8) | (100 << 1), 5 << 1], header)  # addresses that would decode as DVS128
    _, _, test, _ = build_datasets("cifar10-dvs", root=dvs_root, T=2, cache_dir=tmp_path / "cache")
    with pytest.raises(DatasetCorrupt, match=rf"{davis}: recorded with the chip 'DAVIS240C'.*not a DVS128"):
        test[0]
    # the DVS128's own AEChip line (jAER's class name) is accepted
    write_raw_aedat(davis, [(3 << 8) | (100 << 1)], DVS_HEADER + b"# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n")
    x, y, p, t = read_dvs128(davis)
    assert (x.tolist(), y.tolist(), p.tolist(), t.tolist()) == ([124], [27], [1], [100])


def test_addresses_wider_than_dvs128_are_rejected(dvs_root, tmp_path):
    davis = first_test_file(dvs_root)
    write_raw_aedat(davis, [(3 << 8) | (100 << 1), 0x190C8800, 0x190C8801])  # no AEChip line
    _, _, test, _ = build_datasets("cifar10-dvs", root=dvs_root, T=2, cache_dir=tmp_path / "cache")
    with pytest.raises(DatasetCorrupt, match=rf"{davis}: event 1 has the address 0x190c8800.*16-bit DVS128 layout"
                                             rf".*2 such events; no AEChip header line"):
        test[0]


def test_special_events_are_dropped_not_put_on_a_pixel(dvs_root, tmp_path):
    # A: bits 8-14 = 3, bits 1-7 = 100, bit 0 = 1 -> x = 127 - 3 = 124, y = 127 - 100 = 27, p = 1 - 1 = 0;
    # B: address 0 -> x = 127, y = 127, p = 1; S1, S2: bit 15 set (special events, whatever the other bits)
    a, b, s1, s2 = (3 << 8) | (100 << 1) | 1, 0, 0x8000, 0x8000 | (5 << 8) | (6 << 1)
    path = first_test_file(dvs_root)
    write_raw_aedat(path, [a, s1, s2, b])
    x, y, p, t = read_dvs128(path)
    assert (x.tolist(), y.tolist(), p.tolist(), t.tolist()) == ([124, 127], [27, 127], [0, 1], [100, 130])
    _, _, test, _ = build_datasets("cifar10-dvs", root=dvs_root, T=2, size=128, cache_dir=tmp_path / "cache")
    frames = test[0][0]
    expected = torch.zeros(2, 2, 128, 128)
    expected[0, 0, 27, 124] = 1  # two pixel events, one per equal-count slice: A, then B
    expected[1, 1, 127, 127] = 1
    assert torch.equal(frames, expected)


def test_aer_dat_3_is_an_unsupported_version(dvs_root, tmp_path):
    path = first_test_file(dvs_root)
    path.write_bytes(b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n" + bytes(28 * 3))
    _, _, test, _ = build_datasets("cifar10-dvs", root=dvs_root, T=2, cache_dir=tmp_path / "cache")
    with pytest.raises(DatasetCorrupt, match=rf"{path}: unsupported version AER-DAT 3.1; only AER-DAT 2.0"):
        test[0]


# ---------------------------------------------------------------- corrupt files

def test_truncated_or_empty_aedat_names_the_file(dvs_root, tmp_path):
    path = first_test_file(dvs_root)
    _, _, test, _ = build_datasets("cifar10-dvs", root=dvs_root, T=2, cache_dir=tmp_path / "cache")
    path.write_bytes(path.read_bytes()[:-3])  # cut inside the last record
    with pytest.raises(DatasetCorrupt, match=rf"{path}: \d+ bytes of events .* the file is truncated"):
        test[0]
    path.write_bytes(DVS_HEADER)  # cut right after the header: no events
    with pytest.raises(DatasetCorrupt, match=rf"{path}: no pixel events after the header"):
        test[0]


def test_corrupt_frame_cache_is_rebuilt_from_its_source(dvs_root, tmp_path):
    cache = tmp_path / "cache"
    _, _, test, _ = build_datasets("cifar10-dvs", root=dvs_root, T=3, cache_dir=cache)
    fresh = test[0][0]
    (cached,) = cache.rglob("*.pt")
    blob = cached.read_bytes()
    source = first_test_file(dvs_root)
    for bad, problem in ((blob[:len(blob) // 2], "cannot be read"), (b"", "cannot be read"),
                         (None, r"holds a torch.float32 tensor of shape \(3,\)")):
        if bad is None:
            torch.save(torch.zeros(3), cached)
        else:
            cached.write_bytes(bad)
        with pytest.warns(UserWarning, match=rf"frame cache {cached} {problem}.*rebuilding it from {source}"):
            again = test[0][0]
        assert torch.equal(again, fresh)
        assert torch.equal(torch.load(cached, weights_only=True), fresh)  # the cache file is whole again


def write_jpeg(path: Path, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(64, 48, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", quality=90)


@pytest.fixture
def imagenet_root(tmp_path):
    write_image_tree(tmp_path / "imagenet" / "train", ["a", "b"], per_class=2)
    write_image_tree(tmp_path / "imagenet" / "val", ["a", "b"], per_class=1)
    return tmp_path


def test_truncated_or_garbage_jpeg_names_the_file(imagenet_root):
    truncated = imagenet_root / "imagenet" / "train" / "a" / "a_0.JPEG"
    write_jpeg(truncated, 0)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    garbage = imagenet_root / "imagenet" / "val" / "b" / "b_0.JPEG"
    garbage.write_bytes(np.random.default_rng(1).integers(0, 256, 700, dtype=np.uint8).tobytes())
    train, _, test, _ = build_datasets("imagenet", root=imagenet_root, val_fraction=0.0, size=16)
    with pytest.raises(DatasetCorrupt, match=rf"imagenet: {truncated} is not a readable image .*truncated"):
        train[0]
    with pytest.raises(DatasetCorrupt, match=rf"imagenet: {garbage} is not a readable image"):
        test[1]
    assert train[1][0].shape == test[0][0].shape == (3, 16, 16)  # the intact files still read


def test_a_corrupt_file_in_a_loader_worker_keeps_its_one_line_message(imagenet_root):
    garbage = imagenet_root / "imagenet" / "val" / "b" / "b_0.JPEG"
    garbage.write_bytes(b"not a JPEG")
    _, _, test, _ = build_datasets("imagenet", root=imagenet_root, val_fraction=0.0, size=16)
    with pytest.raises(DatasetCorrupt) as caught:
        list(make_loader(test, 2, train=False, workers=1))
    message = str(caught.value)
    assert message.startswith(f"imagenet: {garbage} is not a readable image") and "\n" not in message


def test_training_cli_exits_2_naming_a_corrupt_file(tmp_path, capsys):
    from snn.train import main

    write_dvs_tree(tmp_path / "dvs", [3] * 10)  # per class files 0, 1 train, 2 test
    bad = tmp_path / "dvs" / "dog" / "cifar10_dog_1.aedat"
    bad.write_bytes(bad.read_bytes()[:-5])
    argv = ["--dataset", "cifar10-dvs", "--data-root", str(tmp_path / "dvs"), "--T", "2", "--input-size", "16",
            "--width", "0.125", "--epochs", "1", "--batch-size", "8", "--val-fraction", "0", "--no-progress",
            "--data-option", f"cache_dir={tmp_path / 'cache'}", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}: ") and "truncated" in err and "\n" not in err and "Traceback" not in err


# ---------------------------------------------------------------- python -m snn.data check

def run_check(capsys, *argv) -> tuple[int, list[str], str]:
    from snn.data.__main__ import main

    code = main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_check_lists_every_bad_event_file(tmp_path, capsys):
    write_dvs_tree(tmp_path, [4] * 10)
    code, lines, err = run_check(capsys, "--dataset", "cifar10-dvs", "--data-root", str(tmp_path))
    assert (code, lines) == (0, []) and "0 bad of 40 files checked" in err
    folder = tmp_path
    truncated, davis, empty = (folder / c / f"cifar10_{c}_{k}.aedat" for c, k in (("cat", 0), ("frog", 3), ("ship", 2)))
    truncated.write_bytes(truncated.read_bytes()[:-1])
    write_raw_aedat(davis, [0x190C8800])
    empty.write_bytes(DVS_HEADER)
    code, lines, err = run_check(capsys, "--dataset", "cifar10-dvs", "--data-root", str(tmp_path))
    assert code == 2 and "3 bad of 40 files checked" in err
    assert [line.split(": ")[0] for line in lines] == [str(truncated), str(davis), str(empty)]  # split order
    misnamed = folder / "deer" / "notes.aedat"  # no _<index>: reported, and the other files still checked
    misnamed.write_bytes(DVS_HEADER)
    code, lines, err = run_check(capsys, "--dataset", "cifar10-dvs", "--data-root", str(tmp_path))
    assert code == 2 and "4 bad of 41 files checked" in err
    assert [line.split(": ")[0] for line in lines] == [str(misnamed), str(truncated), str(davis), str(empty)]


def test_check_lists_bad_images_and_pickles(imagenet_root, tmp_path, capsys):
    code, lines, _ = run_check(capsys, "--dataset", "imagenet", "--data-root", str(imagenet_root))
    assert (code, lines) == (0, [])
    garbage = imagenet_root / "imagenet" / "train" / "b" / "b_1.png"
    garbage.write_bytes(b"\x89PNG garbage")
    code, lines, err = run_check(capsys, "--dataset", "imagenet", "--data-root", str(imagenet_root))
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"imagenet: {garbage} is not a readable image")
    assert "1 bad of 6 files checked" in err
    write_cifar(tmp_path / "c", hundred=False)
    pickle_file = tmp_path / "c" / "cifar-10-batches-py" / "data_batch_2"
    pickle_file.write_bytes(pickle_file.read_bytes()[:100])
    code, lines, err = run_check(capsys, "--dataset", "cifar10", "--data-root", str(tmp_path / "c"), "--no-verify")
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"{pickle_file} is not a CIFAR python pickle")
    code, lines, _ = run_check(capsys, "--dataset", "cifar10", "--data-root", str(tmp_path / "c"))
    assert code == 2 and len(lines) == 7 and all("official md5" in line for line in lines if "data_batch_2" not in line)


def test_check_missing_dataset_and_fileless_datasets(tmp_path, capsys):
    code, lines, err = run_check(capsys, "--dataset", "cifar10-dvs", "--data-root", str(tmp_path))
    assert (code, lines) == (2, []) and err.startswith("error: cifar10-dvs: looked for the class folders")
    assert err.count("\n") == 1
    assert check_dataset("digits") == (0, [])


# ---------------------------------------------------------------- the 128 -> 48 resize

def random_counts(seed: int, n: int = 5000):
    rng = np.random.default_rng(seed)
    x, y, p = random_events(rng, n)
    return (x, y, p), events_to_frames(x, y, p, frames=2, size=128)


def test_bilinear_resize_is_antialiased_like_pil():
    events, counts = random_counts(7)
    out = events_to_frames(*events, frames=2, size=48)
    # PIL's BILINEAR resize of the float32 count image ('F' mode), an independent antialiased implementation
    expected = np.stack([[np.asarray(Image.fromarray(counts[f, c].numpy()).resize((48, 48), Image.BILINEAR))
                          for c in range(2)] for f in range(2)])
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5, rtol=0)


def test_nearest_resize_picks_source_pixels():
    events, counts = random_counts(8)
    out = events_to_frames(*events, frames=2, size=48, resize="nearest")
    source = np.arange(48) * 128 // 48  # output pixel i <- source pixel floor(i * 128 / 48)
    np.testing.assert_array_equal(out.numpy(), counts.numpy()[:, :, source][:, :, :, source])


def test_tet_pil_resize_is_tets_8_bit_path():
    events, counts = random_counts(9)
    out = events_to_frames(*events, frames=2, size=48, resize="tet-pil")
    # TET's DVSCifar10.__getitem__, written out: per frame ToTensor(Resize((48, 48))(ToPILImage()(frame)))
    tet = [torchvision.transforms.ToTensor()(torchvision.transforms.Resize((48, 48))(
        torchvision.transforms.ToPILImage()(frame))) for frame in counts]
    assert torch.equal(out, torch.stack(tet))
    # its 8-bit mapping by hand, at 128 px (PIL's resize to the same size is a copy): k -> (255 k mod 256) / 255
    x = np.array([0, 1, 1, 2, 2, 2])
    frame = events_to_frames(x, np.zeros(6, dtype=np.int64), np.array([1, 0, 1, 0, 0, 1]), frames=1, size=128,
                             resize="tet-pil")
    assert frame[0, 0, 0, :3].mul(255).round().tolist() == [0, 255, 254]  # counts 0, 1, 2 of polarity 0
    assert frame[0, 1, 0, :3].mul(255).round().tolist() == [255, 255, 255]  # counts 1, 1, 1 of polarity 1
    # polarity 1 (the alpha channel) empty: polarity 0 vanishes after the resize, although it has events
    zero_p = np.zeros(len(events[0]), dtype=np.int64)
    only_p0 = events_to_frames(events[0], events[1], zero_p, frames=1, size=48, resize="tet-pil")
    assert only_p0.abs().max() == 0
    assert events_to_frames(events[0], events[1], zero_p, frames=1, size=48).sum() > 0


def test_resize_option_keys_the_cache(dvs_root, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = {}
    for resize in ("bilinear", "nearest", "tet-pil"):
        _, _, test, info = build_datasets("cifar10-dvs", root=dvs_root, T=2, cache_dir=cache, resize=resize)
        first[resize] = test[0][0]
        assert first[resize].shape == (2, 2, 48, 48) and info.size == (48, 48)
    assert sorted(p.name for p in cache.iterdir()) == [f"frames2_count_48px_{r}_v2" for r in
                                                      ("bilinear", "nearest", "tet-pil")]
    assert not torch.equal(first["bilinear"], first["nearest"]) and not torch.equal(first["bilinear"], first["tet-pil"])
    monkeypatch.setattr(cifar10_dvs, "read_dvs128", lambda path: pytest.fail(f"read {path} although cached"))
    for resize, frames in first.items():  # each is read back from its own cache folder
        _, _, test, _ = build_datasets("cifar10-dvs", root=dvs_root, T=2, cache_dir=cache, resize=resize)
        assert torch.equal(test[0][0], frames)
    with pytest.raises(ValueError, match=r"resize must be one of \('bilinear', 'nearest', 'tet-pil'\), got 'area'"):
        build_datasets("cifar10-dvs", root=dvs_root, T=2, cache_dir=cache, resize="area")


def test_a_full_frame_cache_warns_once(dvs_root, tmpfs):
    """A real full file system (a filled 64 KiB tmpfs) under the frame cache: the training and the
    test set share it, and reading from both gives one warning, not one per set."""
    from ..conftest import fill

    cache = tmpfs("size=64k")
    (cache / "c").mkdir()
    fill(cache)
    train, _, test, _ = build_datasets("cifar10-dvs", root=dvs_root, T=3, cache_dir=cache / "c", val_fraction=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = train[0][0]
        test[0], train[1], test[1]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "cannot be written" in messages[0], messages
    assert first.shape[0] == 3


_READ_WITH_WORKERS = """
import sys
from torch.utils.data import DataLoader
from snn.data import build_datasets
from snn.data.loader import own_process_group
root, cache, context = sys.argv[1:]
train, _, test, _ = build_datasets("cifar10-dvs", root=root, T=3, cache_dir=cache, val_fraction=0)
loaders = [DataLoader(part, batch_size=2, num_workers=2, persistent_workers=True, multiprocessing_context=context,
                      worker_init_fn=own_process_group) for part in (train, test)]
samples = 0
for epoch in range(2):
    for loader in loaders:
        for frames, labels in loader:
            assert frames.shape[1:] == (3, 2, 48, 48)
            samples += len(labels)
print("read", samples)
"""


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_a_full_frame_cache_warns_once_across_loader_workers(dvs_root, tmpfs, context):
    """The same full file system read through data-loader workers (2 for the training set, 2 for the
    test set, persistent, two epochs; workers forked or spawned): one warning for the whole run, not
    one per worker or epoch, and every sample is still read."""
    from ..conftest import fill

    cache = tmpfs("size=64k")
    (cache / "c").mkdir()
    fill(cache)
    done = subprocess.run([sys.executable, "-c", _READ_WITH_WORKERS, str(dvs_root), str(cache / "c"), context],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("cannot be written") == 1, done.stderr
    assert done.stdout.split() == ["read", str(2 * sum(FILES_PER_CLASS))]


def test_a_cache_refusal_copied_outside_a_process_start_keeps_its_value():
    """copy.deepcopy or pickle of a dataset (not a worker start) gives an unshared copy of the flag
    with its value, instead of multiprocessing's error for a shared value pickled elsewhere."""
    refused = cifar10_dvs.CacheRefused()
    assert not pickle.loads(pickle.dumps(refused))
    assert refused.first() and not refused.first()
    copy = pickle.loads(pickle.dumps(refused))
    assert copy and not copy.first()


def test_seeded_augmentation_depends_on_the_sample_alone():
    """After seed_augmentation(seed, epoch), sample i's random crop and flip are the same whatever
    was read before it, in whichever loader worker reads it, and leave torch's global RNG as it
    was; another epoch gives other draws. Without it the transform draws from the global RNG."""
    from torch.utils.data import DataLoader
    from torchvision import transforms as tf

    from snn.data.split import TransformedSubset

    images = torch.arange(16 * 3 * 8 * 8, dtype=torch.float32).reshape(16, 3, 8, 8)
    augment = tf.Compose([tf.RandomCrop(8, padding=3), tf.RandomHorizontalFlip()])
    data = TransformedSubset(list(zip(images, range(16))), np.arange(16), None, augment)
    unseeded = [data[3][0] for _ in range(4)]
    assert any(not torch.equal(unseeded[0], x) for x in unseeded[1:])

    data.seed_augmentation(7, epoch=2)
    alone = [data[i][0] for i in range(16)]
    torch.manual_seed(123)
    before = torch.get_rng_state()
    backwards = [data[i][0] for i in reversed(range(16))][::-1]
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(a, b) for a, b in zip(alone, backwards))
    in_workers = DataLoader(data, batch_size=3, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(1))
    read = {}
    for x, y in in_workers:
        read.update(zip(y.tolist(), x))
    assert sorted(read) == list(range(16)) and all(torch.equal(read[i], alone[i]) for i in range(16))

    for seed, epoch in ((7, 3), (8, 2)):
        data.seed_augmentation(seed, epoch)
        assert any(not torch.equal(data[i][0], alone[i]) for i in range(16)), (seed, epoch)
    with pytest.raises(ValueError, match="epoch"):
        data.seed_augmentation(7, epoch=-1)
