"""snn.im_loss (eq. 11) against a hand computation, and the paper's Fig. 2 claim."""

import pytest
import torch
from torch import nn

import snn


def membrane_mean(x, vth, decay):
    """Pre-reset membrane mean of a hard-reset LIF, by hand (eq. 5-6)."""
    u, o, total = torch.zeros_like(x[0]), torch.zeros_like(x[0]), 0.0
    for t in range(x.shape[0]):
        u = decay * u * (1 - o) + x[t]
        o = (u >= vth).float()
        total += u.sum().item()
    return total / x.numel()


class ThreeLIFs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = snn.LIF(vth=0.5, backend="torch")
        self.b = snn.LIF(vth=0.3, im=False, backend="torch")
        self.c = snn.LIF(vth=0.7, decay=0.5, backend="torch")

    def forward(self, xa, xb, xc):
        return self.a(xa), self.b(xb), self.c(xc)


def test_im_loss_equals_hand_computation_over_im_layers_only():
    torch.manual_seed(0)
    xs = [(torch.randn(4, 3, 10) + 0.2).requires_grad_() for _ in range(3)]
    model = ThreeLIFs()
    model(*xs)
    hand = ((membrane_mean(xs[0], 0.5, 0.25) - 0.5) ** 2 + (membrane_mean(xs[2], 0.7, 0.5) - 0.7) ** 2) / 2
    loss = snn.im_loss(model)
    assert loss.item() == pytest.approx(hand, rel=1e-5)
    loss.backward()
    assert xs[0].grad.abs().sum() > 0 and xs[2].grad.abs().sum() > 0
    assert xs[1].grad is None  # im=False: not in the loss


def test_im_loss_errors():
    with pytest.raises(ValueError, match="im=True"):
        snn.im_loss(nn.Sequential(nn.Linear(2, 2), snn.LIF(im=False)))
    with pytest.raises(RuntimeError, match="forward"):
        snn.im_loss(ThreeLIFs())
    with pytest.raises(TypeError, match="model"):
        snn.im_loss("model")


def test_im_loss_alone_revives_an_untrained_no_norm_cifarnet():
    """Fig. 2: spike rates of a random no-norm CIFARNet vanish in deep layers; a few SGD steps on
    IM-Loss alone bring every layer's membrane mean toward vth and the deep rates up toward 0.5."""
    torch.manual_seed(0)
    model = snn.models.build("cifarnet", 10, norm="none", width=1 / 8, input_size=16, backend="torch")
    x = torch.randn(8, 3, 16, 16)
    layers = snn.lif_layers(model)
    model(x, T=4)
    rates0 = [m.spike_rate for m in layers]
    gaps0 = [abs(m.u_mean.item() - m.vth) for m in layers]
    loss0 = snn.im_loss(model).item()
    assert max(rates0[-3:]) < 0.01  # collapsed
    optimizer = torch.optim.SGD(model.parameters(), lr=2.0)
    for _ in range(10):
        model(x, T=4)
        optimizer.zero_grad()
        snn.im_loss(model).backward()
        optimizer.step()
    model(x, T=4)
    rates = [m.spike_rate for m in layers]
    gaps = [abs(m.u_mean.item() - m.vth) for m in layers]
    assert snn.im_loss(model).item() < loss0 / 4
    assert all(g < g0 for g, g0 in zip(gaps, gaps0)), (gaps0, gaps)
    assert min(rates[-3:]) > 0.2, rates
    assert all(abs(r - 0.5) < abs(r0 - 0.5) for r, r0 in zip(rates, rates0)), (rates0, rates)
