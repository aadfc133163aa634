"""snn.data values against an independent computation: ImageNet's evaluation transform against
PIL done by hand (resize the short side to 256, crop the central 224), digits normalized with the
training pixels only, the DVS128 address check at its exact edge, the hold-out and CIFAR10-DVS
split counts at their rounding edges."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from snn.data import DatasetCorrupt, build_datasets, holdout_split
from snn.data.aedat import read_dvs128

from .test_data import DVS_HEADER, write_dvs_tree, write_image_tree, write_raw_aedat

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # the torchvision model zoo's


def by_hand(path, short: int, crop: int) -> torch.Tensor:
    """Resize so that the shorter side is `short` (bilinear, antialiased as PIL does), cut the central
    crop x crop square, scale to [0, 1] and normalize: the standard ImageNet evaluation."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    size = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    image = image.resize(size, Image.BILINEAR)
    left, top = int(round((size[0] - crop) / 2.0)), int(round((size[1] - crop) / 2.0))
    image = image.crop((left, top, left + crop, top + crop))
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (x - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]


@pytest.mark.parametrize("crop, short", [(224, 256), (112, 128), (64, 73)])  # short = round(crop * 256 / 224)
def test_imagenet_evaluation_is_resize_to_8_7_of_the_crop_then_center_crop(tmp_path, crop, short):
    write_image_tree(tmp_path / "imagenet" / "train", ["a", "b"], per_class=2)
    write_image_tree(tmp_path / "imagenet" / "val", ["a", "b"], per_class=2)
    _, _, test, _ = build_datasets("imagenet", root=tmp_path, size=crop, val_fraction=0.0)
    files = sorted((tmp_path / "imagenet" / "val" / "a").iterdir())
    for i, path in enumerate(files):
        torch.testing.assert_close(test[i][0], by_hand(path, short, crop), atol=2e-2 / 0.225, rtol=0)
        # PIL vs torchvision may differ by one level in a few pixels; a wrong ratio moves most of them
        diff = (test[i][0] - by_hand(path, short, crop)).abs()
        assert (diff > 1.5 / 255 / 0.224).float().mean() < 0.01


def test_digits_are_normalized_with_the_training_pixels_only():
    """The normalization statistics must come from the training images: the normalized training
    pixels (all of them, val_fraction 0) have mean 0 and standard deviation 1 exactly; the test
    pixels do not."""
    train, _, test, _ = build_datasets("digits", size=8, val_fraction=0.0)
    pixels = torch.stack([train[i][0] for i in range(len(train))]).double()
    assert abs(pixels.mean().item()) < 1e-6 and abs(pixels.std().item() - 1) < 1e-6
    test_pixels = torch.stack([test[i][0] for i in range(len(test))]).double()
    assert abs(test_pixels.mean().item()) > 1e-4


def test_digits_match_scikit_learns_images_scaled_by_the_training_statistics():
    from sklearn.datasets import load_digits

    raw = load_digits().images.astype(np.float64) / 16.0  # [1797, 8, 8]
    train, _, test, _ = build_datasets("digits", size=8, val_fraction=0.0)
    train_raw = _match(raw, train)
    mean, std = train_raw.mean(), train_raw.std(ddof=1)
    for dataset in (train, test):
        rows = _match(raw, dataset)
        got = np.stack([dataset[i][0][0].double().numpy() for i in range(len(dataset))])
        np.testing.assert_allclose(got, (rows - mean) / std, atol=1e-5)


def _match(raw, dataset):
    """The raw image of each sample (found by the argsort order of the normalization, which keeps
    pixel ranks: the unique image whose pixels correlate perfectly with the sample)."""
    flat = raw.reshape(len(raw), -1)
    out = []
    for i in range(len(dataset)):
        x = dataset[i][0].double().numpy().reshape(-1)
        # normalization is affine with a positive scale: x = (r - m) / s exactly, for one r
        centered = flat - flat.mean(1, keepdims=True)
        xc = x - x.mean()
        denom = np.linalg.norm(centered, axis=1) * np.linalg.norm(xc) + 1e-12
        k = int(np.argmax(centered @ xc / denom))
        out.append(raw[k])
    return np.stack(out)


@pytest.mark.parametrize("address, ok", [(0x0000FFFF & ~0x8000, True), (0x00007FFE, True), (0x00010000, False),
                                         (0x00010001, False), (0x80000000, False)])
def test_dvs128_addresses_use_16_bits_exactly(tmp_path, address, ok):
    """Bits 0-15 are the DVS128 layout; 0x10000, the first address with bit 16 set, is refused."""
    path = tmp_path / "one.aedat"
    write_raw_aedat(path, [0x00000102, address], header=DVS_HEADER)
    if ok:
        x, y, p, t = read_dvs128(path)
        assert len(x) == 2
    else:
        with pytest.raises(DatasetCorrupt, match=f"{address:#010x}"):
            read_dvs128(path)


@pytest.mark.parametrize("n, fraction, held", [(5, 0.1, 1), (4, 0.125, 1), (3, 0.1, 0), (10, 0.05, 1),
                                               (20, 0.1, 2), (7, 0.5, 4)])
def test_holdout_counts_round_half_up(n, fraction, held):
    """floor(fraction * n + 1/2) per class, worked out by hand (0.5 -> 1, 0.3 -> 0, 3.5 -> 4)."""
    kept, out = holdout_split(np.zeros(n, dtype=np.int64), fraction, seed=0)
    assert len(out) == held and len(kept) == n - held


def test_cifar10_dvs_trains_on_floor_nine_tenths_of_each_class(tmp_path):
    """Files per class 10..19 -> training files floor(9 n / 10) = 9, 9, 10, 11, 12, 13, 14, 15, 16, 17."""
    write_dvs_tree(tmp_path / "cifar10-dvs", list(range(10, 20)))
    train, _, test, _ = build_datasets("cifar10-dvs", root=tmp_path, T=2, val_fraction=0.0,
                                       cache_dir=tmp_path / "cache")
    assert np.bincount(train.targets, minlength=10).tolist() == [9, 9, 10, 11, 12, 13, 14, 15, 16, 17]
    assert np.bincount(test.targets, minlength=10).tolist() == [1, 2, 2, 2, 2, 2, 2, 2, 2, 2]
