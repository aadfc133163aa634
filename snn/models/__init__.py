"""The paper's four architectures: `build(name, num_classes, ...)` and parameter counts."""

from __future__ import annotations

import torch
from torch import nn

from .. import checks
from .base import NORMS, Parts, SpikingNet, default_bias
from .cifarnet import cifarnet
from .resnet import BasicBlock, resnet19, resnet34
from .vgg import vgg16

MODELS = {"cifarnet": cifarnet, "resnet19": resnet19, "vgg16": vgg16, "resnet34": resnet34}
FLATTENING_HEAD = ("cifarnet", "vgg16")  # classifier sized by input_size; the ResNets pool globally


def build(name: str, num_classes: int, in_channels: int = 3, norm: str = "tdbn", width: float = 1.0,
          input_size: int = 32, bias: bool | None = None, **lif_kwargs) -> SpikingNet:
    """A spiking network of the paper; forward(x, T=None) -> logits [B, num_classes] (see SpikingNet).

    name: 'cifarnet', 'resnet19', 'vgg16' or 'resnet34'.
    in_channels: 3 for images, 2 for DVS event frames.
    norm: 'tdbn' (tdBN), 'bn' (nn.BatchNorm2d over T*B) or 'none' (no normalization: the paper's
        IM-Loss networks).
    width: multiplies every hidden channel / feature count (1.0 = the paper's network).
    input_size: H = W of the input, which sizes the FC head of cifarnet and vgg16 (32 for CIFAR,
        48 for CIFAR10-DVS frames, 224 for ImageNet); the ResNets accept any size.
    bias: whether the hidden conv / FC layers that no norm follows get a bias. None (default): the
        norm's default, True with 'tdbn' / 'bn' (then only the hidden FCs of cifarnet and vgg16
        have one; a conv followed by a norm never has one, the norm's shift plays its part) and
        False with 'none' (a bias-free network, as the paper's abstract and sec. 4.2 mean it: the
        biases alone can satisfy IM-Loss and the network then does not learn). bias=True with
        'none' gives every conv and hidden FC a bias. The classifier FC has a bias in every mode
        (it feeds no LIF, so IM-Loss never sees it).
    lif_kwargs: settings of every snn.LIF (vth, decay, surrogate, alpha, reset, detach_reset, backend,
        compact_state).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model name {name!r}; available: {sorted(MODELS)}")
    num_classes = checks.integer("num_classes", num_classes, 1)
    in_channels = checks.integer("in_channels", in_channels, 1)
    input_size = checks.integer("input_size", input_size, 1)
    width = checks.real("width", width, 0.0, low_open=True)
    parts = Parts(norm, default_bias(norm) if bias is None else bias, **lif_kwargs)
    extra = {"input_size": input_size} if name in FLATTENING_HEAD else {}
    return MODELS[name](num_classes, in_channels, parts, width, **extra)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameter elements (works on meta-device models)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# (name, num_classes, input_size): the dataset each architecture is reported on in the paper.
PAPER_SETTINGS = (("cifarnet", 10, 32), ("resnet19", 10, 32), ("vgg16", 10, 32), ("vgg16", 1000, 224),
                  ("resnet34", 1000, 224))


def parameter_counts(norm: str = "tdbn", width: float = 1.0, bias: bool | None = None) -> list[dict]:
    """Parameter counts of the paper's settings, built on the meta device (no memory, no init)."""
    rows = []
    for name, num_classes, input_size in PAPER_SETTINGS:
        with torch.device("meta"):
            model = build(name, num_classes, norm=norm, width=width, input_size=input_size, bias=bias)
        rows.append({"model": name, "num_classes": num_classes, "input_size": input_size, "norm": norm,
                     "bias": default_bias(norm) if bias is None else bias,
                     "width": width, "parameters": count_parameters(model)})
    return rows


__all__ = ["build", "count_parameters", "parameter_counts", "MODELS", "NORMS", "SpikingNet", "BasicBlock",
           "PAPER_SETTINGS"]
