"""SpikingJelly's LIF op inside our networks, for the training-step comparison."""

from __future__ import annotations

import torch
from torch import nn

from snn import LIF


class SpikingJellyLIF(LIF):
    """An `snn.LIF` whose scan is SpikingJelly 2.0's `functional.lif_multi_step`, configured to the
    same math (see bench/lif_providers.py); its IM-Loss term reads the post-reset `v_seq` mean."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from spikingjelly.activation_based import functional, surrogate

        if self.surrogate != "tanh":
            raise ValueError("SpikingJellyLIF reproduces the tanh (ESG) surrogate only")
        spikes, _, v_seq = functional.lif_multi_step(
            x, torch.zeros_like(x[0], dtype=torch.float32), 1.0 / (1.0 - self.decay), False, self.vth,
            0.0 if self.reset == "hard" else None, surrogate.Sigmoid(alpha=2.0 * self.alpha), self.detach_reset, True)
        self.u_mean = v_seq.float().mean()
        self.forward_had_grad = torch.is_grad_enabled()
        self._rate = spikes.detach().mean(dtype=torch.float32)
        return spikes


def use_spikingjelly(model: nn.Module) -> nn.Module:
    """Replace every snn.LIF of model (in place) by a SpikingJellyLIF with the same settings."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LIF) and not isinstance(child, SpikingJellyLIF):
                setattr(parent, name, SpikingJellyLIF(vth=child.vth, decay=child.decay, surrogate=child.surrogate,
                                                      alpha=child.alpha, reset=child.reset,
                                                      detach_reset=child.detach_reset, im=child.im))
    return model
