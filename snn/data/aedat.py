"""AER-DAT 2.0 event files from a DVS128 sensor, as in the public CIFAR10-DVS release.

Format: ASCII header lines starting with '#' (the first one '#!AER-DAT2.0'), then one 8-byte
record per event: a big-endian uint32 address and a big-endian uint32 timestamp (microseconds).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

SENSOR = 128  # DVS128: 128 x 128 pixels, 2 polarities

_VERSION = re.compile(rb"^#!AER-DAT(\d+)\.(\d+)")


def read_aedat(path) -> tuple[np.ndarray, np.ndarray]:
    """Raw events of an AER-DAT 2.0 file: (addresses [N] uint32, timestamps [N] uint32), in file order."""
    path = Path(path)
    data = path.read_bytes()
    pos = 0
    version = None
    while data[pos:pos + 1] == b"#":
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end + 1
        match = _VERSION.match(data[pos:end])
        if match:
            version = (int(match.group(1)), int(match.group(2)))
        pos = end
    if version is None or version[0] != 2:
        found = "no '#!AER-DAT' version line" if version is None else f"version {version[0]}.{version[1]}"
        raise ValueError(f"{path} is not an AER-DAT 2.x file: its header has {found}")
    if (len(data) - pos) % 8:
        raise ValueError(f"{path}: {len(data) - pos} bytes of events after the header, not a multiple "
                         f"of the 8-byte (address, timestamp) record")
    records = np.frombuffer(data, dtype=">u4", offset=pos).reshape(-1, 2)
    return records[:, 0].astype(np.uint32), records[:, 1].astype(np.uint32)


def decode_dvs128(addr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel column x, row y (each in [0, 128)) and polarity p in {0, 1} of DVS128 addresses, all int64 [N].

    Address bits: 0 polarity, 1-7 one sensor axis, 8-14 the other. The orientation and the polarity
    sense follow SpikingJelly's CIFAR10-DVS reader (spikingjelly/datasets/cifar10_dvs.py,
    _load_origin_data: x = 127 - bits 8-14, y = 127 - bits 1-7, p = 1 - bit 0), which TET and the
    work after it used to make their frames, so frames here have the same orientation and channel order.
    """
    addr = np.asarray(addr).astype(np.int64)
    x = (SENSOR - 1) - ((addr >> 8) & 0x7F)
    y = (SENSOR - 1) - ((addr >> 1) & 0x7F)
    p = 1 - (addr & 1)
    return x, y, p
