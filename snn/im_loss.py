"""IM-Loss (paper eq. 11): pull every layer's mean membrane potential to its threshold."""

from __future__ import annotations

import torch
from torch import nn

from .neuron import LIF, lif_layers


def restricted_layers(model: nn.Module) -> list[LIF]:
    """The im=True LIFs of model whose u_mean eq. 11 restricts, checked so that IM-Loss can never
    lose its gradient silently: the layers L of eq. 11 are those that have run a forward.

    Raises:
      ValueError: model has no im=True LIF.
      RuntimeError: none of them has run a forward; or a layer's u_mean is stale (a copy of the
        layer, an nn.DataParallel replica, ran a forward after the one that wrote it: the
        replicas' membranes never reach model, so the loss would restrict an earlier pass); or,
        while grad is enabled and the layer is training, its last forward ran without grad (under
        torch.no_grad(), or the layer is a copy made after its forward). A layer whose input needs
        no gradient (a frozen stem) ran with grad and is restricted as usual: its term is a
        constant. Each message names the layer.
    """
    every = lif_layers(model)  # TypeError when model is not an nn.Module
    named = [(name, m) for name, m in model.named_modules() if isinstance(m, LIF) and m.im]
    if not named:
        raise ValueError(f"model has no snn.LIF layer with im=True, so IM-Loss is undefined "
                         f"(got a {type(model).__name__} with {len(every)} LIF layers, none with im=True)")
    for name, m in named:
        if not m.u_mean_is_current:
            raise RuntimeError(
                f"IM-Loss: LIF layer {name!r} holds a stale u_mean: copies of it (torch.nn.DataParallel "
                f"replicas) ran {m._forwards.n - m._forward_index} forward(s) after the one that wrote it, and "
                f"their membranes never reach the wrapped model, so IM-Loss would restrict an earlier pass and "
                f"add no gradient. Train on one device or with DistributedDataParallel (torchrun -m snn.train); "
                f"snn.im_loss does not support nn.DataParallel.")
    ran = [(name, m) for name, m in named if m.u_mean is not None]
    if not ran:
        raise RuntimeError(f"none of the {len(named)} im=True LIF layers of model has run yet: "
                           f"call the model's forward before im_loss(model)")
    if torch.is_grad_enabled():
        for name, m in ran:
            if m.training and not m.forward_had_grad:
                raise RuntimeError(
                    f"IM-Loss: LIF layer {name!r} is training with grad enabled but its last forward ran "
                    f"without grad (under torch.no_grad() / torch.inference_mode(), or this model is a copy "
                    f"made after its forward), so IM-Loss would add no gradient. Run the forward with grad "
                    f"enabled before im_loss(model), or read the value under torch.no_grad() or in eval mode.")
    return [m for _, m in ran]


def im_loss(model: nn.Module) -> torch.Tensor:
    """sum_l (u_mean_l - vth_l)^2 / L over the `im=True` LIFs of model that have run a forward.

    L is the number of restricted layers, not of all LIF layers: in ResNet-19, 9 of its 17 LIFs
    (the stem and each block's output; the 8 inside residual branches have im=False), so each
    restricted layer weighs 1/9; dividing by all 17 would only scale the term, the same as a
    lambda 9/17 as large. Call it after the forward whose membranes it should restrict; each LIF
    keeps the `u_mean` of its latest call. The total loss of eq. 12 is
    `cross_entropy + lam * im_loss(model)` with lam = 2 in the paper. Returns a 0-d tensor,
    differentiable when the forward was. Raises as `restricted_layers` does, so that a stale or
    graph-less u_mean (e.g. under nn.DataParallel) is an error, never a silently missing gradient.
    """
    layers = restricted_layers(model)
    return im_term(torch.stack([m.u_mean for m in layers]), [m.vth for m in layers])


def im_term(u_means: torch.Tensor, vths: list[float]) -> torch.Tensor:
    """Eq. 11 on given layer means: sum_l (u_means[l] - vths[l])^2 / L, a 0-d tensor.

    u_means: [L] mean pre-reset membrane of each restricted layer; vths: their L thresholds."""
    return ((u_means - u_means.new_tensor(vths)) ** 2).mean()
