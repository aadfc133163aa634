"""Event frames: equal-event-count slices, per-polarity counts, bilinear resize, and their augmentation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .aedat import SENSOR
from .checks import check_int


def slice_bounds(n_events: int, frames: int) -> np.ndarray:
    """Start offsets [frames + 1] of equal-event-count slices of n_events ordered events.

    Slice i holds events [i * (n // frames), (i + 1) * (n // frames)); the last slice also takes the
    n % frames remainder (the split_by='number' rule of SpikingJelly, which TET's frames used).
    """
    bounds = np.arange(frames + 1, dtype=np.int64) * (n_events // frames)
    bounds[-1] = n_events
    return bounds


def events_to_frames(x: np.ndarray, y: np.ndarray, p: np.ndarray, frames: int, size: int) -> torch.Tensor:
    """Event counts [frames, 2, size, size] float32 of events (x, y, p) given in time order.

    x, y: [N] int pixel column/row in [0, 128); p: [N] polarity in {0, 1} (the channel). Counts are
    taken on the 128 x 128 sensor, then resized to size x size with antialiased bilinear
    interpolation (like PIL's bilinear resize; a constant frame stays that constant) unless size == 128.
    """
    check_int("frames", frames, 1)
    check_int("size", size, 1)
    n = len(x)
    if not len(y) == len(p) == n:
        raise ValueError(f"x, y, p must have one entry per event, got lengths {len(x)}, {len(y)}, {len(p)}")
    if n and (min(x.min(), y.min()) < 0 or max(x.max(), y.max()) >= SENSOR or p.min() < 0 or p.max() > 1):
        raise ValueError(f"x and y must lie in [0, {SENSOR}) and p in {{0, 1}}")
    frame_of = np.repeat(np.arange(frames, dtype=np.int64), np.diff(slice_bounds(n, frames)))
    flat = ((frame_of * 2 + p) * SENSOR + y) * SENSOR + x
    counts = np.bincount(flat, minlength=frames * 2 * SENSOR * SENSOR)
    out = torch.from_numpy(counts.astype(np.float32)).view(frames, 2, SENSOR, SENSOR)
    if size != SENSOR:
        out = F.interpolate(out, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return out.contiguous()


class FlipRoll:
    """Train augmentation of frames [T, C, H, W] (NOTES sec. 6), drawn from torch's RNG.

    A horizontal flip (last axis) with probability 1/2, then a cyclic roll by (dy, dx), each drawn
    uniformly from the integers in [-max_roll, max_roll]. The same flip and roll apply to all T frames.
    """

    def __init__(self, max_roll: int = 5):
        self.max_roll = check_int("max_roll", max_roll, 0)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) < 0.5:
            frames = frames.flip(-1)
        dy, dx = torch.randint(-self.max_roll, self.max_roll + 1, (2,)).tolist()
        return torch.roll(frames, shifts=(dy, dx), dims=(-2, -1))

    def __repr__(self) -> str:
        return f"FlipRoll(max_roll={self.max_roll})"
