"""The generated event set is in CIFAR10-DVS's on-disk format: snn.data's reader decodes exactly
the events written, and build_datasets splits it like the real dataset."""

import numpy as np

from reproduce._common.events import EVENTS, sample_events, write_event_set
from snn.data import build_datasets
from snn.data.aedat import decode_dvs128, read_aedat


def test_round_trip_through_the_reader(tmp_path):
    root = write_event_set(tmp_path, files_per_class=10)
    addr, t = read_aedat(root / "cifar10-dvs" / "deer" / "cifar10_deer_7.aedat")
    x, y, p, t0 = sample_events(4, np.random.default_rng([0, 4, 7]))
    for got, want in zip((*decode_dvs128(addr), t), (x, y, p, t0)):
        np.testing.assert_array_equal(got, want)
    assert len(addr) == EVENTS and np.all(np.diff(t.astype(np.int64)) >= 0)
    train, val, test, info = build_datasets("cifar10-dvs", root=root, T=3, size=16)
    assert (len(train) + len(val), len(test)) == (90, 10)  # 9 of each class's 10 files train
    frames, label = test[0]
    assert frames.shape == (3, 2, 16, 16) and info.in_channels == 2 and frames.sum() > 0


def test_an_existing_set_is_kept(tmp_path):
    write_event_set(tmp_path, files_per_class=2)
    target = tmp_path / "cifar10-dvs" / "cat" / "cifar10_cat_1.aedat"
    stamp = target.stat().st_mtime_ns
    write_event_set(tmp_path, files_per_class=2)
    assert target.stat().st_mtime_ns == stamp
