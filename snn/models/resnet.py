"""Spiking ResNet-19 (Zheng et al. 2021, tdBN) and ResNet-34 (torchvision layout, avg pooling).

Block: conv-norm-LIF-conv-norm, plus the shortcut (identity, or 1x1 conv + norm when the shape
changes), then a LIF. The LIF inside the residual branch has im=False (paper sec. 4.2: those
layers learn small perturbations); the stem LIF and each block's output LIF have im=True. With
tdBN, the two norms whose outputs are added (the branch's last and the shortcut's) use
alpha = 1/sqrt(2). Head: global average pooling and one FC to the classes, as in the authors'
code (ResNet-19 then has 12.57 M parameters on CIFAR-10, the "about 12.6 M" of the literature;
the FC 256 + LIF + FC head of other versions would give 12.70 M). Biases (see snn.models.build):
no conv has one, with a norm or with norm='none' (bias=True gives every conv, shortcut included,
one when there is no norm); the classifier FC always has one.

IM-Loss restricts 1 + (number of blocks) LIF layers: ResNet-19 has 17 LIF layers (stem + 2 per
block x 8 blocks), 9 of them restricted; ResNet-34 33, 17 restricted.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import TimeDistributed
from .base import RESIDUAL_ALPHA, Parts, SpikingNet, avg_pool, head, scaled


class BasicBlock(nn.Module):
    """[T, B, cin, H, W] spikes -> [T, B, cout, H / stride, W / stride] spikes."""

    def __init__(self, cin: int, cout: int, stride: int, parts: Parts):
        super().__init__()
        self.conv1 = parts.conv(cin, cout, 3, stride)
        self.lif1 = parts.lif(im=False)
        self.conv2 = parts.conv(cout, cout, 3, alpha=RESIDUAL_ALPHA)
        self.shortcut = (parts.conv(cin, cout, 1, stride, alpha=RESIDUAL_ALPHA)
                         if stride != 1 or cin != cout else nn.Identity())
        self.lif2 = parts.lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif2(self.conv2(self.lif1(self.conv1(x))) + self.shortcut(x))


def _resnet(stem: list[nn.Module], cin: int, stages: list[tuple[int, int, int]], parts: Parts, width: float,
            num_classes: int, in_channels: int) -> SpikingNet:
    """stages: (blocks, channels, first stride) per stage; cin: the stem's output channels."""
    layers = list(stem)
    for blocks, channels, stride in stages:
        cout = scaled(channels, width)
        for i in range(blocks):
            layers.append(BasicBlock(cin, cout, stride if i == 0 else 1, parts))
            cin = cout
    classifier = TimeDistributed(nn.AdaptiveAvgPool2d(1), nn.Flatten(), head(cin, num_classes))
    return SpikingNet(nn.Sequential(*layers), classifier, in_channels)


def resnet19(num_classes: int, in_channels: int, parts: Parts, width: float) -> SpikingNet:
    """3x3 stem with 128 channels; BasicBlocks [3, 3, 2] at 128/256/512, strides 1/2/2."""
    c = scaled(128, width)
    stem = [parts.conv(in_channels, c, 3), parts.lif()]
    return _resnet(stem, c, [(3, 128, 1), (3, 256, 2), (2, 512, 2)], parts, width, num_classes, in_channels)


def resnet34(num_classes: int, in_channels: int, parts: Parts, width: float) -> SpikingNet:
    """7x7/2 stem with 64 channels, 3x3/2 average pool; BasicBlocks [3, 4, 6, 3] at 64..512."""
    c = scaled(64, width)
    stem = [parts.conv(in_channels, c, 7, 2), parts.lif(), avg_pool(3, 2, 1)]
    return _resnet(stem, c, [(3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)], parts, width,
                   num_classes, in_channels)
