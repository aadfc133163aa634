"""SpikeRateMonitor: per-layer rates accumulated over batches (the data of Fig. 2)."""

import pytest
import torch
from torch import nn

import snn


def test_rates_weigh_batches_by_size_and_follow_layer_order():
    torch.manual_seed(0)
    model = nn.Sequential(snn.LIF(backend="torch"), snn.TimeDistributed(nn.Linear(6, 6)),
                          snn.LIF(im=False, backend="torch"))
    batches = [torch.randn(3, 2, 6) + 0.5, torch.randn(3, 5, 6) + 0.5]
    spikes = {"0": [], "2": []}
    with snn.SpikeRateMonitor(model) as monitor:
        for x in batches:
            s0 = model[0](x)
            spikes["0"].append(s0)
            spikes["2"].append(model[2](model[1](s0)))
        assert list(monitor.rates()) == ["0", "2"]
        assert monitor.im_flags() == {"0": True, "2": False}
    for name, seen in spikes.items():
        expected = sum(s.sum().item() for s in seen) / sum(s.numel() for s in seen)
        assert monitor.rates()[name] == pytest.approx(expected)
    model(batches[0])  # the hooks are removed on exit: this forward is not counted
    assert monitor.rates()["0"] == pytest.approx(
        sum(s.sum().item() for s in spikes["0"]) / sum(s.numel() for s in spikes["0"]))
    monitor.reset()
    assert monitor.rates() == {}


def test_model_without_lif_is_rejected():
    with pytest.raises(ValueError, match="LIF"):
        snn.SpikeRateMonitor(nn.Linear(2, 2))
