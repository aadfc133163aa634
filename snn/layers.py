"""Running ordinary layers on spike sequences, and turning inputs into sequences.

Sequence tensors are time-major, `[T, B, ...]`. `TimeDistributed` folds T into the batch as a
view (`flatten(0, 1)` of a tensor whose T and B dimensions are mergeable, which every
activation produced here is), so conv, pool, linear and norm layers see `[T*B, ...]`.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn


def _check_tensor(name: str, x) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")


class TimeDistributed(nn.Sequential):
    """The given modules applied at every timestep: [T, B, ...] -> [T*B, ...] -> modules -> [T, B, ...].

    Only for per-sample layers (conv, pool, linear, flatten); nn.BatchNorm2d here normalizes
    over T*B samples at once, i.e. with statistics over (T, B, H, W).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_tensor("TimeDistributed input", x)
        if x.dim() < 3:
            raise ValueError(f"TimeDistributed input must have shape [T, B, ...] with at least one feature "
                             f"dimension, got shape {tuple(x.shape)}")
        return super().forward(x.flatten(0, 1)).unflatten(0, x.shape[:2])


def as_sequence(x: torch.Tensor, T: int | None = None) -> torch.Tensor:
    """Model input -> [T, B, C, H, W].

    x: [B, C, H, W] static image, direct encoding: the same image at each of T steps (a view
       with stride 0 along T, T required; the first TimeDistributed layer's fold materializes
       the T copies, exactly as feeding the image T times);
       [T, B, C, H, W] event frames (DVS, C = 2), returned as is (T, if given, must match).
    """
    _check_tensor("x", x)
    if T is not None and (isinstance(T, bool) or not isinstance(T, numbers.Integral)):
        raise TypeError(f"T must be an int or None, got {T!r} of type {type(T).__name__}")
    if T is not None and T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    if x.dim() == 4:
        if T is None:
            raise ValueError(f"a static input of shape [B, C, H, W] = {tuple(x.shape)} needs T, the number of "
                             f"timesteps to repeat it for (direct encoding); got T=None")
        return x.unsqueeze(0).expand(int(T), *x.shape)
    if x.dim() == 5:
        if T is not None and T != x.shape[0]:
            raise ValueError(f"T={T} does not match the {x.shape[0]} timesteps of the [T, B, C, H, W] input "
                             f"of shape {tuple(x.shape)}; pass T=None or T={x.shape[0]}")
        return x
    raise ValueError(f"x must be a static image batch [B, C, H, W] or a sequence [T, B, C, H, W], "
                     f"got shape {tuple(x.shape)}")
