"""VGG-16 "modified" as in Diet-SNN (Rathi & Roy), the network the paper cites for VGG-16.

3x3 convs 64,64,AP,128,128,AP,256x3,AP,512x3,AP,512x3, a LIF after every conv, then
FC 512*s*s -> 4096 -> 4096 -> classes with LIFs on the hidden FCs. s = input_size / 16
(2 on 32x32 CIFAR); when that is above 7 (224x224 ImageNet: 14) a fifth AP2 follows the last
block, giving Diet-SNN's 7x7 ImageNet head. Diet-SNN's dropout is left out (add it in training
code if wanted). Norms follow the convs only. Biases (see snn.models.build): with tdBN or BN the
two hidden FCs have one (no norm follows them), the convs none; with norm='none' no hidden layer
has one (bias=True brings them back on every conv and hidden FC); the classifier FC always has one.
"""

from __future__ import annotations

from torch import nn

from ..layers import TimeDistributed
from .base import Parts, SpikingNet, avg_pool, head, scaled

CONFIG = (64, 64, "A", 128, 128, "A", 256, 256, 256, "A", 512, 512, 512, "A", 512, 512, 512)


def vgg16(num_classes: int, in_channels: int, parts: Parts, width: float, input_size: int = 32) -> SpikingNet:
    side = input_size // 16  # four AP2
    if side < 1:
        raise ValueError(f"input_size must be >= 16 for vgg16's four 2x2 poolings, got {input_size}")
    layers, cin = [], in_channels
    for v in CONFIG:
        if v == "A":
            layers.append(avg_pool())
        else:
            layers += [parts.conv(cin, scaled(v, width), 3), parts.lif()]
            cin = scaled(v, width)
    if side > 7:
        layers.append(avg_pool())
        side //= 2
    hidden = scaled(4096, width)
    classifier = nn.Sequential(
        TimeDistributed(nn.Flatten(), parts.linear(cin * side * side, hidden)), parts.lif(),
        TimeDistributed(parts.linear(hidden, hidden)), parts.lif(),
        TimeDistributed(head(hidden, num_classes)),
    )
    return SpikingNet(nn.Sequential(*layers), classifier, in_channels, input_size)
