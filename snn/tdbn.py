"""tdBN (Zheng et al. 2021): threshold-dependent batch normalization over time and batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import checks


class TDBatchNorm2d(nn.BatchNorm2d):
    """Batch norm of a `[T, B, C, H, W]` tensor with statistics per channel over (T, B, H, W):

        y = weight * alpha * vth * (x - mean) / sqrt(var + eps) + bias

    alpha = 1, or 1/sqrt(2) for the norms whose outputs are added in a residual block; vth is
    the threshold of the LIF it feeds. `weight`, `bias`, running statistics, momentum and
    train/eval behave as in `nn.BatchNorm2d` (which this is, on the [T*B, C, H, W] view).

    num_features: C >= 1; alpha, vth, eps: finite and > 0; momentum: None (cumulative average)
    or in [0, 1]; affine, track_running_stats: bools. Raises TypeError / ValueError naming the
    argument otherwise.
    """

    def __init__(self, num_features: int, alpha: float = 1.0, vth: float = 0.5, eps: float = 1e-5,
                 momentum: float | None = 0.1, affine: bool = True, track_running_stats: bool = True,
                 device=None, dtype=None):
        num_features = checks.integer("num_features", num_features, 1)
        alpha, vth, eps = (checks.real(name, value, 0.0, low_open=True)
                           for name, value in (("alpha", alpha), ("vth", vth), ("eps", eps)))
        if momentum is not None:
            momentum = checks.real("momentum", momentum, 0.0, 1.0)
        checks.boolean("affine", affine)
        checks.boolean("track_running_stats", track_running_stats)
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine,
                         track_running_stats=track_running_stats, device=device, dtype=dtype)
        self.alpha, self.vth = alpha, vth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [T, B, C, H, W] -> same shape."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"TDBatchNorm2d expects a [T, B, C, H, W] tensor, got {type(x).__name__}")
        if x.dim() != 5:
            raise ValueError(f"TDBatchNorm2d expects a [T, B, C, H, W] tensor, got shape {tuple(x.shape)}")
        if x.shape[2] != self.num_features:
            raise ValueError(f"TDBatchNorm2d({self.num_features}) got {x.shape[2]} channels in input of shape "
                             f"{tuple(x.shape)}")
        scale = self.alpha * self.vth
        weight = scale * self.weight if self.affine else x.new_full((self.num_features,), scale)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as nn.BatchNorm2d
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        y = F.batch_norm(x.flatten(0, 1), self.running_mean if track else None,
                         self.running_var if track else None, weight, self.bias, use_batch_stats, factor, self.eps)
        return y.unflatten(0, x.shape[:2])

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={self.alpha:.4g}, vth={self.vth:g}"
