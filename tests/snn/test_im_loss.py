"""snn.im_loss (eq. 11) against a hand computation, the paper's Fig. 2 claim, and the paths where
IM-Loss would lose its gradient without a word (nn.DataParallel replicas, a no-grad forward)."""

import copy
import sys

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


def two_lif_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6, bias=False), snn.LIF(backend="torch"), nn.Linear(6, 3, bias=False),
                         snn.LIF(backend="torch"))


@pytest.fixture
def cpu_replicate(monkeypatch):
    """torch.nn.parallel.replicate, nn.DataParallel's own replication, made to run on CPU: only its
    parameter broadcast (a CUDA collective) is replaced by views of the same parameters, which keep
    the autograd path to them as the broadcast does."""
    module = sys.modules["torch.nn.parallel.replicate"]
    monkeypatch.setattr(module, "_get_device_index", lambda device, optional=False: 0)
    monkeypatch.setattr(module, "_broadcast_coalesced_reshape", lambda tensors, devices, detach=False: [
        [t.detach() if detach else t.view_as(t) for t in tensors] for _ in devices])
    return lambda model, n: torch.nn.parallel.replicate(model, ["cpu"] * n)


def data_parallel_forward(replicate, model, x, n=2):
    """What nn.DataParallel.forward does with n devices: scatter the batch (dim 1 of [T, B, F]),
    replicate the model, run each replica on its chunk (parallel_apply, here in turn), gather."""
    replicas = replicate(model, n)
    return torch.cat([r(c) for r, c in zip(replicas, x.chunk(n, dim=1))], dim=1)


@pytest.mark.parametrize("earlier", ["no_grad", "grad"])
def test_im_loss_raises_on_the_stale_membranes_of_data_parallel_replicas(cpu_replicate, earlier):
    """The replicas' forward writes u_mean on the replicas; the wrapped model keeps that of an
    earlier pass (an evaluation under no_grad, or an earlier step), whose IM term carries no
    gradient to this step. It must raise, naming the layer, instead of adding a constant."""
    model = two_lif_net().train()
    x = torch.randn(3, 8, 4, generator=torch.Generator().manual_seed(1))
    with torch.set_grad_enabled(earlier == "grad"):
        model(x)
    logits = data_parallel_forward(cpu_replicate, model, x)
    assert logits.shape == (3, 8, 3) and logits.requires_grad
    with pytest.raises(RuntimeError, match=r"LIF layer '1' holds a stale u_mean.*DataParallel"):
        snn.im_loss(model)
    with torch.no_grad(), pytest.raises(RuntimeError, match="stale"):  # the value is stale too
        snn.im_loss(model)


def test_im_loss_raises_when_replicas_ran_before_any_forward_of_the_model(cpu_replicate):
    model = two_lif_net().train()
    data_parallel_forward(cpu_replicate, model, torch.randn(3, 8, 4))
    with pytest.raises(RuntimeError, match=r"'1' holds a stale u_mean: copies of it .* ran 2 forward"):
        snn.im_loss(model)


def test_a_forward_of_the_model_itself_makes_its_membranes_current_again(cpu_replicate):
    """After the replicas, one forward of the model (one device, or DDP, which runs the module
    itself) gives the hand-computed loss with a gradient; a deep copy's forwards are its own."""
    model = two_lif_net().train()
    twin = copy.deepcopy(model)
    x = torch.randn(3, 8, 4, generator=torch.Generator().manual_seed(2))
    data_parallel_forward(cpu_replicate, model, x)
    h1 = model[0](x)
    model(x)
    h2 = model[2](model[1](h1))  # the second LIF's input, recomputed
    hand = ((membrane_mean(h1.detach(), 0.5, 0.25) - 0.5) ** 2 + (membrane_mean(h2.detach(), 0.5, 0.25) - 0.5) ** 2) / 2
    loss = snn.im_loss(model)
    assert loss.item() == pytest.approx(hand, rel=1e-5)
    loss.backward()
    assert model[0].weight.grad.abs().sum() > 0
    twin(x)
    assert all(m.u_mean_is_current for m in snn.lif_layers(model))


def test_im_loss_raises_when_a_training_forward_ran_without_grad():
    model = two_lif_net().train()
    x = torch.randn(3, 8, 4)
    with torch.no_grad():
        model(x)
    with pytest.raises(RuntimeError, match=r"LIF layer '1' is training with grad enabled but its last forward "
                                           r"ran without grad"):
        snn.im_loss(model)
    with torch.no_grad():  # reading the value is fine
        value = snn.im_loss(model)
    assert snn.im_loss(model.eval()).item() == value.item()  # so is evaluating


def test_a_frozen_stem_trains_with_im_loss():
    """Fine-tuning with the first layers frozen: the first LIF's input needs no gradient, yet its
    forward ran with grad enabled, so IM-Loss is computed (that layer's term a constant) and the
    trainable layer gets the gradient of its own term, checked against the hand formula
    d/dW2 of (mean(u2) - vth)^2 / 2 computed through autograd on lif_scan alone."""
    from kernels import lif_scan

    model = two_lif_net().train()
    model[0].weight.requires_grad_(False)  # frozen stem
    x = torch.randn(3, 8, 4, generator=torch.Generator().manual_seed(4))
    model(x)
    assert not model[1].u_mean.requires_grad
    loss = snn.im_loss(model)
    loss.backward()
    assert model[0].weight.grad is None
    w2 = model[2].weight.detach().clone().requires_grad_()
    spikes1, u1 = lif_scan(x @ model[0].weight.T, backend="naive")
    _, u2 = lif_scan(spikes1 @ w2.T, backend="naive")
    (((u1 - 0.5) ** 2 + (u2 - 0.5) ** 2) / 2).backward()
    torch.testing.assert_close(model[2].weight.grad, w2.grad)


def test_im_loss_errors():
    with pytest.raises(ValueError, match="im=True"):
        snn.im_loss(nn.Sequential(nn.Linear(2, 2), snn.LIF(im=False)))
    with pytest.raises(RuntimeError, match="forward"):
        snn.im_loss(ThreeLIFs())
    with pytest.raises(TypeError, match="model"):
        snn.im_loss("model")


def test_im_loss_alone_revives_an_untrained_no_norm_cifarnet():
    """Fig. 2: spike rates of a random no-norm (bias-free) CIFARNet vanish in deep layers; a few SGD
    steps on IM-Loss alone bring every layer's membrane mean toward vth and the deeper rates toward 0.5."""
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
    # the first layer sees the fixed image: its membrane mean moves to vth (gaps above) while its
    # rate, set by the spread of a bias-free conv of that image, need not move (0.205 -> 0.203)
    assert all(abs(r - 0.5) < abs(r0 - 0.5) for r, r0 in zip(rates[1:], rates0[1:])), (rates0, rates)
