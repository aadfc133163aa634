"""IM-Loss (paper eq. 11): pull every layer's mean membrane potential to its threshold."""

from __future__ import annotations

import torch
from torch import nn

from .neuron import lif_layers


def im_loss(model: nn.Module) -> torch.Tensor:
    """sum_l (u_mean_l - vth_l)^2 / L over the `im=True` LIFs of model that have run a forward.

    Call it after the forward whose membranes it should restrict; each LIF keeps the `u_mean`
    of its latest call. The total loss of eq. 12 is `cross_entropy + lam * im_loss(model)` with
    lam = 2 in the paper. Returns a 0-d tensor, differentiable when the forward was.
    """
    layers = [m for m in lif_layers(model) if m.im]
    if not layers:
        raise ValueError(f"model has no snn.LIF layer with im=True, so IM-Loss is undefined "
                         f"(got a {type(model).__name__} with {len(lif_layers(model))} LIF layers, none with im=True)")
    ran = [m for m in layers if m.u_mean is not None]
    if not ran:
        raise RuntimeError(f"none of the {len(layers)} im=True LIF layers of model has run yet: "
                           f"call the model's forward before im_loss(model)")
    return torch.stack([(m.u_mean - m.vth) ** 2 for m in ran]).mean()
