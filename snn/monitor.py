"""Per-layer spike rates over many batches: the data of the paper's Fig. 2."""

from __future__ import annotations

import torch
from torch import nn

from .neuron import LIF


class SpikeRateMonitor:
    """Accumulates the spike rate of every LIF of model over the forwards it sees.

        with SpikeRateMonitor(model) as monitor:
            for x, _ in loader:
                model(x, T=4)
        monitor.rates()   # {'features.1': 0.21, ...} in layer order

    Each layer's rate is its total spike count over its total number of neuron-timesteps, so
    batches of different sizes weigh by size. Counts stay on the device until read.
    """

    def __init__(self, model: nn.Module):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.layers: dict[str, LIF] = {name: m for name, m in model.named_modules() if isinstance(m, LIF)}
        if not self.layers:
            raise ValueError(f"model has no snn.LIF layer to monitor (got a {type(model).__name__})")
        self._spikes: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}
        self._handles = [m.register_forward_hook(self._hook(name)) for name, m in self.layers.items()]

    def _hook(self, name: str):
        def record(module, inputs, spikes):
            total = spikes.detach().sum(dtype=torch.float64)
            self._spikes[name] = self._spikes[name] + total if name in self._spikes else total
            self._counts[name] = self._counts.get(name, 0) + spikes.numel()
        return record

    def rates(self) -> dict[str, float]:
        """Layer name -> mean spike rate over the forwards seen, for the layers that ran."""
        return {name: (self._spikes[name] / self._counts[name]).item() for name in self.layers if name in self._counts}

    def im_flags(self) -> dict[str, bool]:
        """Layer name -> whether IM-Loss restricts it (to mark the layers in a Fig. 2 plot)."""
        return {name: m.im for name, m in self.layers.items()}

    def reset(self) -> None:
        self._spikes.clear()
        self._counts.clear()

    def remove(self) -> None:
        """Detach from the model (the rates seen so far stay readable)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> "SpikeRateMonitor":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
