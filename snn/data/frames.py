"""Event frames: equal-event-count slices, per-polarity counts, their resize, and their augmentation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchvision import transforms as tf

from .aedat import SENSOR
from ..checks import integer as check_int

# How the 128 x 128 counts are resized (docs/design.md, "CIFAR10-DVS"): see resize_counts.
RESIZES = ("bilinear", "nearest", "tet-pil")


def slice_bounds(n_events: int, frames: int) -> np.ndarray:
    """Start offsets [frames + 1] of equal-event-count slices of n_events ordered events.

    Slice i holds events [i * (n // frames), (i + 1) * (n // frames)); the last slice also takes the
    n % frames remainder (the split_by='number' rule of SpikingJelly, which TET's frames used).
    """
    bounds = np.arange(frames + 1, dtype=np.int64) * (n_events // frames)
    bounds[-1] = n_events
    return bounds


def events_to_frames(x: np.ndarray, y: np.ndarray, p: np.ndarray, frames: int, size: int,
                     resize: str = "bilinear") -> torch.Tensor:
    """Frames [frames, 2, size, size] float32 of events (x, y, p) given in time order.

    x, y: [N] int pixel column/row in [0, 128); p: [N] polarity in {0, 1} (the channel). Counts are
    taken on the 128 x 128 sensor, then resized to size x size by resize_counts(..., resize).
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
    return resize_counts(torch.from_numpy(counts.astype(np.float32)).view(frames, 2, SENSOR, SENSOR), size, resize)


def resize_counts(counts: torch.Tensor, size: int, resize: str = "bilinear") -> torch.Tensor:
    """Per-polarity event counts [F, 2, H, W] float32 resized to [F, 2, size, size] float32 (contiguous).

    resize (public pipelines differ here and it moves accuracy, docs/design.md):
    - 'bilinear' (default): antialiased bilinear on the raw counts (torch interpolate with
      antialias=True, the triangle filter of PIL's BILINEAR widened by the scale factor): a frame of
      constant count c stays c, and every event contributes; identity at size == H == W.
    - 'nearest': torch interpolate mode='nearest', output pixel i takes source pixel floor(i * H / size)
      (the resize of the IM-Loss authors' later code): counts kept as they are, most pixels skipped.
    - 'tet-pil': TET's loader, per frame ToPILImage -> Resize((size, size)) -> ToTensor (torchvision):
      a count k becomes the byte (255 k) mod 256 (0 -> 0, k -> 256 - k for 1 <= k <= 255), the two
      channels form an 8-bit luminance+alpha image (polarity 0 = luminance, 1 = alpha) that PIL
      resizes bilinearly with premultiplied alpha, and the output is bytes / 255 in [0, 1]: polarity-0
      counts vanish wherever polarity 1 has none. Kept only to match results computed that way.
    Raises ValueError for another resize or a counts tensor that is not [F, 2, H, W].
    """
    check_int("size", size, 1)
    if resize not in RESIZES:
        raise ValueError(f"resize must be one of {RESIZES}, got {resize!r}")
    if counts.dim() != 4 or counts.shape[1] != 2:
        raise ValueError(f"counts must be [F, 2, H, W], got shape {tuple(counts.shape)}")
    if resize == "tet-pil":
        to_image, scale, to_tensor = tf.ToPILImage(), tf.Resize((size, size)), tf.ToTensor()
        return torch.stack([to_tensor(scale(to_image(frame))) for frame in counts])
    if counts.shape[-2:] == (size, size):
        return counts.contiguous()
    if resize == "nearest":
        return F.interpolate(counts, size=(size, size), mode="nearest").contiguous()
    return F.interpolate(counts, size=(size, size), mode="bilinear", align_corners=False, antialias=True).contiguous()


class FlipRoll:
    """Train augmentation of frames [T, C, H, W] (docs/design.md, "CIFAR10-DVS"), drawn from torch's RNG.

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
