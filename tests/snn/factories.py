"""Model factories for `--model MODULE:FACTORY` tests (imported by name as tests.snn.factories:NAME)."""

from __future__ import annotations

from torch import nn

import snn
from snn.layers import TimeDistributed, as_sequence


class TinyLIFNet(nn.Module):
    """conv 3x3 -> LIF -> avgpool 2 -> flatten -> FC -> LIF -> FC; forward(x [B, C, H, W], T) -> [B, K]."""

    def __init__(self, num_classes, in_channels, input_size, channels=4, **lif):
        super().__init__()
        self.conv = TimeDistributed(nn.Conv2d(in_channels, channels, 3, padding=1))
        self.lif1 = snn.LIF(**lif)
        self.pool = TimeDistributed(nn.AvgPool2d(2), nn.Flatten())
        self.fc = nn.Linear(channels * (input_size // 2) ** 2, 16)
        self.lif2 = snn.LIF(**lif)
        self.head = nn.Linear(16, num_classes)

    def forward(self, x, T=None):
        s = self.pool(self.lif1(self.conv(as_sequence(x, T))))
        return self.head(self.lif2(self.fc(s))).mean(0)


def lif_net(num_classes, in_channels, input_size, vth, decay, surrogate, alpha, backend):
    """A small snn.LIF network built with the run's LIF settings."""
    return TinyLIFNet(num_classes, in_channels, input_size, vth=vth, decay=decay, surrogate=surrogate, alpha=alpha,
                      backend=backend)


def lif_net_wide(num_classes, in_channels, input_size, **settings):
    """lif_net with 6 channels (another network: a resume must refuse it)."""
    return TinyLIFNet(num_classes, in_channels, input_size, channels=6,
                      **{k: settings[k] for k in ("vth", "decay", "surrogate", "alpha", "backend")})


def sj_net(num_classes, in_channels, input_size, backend="auto"):
    """A SpikingJelly 2.0 network (multi-step LIFNode, Sigmoid surrogate), converted onto snn.LIF:
    time-major, [T, B, C, H, W] -> [T, B, K]."""
    from spikingjelly.activation_based import functional, layer, neuron

    from snn.interop.spikingjelly import convert

    net = nn.Sequential(
        layer.Conv2d(in_channels, 4, 3, padding=1, bias=False), layer.BatchNorm2d(4), neuron.LIFNode(tau=2.0),
        layer.AvgPool2d(2), layer.Flatten(), layer.Linear(4 * (input_size // 2) ** 2, 16), neuron.LIFNode(tau=2.0),
        layer.Linear(16, num_classes))
    functional.set_step_mode(net, "m")
    return convert(net, backend=backend)


class NoLIF(nn.Module):
    """An ANN: no snn.LIF at all (trains only with --im-lambda 0 and a fixed surrogate); forward(x, T)."""

    def __init__(self, num_classes, in_channels, input_size):
        super().__init__()
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(in_channels * input_size ** 2, num_classes))

    def forward(self, x, T=None):
        return self.fc(x)


def no_lif(num_classes, in_channels, input_size):
    return NoLIF(num_classes, in_channels, input_size)


def not_a_module():
    return "a string"


def broken(num_classes):
    raise RuntimeError(f"cannot build for {num_classes} classes")


NOT_CALLABLE = 3
