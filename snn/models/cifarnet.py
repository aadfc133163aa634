"""Spiking CIFARNet (Wu et al. 2019, STBP): 128C3-256C3-AP2-512C3-AP2-1024C3-512C3-FC1024-FC512-FC.

A LIF follows every conv and hidden FC (the first conv receives the real-valued image). The
original's voting layer (10 neurons per class) is replaced by a plain FC to the classes.
Norms follow the convs only. Biases (see snn.models.build): with tdBN or BN the two hidden FCs
have one (no norm follows them), the convs none; with norm='none' no hidden layer has one
(bias=True brings them back on every conv and hidden FC); the classifier FC always has one.
"""

from __future__ import annotations

from torch import nn

from ..layers import TimeDistributed
from .base import Parts, SpikingNet, avg_pool, head, scaled


def cifarnet(num_classes: int, in_channels: int, parts: Parts, width: float, input_size: int = 32) -> SpikingNet:
    c = [scaled(n, width) for n in (128, 256, 512, 1024, 512, 1024, 512)]
    side = input_size // 4  # after two AP2
    if side < 1:
        raise ValueError(f"input_size must be >= 4 for cifarnet's two 2x2 poolings, got {input_size}")
    features = nn.Sequential(
        parts.conv(in_channels, c[0], 3), parts.lif(),
        parts.conv(c[0], c[1], 3), parts.lif(), avg_pool(),
        parts.conv(c[1], c[2], 3), parts.lif(), avg_pool(),
        parts.conv(c[2], c[3], 3), parts.lif(),
        parts.conv(c[3], c[4], 3), parts.lif(),
    )
    classifier = nn.Sequential(
        TimeDistributed(nn.Flatten(), parts.linear(c[4] * side * side, c[5])), parts.lif(),
        TimeDistributed(parts.linear(c[5], c[6])), parts.lif(),
        TimeDistributed(head(c[6], num_classes)),
    )
    return SpikingNet(features, classifier, in_channels, input_size)
