"""AER-DAT 2.0 event files from a DVS128 sensor, as in the public CIFAR10-DVS release.

Format (jAER, inivation.github.io "AEDAT file formats"): ASCII header lines starting with '#' (the
first one '#!AER-DAT2.0', optionally one '# AEChip: <java class of the camera>'), then one 8-byte
record per event: a big-endian uint32 address and a big-endian uint32 timestamp (microseconds).
A DVS128 address uses 16 bits: bit 0 polarity, bits 1-7 and 8-14 the two sensor axes, bit 15 set
for a special (external input) event that is not a pixel; other cameras writing AER-DAT 2.0 (DAVIS)
use all 32 bits with a different layout.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import DatasetCorrupt

SENSOR = 128  # DVS128: 128 x 128 pixels, 2 polarities
SPECIAL_BIT = 1 << 15  # DVS128 special (external input) event flag
ADDRESS_LIMIT = 1 << 16  # DVS128 addresses use bits 0-15 only
DVS128_CHIPS = ("DVS128", "Tmpdiff128")  # jAER class names of the DVS128 (Tmpdiff128: its earlier name)

_VERSION = re.compile(rb"^#!AER-DAT(\d+)\.(\d+)")
_CHIP = re.compile(rb"^#\s*AEChip\s*[:=]\s*(?:class\s+)?(\S+)", re.IGNORECASE)


def read_aedat(path) -> tuple[np.ndarray, np.ndarray]:
    """Raw records of an AER-DAT 2.x file, whatever its camera: (addresses [N] uint32, timestamps [N] uint32 in us).

    Records are in file order. Raises DatasetCorrupt naming the file for another AER-DAT version
    (1.0, 3.x, 4.x: unsupported), a header cut off before its end, or event bytes that are not whole
    8-byte records (a truncated file). read_dvs128 also checks that the file is from a DVS128.
    """
    addr, t, _ = _read_records(path)
    return addr, t


def _read_records(path) -> tuple[np.ndarray, np.ndarray, Optional[str]]:
    """read_aedat's records and the chip: the class name in the header's AEChip line (the part after
    the last '.', e.g. 'DVS128' or 'DAVIS240C'), None when the header has none."""
    path = Path(path)
    data = path.read_bytes()
    pos = 0
    version, chip = None, None
    while data[pos:pos + 1] == b"#":
        end = data.find(b"\n", pos)
        if end < 0:
            raise DatasetCorrupt(f"{path}: the header line at byte {pos} has no end of line: the file is truncated")
        line = data[pos:end + 1]
        if (match := _VERSION.match(line)) and version is None:
            version = (int(match.group(1)), int(match.group(2)))
        elif (match := _CHIP.match(line)) and chip is None:
            chip = match.group(1).decode("ascii", "replace").rsplit(".", 1)[-1]
        pos = end + 1
    if version is None:
        raise DatasetCorrupt(f"{path}: unsupported file: its header has no '#!AER-DAT' version line (an "
                             f"AER-DAT 1.0 file, or not an event file); only AER-DAT 2.0 is read")
    if version[0] != 2:
        raise DatasetCorrupt(f"{path}: unsupported version AER-DAT {version[0]}.{version[1]}; only AER-DAT 2.0 "
                             f"(the format of the CIFAR10-DVS release) is read")
    if (len(data) - pos) % 8:
        raise DatasetCorrupt(f"{path}: {len(data) - pos} bytes of events after the header, not a multiple "
                             f"of the 8-byte (address, timestamp) record: the file is truncated")
    records = np.frombuffer(data, dtype=">u4", offset=pos).reshape(-1, 2)
    return records[:, 0].astype(np.uint32), records[:, 1].astype(np.uint32), chip


def decode_dvs128(addr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel column x, row y (each in [0, 128)) and polarity p in {0, 1} of DVS128 pixel addresses, all int64 [N].

    Address bits: 0 polarity, 1-7 one sensor axis, 8-14 the other (bit 15, the special-event flag,
    must be clear: read_dvs128 drops those events). The orientation and the polarity sense follow
    SpikingJelly's CIFAR10-DVS reader (spikingjelly/datasets/cifar10_dvs.py, _load_origin_data:
    x = 127 - bits 8-14, y = 127 - bits 1-7, p = 1 - bit 0), with which TET and the work after it
    make their frames, so frames here have the same orientation and channel order.
    """
    addr = np.asarray(addr).astype(np.int64)
    x = (SENSOR - 1) - ((addr >> 8) & 0x7F)
    y = (SENSOR - 1) - ((addr >> 1) & 0x7F)
    p = 1 - (addr & 1)
    return x, y, p


def read_dvs128(path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixel events (x, y, p, t) of a DVS128 AER-DAT 2.0 file, each [N] int64 (see decode_dvs128; t in us).

    Special events (address bit 15) are not pixel events and are dropped. Raises DatasetCorrupt
    naming the file and the camera for a file that is not from a DVS128: an AEChip header line naming
    another chip (e.g. a DAVIS), or an address with a bit above 15 set (e.g. DAVIS's 0x190C8800),
    besides read_aedat's errors.
    """
    addr, t, chip = _read_records(path)
    if chip is not None and not any(name.lower() in chip.lower() for name in DVS128_CHIPS):
        raise DatasetCorrupt(f"{path}: recorded with the chip {chip!r} (its AEChip header line), not a DVS128; "
                             f"only DVS128 files (CIFAR10-DVS) are read")
    wide = np.flatnonzero(addr >= ADDRESS_LIMIT)
    if wide.size:
        k = int(wide[0])
        named = "no AEChip header line" if chip is None else f"AEChip {chip!r}"
        raise DatasetCorrupt(f"{path}: event {k} has the address {int(addr[k]):#010x}, with bits above the 16-bit "
                             f"DVS128 layout set ({wide.size} such events; {named}): not a DVS128 recording (a "
                             f"DAVIS camera writes 32-bit addresses); only DVS128 files (CIFAR10-DVS) are read")
    pixel = (addr & SPECIAL_BIT) == 0
    x, y, p = decode_dvs128(addr[pixel])
    return x, y, p, t[pixel].astype(np.int64)
