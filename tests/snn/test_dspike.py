"""Dspike temperature selection (Algorithm 1 of Li et al. 2021) and its cost accounting."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import snn
from snn.dspike import DspikeSchedule, select_temperature

B, DB = 3.0, 0.5


class TwoWeightNet(nn.Module):
    """1x1 conv with two weights (one per input channel) into Dspike LIFs, T = 1."""

    def __init__(self, w1, w2, b):
        super().__init__()
        self.conv = snn.TimeDistributed(nn.Conv2d(2, 1, 1, bias=False))
        with torch.no_grad():
            self.conv[0].weight.copy_(torch.tensor([w1, w2]).view(1, 2, 1, 1))
        self.lif = snn.LIF(surrogate="dspike", alpha=b, backend="torch")

    def forward(self, x):
        return self.lif(self.conv(x)).mean(0).flatten(1)  # [B, H*W]


@pytest.mark.parametrize("best", [B - DB, B, B + DB])
def test_picks_the_temperature_whose_surrogate_matches_the_finite_difference(best):
    """Channel 1 drives 8 neurons sitting at the threshold (u = vth, Dspike's x = u / (2 vth) = 1/2)
    with input 1; channel 2 drives 8 neurons at u = 0.2 vth (x = 0.1) with input a. With eps = 0.2
    every neuron flips under both perturbations, so the finite-difference gradient is proportional
    to (8, 8). The Dspike gradient is proportional to (8 g_b(1/2), 8 a g_b(0.1)) with
    g_b(x) ~ 1 / cosh^2(b (x - 1/2)), whose direction matches it exactly when a = cosh^2(0.4 b),
    i.e. at b = best; the ratio is monotone in b."""
    vth = 0.5
    a = math.cosh(0.4 * best) ** 2
    x = torch.zeros(1, 1, 2, 4, 4)  # [T, B, C, H, W]
    x[0, 0, 0, :2] = 1.0
    x[0, 0, 1, 2:] = a
    model = TwoWeightNet(vth, 0.2 * vth / a, B)
    choice = select_temperature(model, x, torch.zeros(1), lambda out, _: out.sum(), b=B, db=DB, eps=0.2)
    assert choice.b == best
    assert choice.similarity[best] == pytest.approx(1.0, abs=1e-6)
    assert all(s < choice.similarity[best] - 1e-4 for b, s in choice.similarity.items() if b != best)
    assert model.lif.alpha == best
    assert choice.forwards == 4 and choice.gradient_passes == 3


def reference_similarities(model, x, y, eps, candidates):
    """One-weight-at-a-time central differences and surrogate gradients, with plain loops."""
    weight = model.features[0][0][0].weight
    fd = torch.zeros(weight.numel(), dtype=torch.float64)
    with torch.no_grad():
        for j in range(weight.numel()):
            saved = weight.view(-1)[j].item()
            losses = []
            for sign in (1, -1):
                weight.view(-1)[j] = saved + sign * eps
                losses.append(F.cross_entropy(model(x, T=2), y).double())
            weight.view(-1)[j] = saved
            fd[j] = (losses[0] - losses[1]) / (2 * eps)
    similarity = {}
    for b in candidates:
        for m in snn.lif_layers(model):
            m.alpha = b
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x, T=2), y), weight)
        similarity[b] = F.cosine_similarity(grad.flatten().double(), fd, dim=0).item()
    return similarity


def test_batched_perturbations_equal_one_at_a_time_finite_differences():
    torch.manual_seed(0)
    model = snn.models.build("resnet19", 10, in_channels=1, norm="none", width=1 / 32, surrogate="dspike",
                             alpha=B, backend="torch")
    x, y = 3 * torch.randn(2, 1, 8, 8), torch.tensor([2, 5])
    model.eval()
    expected = reference_similarities(model, x, y, 0.05, (B, B - DB, B + DB))
    model.train()
    choice = select_temperature(model, x, y, F.cross_entropy, b=B, db=DB, eps=0.05, T=2, chunk=7)
    assert choice.similarity == pytest.approx(expected, abs=1e-6)
    assert choice.b == max(expected, key=expected.get)
    n = 4 * 1 * 3 * 3
    assert (choice.forwards, choice.model_calls) == (2 * n, math.ceil(n / 7))


@pytest.mark.parametrize("norm", ["tdbn", "bn"])
def test_reports_two_forwards_per_first_layer_weight_and_leaves_the_model_untouched(norm):
    torch.manual_seed(0)
    model = snn.models.build("resnet19", 10, norm=norm, width=1 / 16, surrogate="dspike", alpha=B, backend="torch")
    x, y = torch.randn(2, 3, 8, 8), torch.tensor([0, 1])
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 19
    stats = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in norms]
    choice = select_temperature(model, x, y, F.cross_entropy, b=B, db=DB, eps=0.05, T=1, chunk=64)
    n = 8 * 3 * 3 * 3  # stem: 8 output channels at width 1/16, 3 input channels, 3x3
    assert choice.forwards == 2 * n and choice.model_calls == math.ceil(n / 64)
    assert choice.seconds > 0 and set(choice.similarity) == {B - DB, B, B + DB}
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    for m, (mean, var, count) in zip(norms, stats):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
        assert torch.equal(m.num_batches_tracked, count)
    assert all(m.alpha == choice.b for m in snn.lif_layers(model))


def test_bad_arguments():
    tanh_model = snn.models.build("resnet19", 10, width=1 / 32)
    dspike_model = snn.models.build("resnet19", 10, width=1 / 32, surrogate="dspike", alpha=B)
    x, y = torch.randn(1, 3, 8, 8), torch.tensor([0])
    with pytest.raises(ValueError, match="dspike"):
        select_temperature(tanh_model, x, y, F.cross_entropy, T=1)
    with pytest.raises(ValueError, match="db must be < b"):
        select_temperature(dspike_model, x, y, F.cross_entropy, b=0.5, db=0.5, T=1)
    with pytest.raises(ValueError, match="eps"):
        select_temperature(dspike_model, x, y, F.cross_entropy, eps=-1.0, T=1)
    with pytest.raises(TypeError, match="model"):
        select_temperature(lambda v: v, x, y, F.cross_entropy, T=1)
    with pytest.raises(TypeError, match="Conv2d"):
        select_temperature(nn.Sequential(nn.Linear(2, 2), snn.LIF(surrogate="dspike")), x, y, F.cross_entropy)


def test_unchanged_loss_asks_for_a_larger_eps():
    model = TwoWeightNet(0.1, 0.1, B)  # membranes far below threshold: no perturbation flips a spike
    x = torch.ones(1, 1, 2, 2, 2)
    with pytest.raises(snn.dspike.FlatFiniteDifference, match="increase eps"):
        select_temperature(model, x, torch.zeros(1), lambda out, _: out.sum(), eps=1e-3)
    assert model.lif.alpha == B


def at_threshold_batch(best):
    """The input and model of the first test, whose finite difference matches Dspike at b = best."""
    vth, a = 0.5, math.cosh(0.4 * best) ** 2
    x = torch.zeros(1, 1, 2, 4, 4)
    x[0, 0, 0, :2] = 1.0
    x[0, 0, 1, 2:] = a
    return x, TwoWeightNet(vth, 0.2 * vth / a, B)


def test_equal_similarities_keep_the_current_temperature(monkeypatch):
    """Algorithm 1 moves b only for a strictly better match: with every candidate tied, b stays."""
    x, model = at_threshold_batch(B + DB)
    monkeypatch.setattr(F, "cosine_similarity", lambda *args, **kwargs: torch.tensor(0.5, dtype=torch.float64))
    choice = select_temperature(model, x, torch.zeros(1), lambda out, _: out.sum(), b=B, db=DB, eps=0.2)
    assert choice.b == B and set(choice.similarity) == {B - DB, B, B + DB}


@pytest.mark.parametrize("b0, db", [(3.0, 0.5), (1.0, 0.5), (0.8, 0.4), (0.3, 0.15)])
def test_schedule_shrinks_db_to_half_of_b_near_zero(monkeypatch, b0, db):
    """With DB = 0.5: db stays 0.5 while b >= 1 (b - db >= b / 2), and is b / 2 below (worked by hand)."""
    seen, real = [], snn.dspike.select_temperature

    def spy(*args, **kwargs):
        seen.append(kwargs["db"])
        return real(*args, **kwargs)

    monkeypatch.setattr(snn.dspike, "select_temperature", spy)
    x, model = at_threshold_batch(B)
    schedule = DspikeSchedule(model, b0=b0, db=DB, eps=0.2, loss_fn=lambda out, _: out.sum())
    schedule.step(x, torch.zeros(1))
    assert seen == [pytest.approx(db)]
    assert schedule.b in (pytest.approx(b0 - db), b0, pytest.approx(b0 + db))
    assert model.lif.alpha == schedule.b


def test_schedule_moves_b_and_records_the_cost():
    x, model = at_threshold_batch(B + DB)
    schedule = DspikeSchedule(model, b0=B, db=DB, eps=0.2, loss_fn=lambda out, _: out.sum())
    schedule.step(x, torch.zeros(1))
    assert schedule.b == B + DB and model.lif.alpha == B + DB
    assert schedule.cost["dspike_forwards"] == 4 and schedule.cost["dspike_skipped"] is None
    assert schedule.cost["dspike_seconds"] > 0 and "b" not in schedule.cost


def test_schedule_keeps_b_on_a_flat_finite_difference():
    model = TwoWeightNet(0.1, 0.1, B)  # no perturbation flips a spike
    schedule = DspikeSchedule(model, b0=B, db=DB, eps=1e-3, loss_fn=lambda out, _: out.sum())
    schedule.step(torch.ones(1, 1, 2, 2, 2), torch.zeros(1))
    assert schedule.b == B and model.lif.alpha == B
    assert "increase eps" in schedule.cost["dspike_skipped"] and schedule.cost["dspike_forwards"] == 4
