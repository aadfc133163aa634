"""What the four architectures share: the network shell, the conv/norm/LIF factory, pooling."""

from __future__ import annotations

import math

import torch
from torch import nn

from .. import checks
from ..layers import TimeDistributed, as_sequence
from ..neuron import LIF
from ..tdbn import TDBatchNorm2d

NORMS = ("tdbn", "bn", "none")
RESIDUAL_ALPHA = 1 / math.sqrt(2)  # tdBN alpha of the two norms whose outputs a residual block adds


class SpikingNet(nn.Module):
    """features and classifier on [T, B, ...] sequences; logits averaged over T.

    forward(x, T=None): x is [B, C, H, W] (direct encoding, T required) or [T, B, C, H, W]
    (event frames) -> logits [B, num_classes]. x must be floating point, of the parameters' dtype
    outside autocast (TypeError naming both dtypes otherwise; nothing is converted).
    input_size: the H = W the classifier was sized for, or None when any size works.
    """

    def __init__(self, features: nn.Module, classifier: nn.Module, in_channels: int,
                 input_size: int | None = None):
        super().__init__()
        self.features, self.classifier = features, classifier
        self.in_channels, self.input_size = in_channels, input_size

    def forward(self, x: torch.Tensor, T: int | None = None) -> torch.Tensor:
        x = as_sequence(x, T)
        param = next(self.parameters(), None)
        if param is not None:
            checks.input_dtype("model input x", x, param.dtype)
        if x.shape[2] != self.in_channels:
            raise ValueError(f"model expects {self.in_channels} input channels, got input of shape "
                             f"{tuple(x.shape)} (channels at dim 2 of [T, B, C, H, W])")
        if self.input_size is not None and x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"model was built for {self.input_size}x{self.input_size} inputs (input_size="
                             f"{self.input_size}), got spatial size {tuple(x.shape[-2:])}")
        return self.classifier(self.features(x)).mean(0)


def scaled(channels: int, width: float) -> int:
    """A channel count scaled by width, at least 1."""
    return max(1, round(channels * width))


def default_bias(norm: str) -> bool:
    """Whether hidden layers with no norm after them get a bias when build() is not told:
    yes with a norm (only the hidden FCs of CIFARNet and VGG-16 are such layers), no with
    norm='none' (paper abstract and sec. 4.2: IM-Loss stands in for normalization without adding a
    bias or a scaling at inference; with biases, IM-Loss can be met by the biases alone, the
    membrane mean reaching vth whatever the input, and the network does not learn)."""
    return norm != "none"


class Parts:
    """Makes the layers every architecture uses, with one norm choice and one set of LIF settings.

    norm: 'tdbn', 'bn' (nn.BatchNorm2d over the [T*B, C, H, W] fold) or 'none';
    bias: whether the hidden conv and FC layers that no norm follows get a bias (a conv followed by
    a norm never has one: the norm's shift plays its part); see default_bias.
    lif_kwargs: LIF settings shared by every neuron (checked here), except im, set per layer.
    """

    LIF_KEYS = ("vth", "decay", "surrogate", "alpha", "reset", "detach_reset", "backend", "compact_state")

    def __init__(self, norm: str, bias: bool, **lif_kwargs):
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool (or None in build() for the norm's default), got {bias!r}")
        if "im" in lif_kwargs:
            raise TypeError("im is set per layer by the architecture (False inside residual branches); "
                            "do not pass it to build()")
        unknown = sorted(set(lif_kwargs) - set(self.LIF_KEYS))
        if unknown:
            raise TypeError(f"unknown LIF keyword argument(s) {unknown}; accepted: {self.LIF_KEYS}")
        self.norm, self.bias, self.lif_kwargs = norm, bias, lif_kwargs
        self.vth = LIF(**lif_kwargs).vth  # validates the settings once, with errors naming them

    def lif(self, im: bool = True) -> LIF:
        return LIF(**self.lif_kwargs, im=im)

    def conv(self, cin: int, cout: int, kernel: int, stride: int = 1, alpha: float = 1.0) -> nn.Sequential:
        """Conv (padding kernel // 2) then norm, on [T, B, C, H, W]. The conv has a bias only with
        norm='none' and bias=True; alpha is tdBN's (1, or RESIDUAL_ALPHA before a residual addition)."""
        has_bias = self.norm == "none" and self.bias
        layers = [TimeDistributed(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=has_bias))]
        if self.norm == "tdbn":
            layers.append(TDBatchNorm2d(cout, alpha=alpha, vth=self.vth))
        elif self.norm == "bn":
            layers.append(TimeDistributed(nn.BatchNorm2d(cout)))
        return nn.Sequential(*layers)

    def linear(self, n_in: int, n_out: int) -> nn.Linear:
        """A hidden FC layer (a LIF follows it, no norm): a bias when bias=True."""
        return nn.Linear(n_in, n_out, bias=self.bias)


def head(n_in: int, num_classes: int) -> nn.Linear:
    """The classifier: an FC to the class scores, with a bias in every mode. It feeds no LIF, so
    IM-Loss never sees it (its bias cannot meet IM-Loss in the network's place); its bias is a
    per-class offset of the logits, as in any classifier."""
    return nn.Linear(n_in, num_classes)


def avg_pool(kernel: int = 2, stride: int | None = None, padding: int = 0) -> TimeDistributed:
    return TimeDistributed(nn.AvgPool2d(kernel, stride, padding))
