"""snn.ESG: eq. 15 schedule, applied to every LIF whose surrogate has a sharpness (tanh, atan, rect),
lr-scheduler-style state."""

import io

import math

import pytest
import torch
from torch import nn

import snn


def eq15(i, n, k_min=1.0, k_max=10.0):
    return ((10 ** (i / n) - 10 ** 0) * k_max + (10 ** 1 - 10 ** (i / n)) * k_min) / 9


def model():
    return nn.Sequential(snn.LIF(), nn.Sequential(snn.LIF(im=False), snn.LIF(surrogate="rect")), snn.LIF())


@pytest.mark.parametrize("n", [1, 7, 100])
def test_k_follows_eq15_at_start_middle_and_end(n):
    esg = snn.ESG(model(), epochs=n)
    seen = {0: esg.k}
    for i in range(1, n):
        esg.step()
        seen[i] = esg.k
    for i in {0, n // 2, n - 1}:
        assert seen[i] == pytest.approx(eq15(i, n))
    assert seen[0] == pytest.approx(1.0)
    assert all(seen[i] < seen[i + 1] for i in range(n - 1))
    esg.step()  # past the last epoch: K(N - 1) is kept
    assert esg.k == pytest.approx(eq15(n - 1, n))


def test_stepping_sets_alpha_on_every_lif_by_its_family():
    """tanh gets K, rect the window 2/K (the same peak slope K/2): values worked out by hand."""
    net = model()
    tanh = [m for m in snn.lif_layers(net) if m.surrogate == "tanh"]
    rect = next(m for m in snn.lif_layers(net) if m.surrogate == "rect")
    esg = snn.ESG(net, epochs=10, k_min=2.0, k_max=8.0)
    assert [m.alpha for m in tanh] == [2.0] * 3 and rect.alpha == 1.0  # 2 / 2
    before = [m.alpha for m in tanh]
    esg.step()
    # eq. 15 at i = 1, N = 10: (0.258925 * 8 + 8.741075 * 2) / 9
    k1 = ((10 ** 0.1 - 1) * 8.0 + (10 - 10 ** 0.1) * 2.0) / 9
    assert esg.k == pytest.approx(k1) and k1 == pytest.approx(2.172617, abs=1e-6)
    assert all(m.alpha == esg.k != b for m, b in zip(tanh, before))
    assert rect.alpha == pytest.approx(2 / k1) and rect.alpha == pytest.approx(0.920549, abs=1e-6)


@pytest.mark.parametrize("surrogate, k, alpha", [("tanh", 1.0, 1.0), ("tanh", 10.0, 10.0), ("rect", 1.0, 2.0),
                                                  ("rect", 10.0, 0.2), ("rect", 4.0, 0.5), ("atan", 3.0, 3.0)])
def test_esg_alpha_by_hand(surrogate, k, alpha):
    assert snn.esg_alpha(surrogate, k) == pytest.approx(alpha)


@pytest.mark.parametrize("surrogate", ["tanh", "rect", "atan"])
@pytest.mark.parametrize("k", [1.0, 3.5, 10.0])
def test_every_family_has_the_tanh_peak_slope_at_k(surrogate, k):
    """d phi / du at threshold, from each family's primitive (autograd, not the kernels): K / 2."""
    alpha = snn.esg_alpha(surrogate, k)
    x = torch.zeros((), dtype=torch.float64, requires_grad=True)
    phi = {"tanh": lambda x: 0.5 * torch.tanh(alpha * x) + 0.5,
           "atan": lambda x: torch.atan(math.pi / 2 * alpha * x) / math.pi + 0.5,
           "rect": lambda x: torch.clamp(x / alpha + 0.5, 0.0, 1.0)}[surrogate]
    (slope,) = torch.autograd.grad(phi(x), x)
    assert slope.item() == pytest.approx(k / 2)


def test_atan_lifs_get_k():
    net = nn.Sequential(snn.LIF(surrogate="atan"), snn.LIF(surrogate="rect"))
    esg = snn.ESG(net, epochs=4, k_min=2.0, k_max=6.0)
    esg.step()
    assert net[0].alpha == esg.k and net[1].alpha == pytest.approx(2 / esg.k)


def test_rect_model_alone_is_scheduled():
    """A model of rect LIFs only (SpikingJelly's ms_resnet, converted) gets the width 2/K."""
    net = nn.Sequential(snn.LIF(surrogate="rect", alpha=1.0))
    esg = snn.ESG(net, epochs=5, k_min=1.0, k_max=10.0)
    assert net[0].alpha == 2.0
    for _ in range(4):
        esg.step()
    k4 = (10 ** 0.8 - 1) * 10 / 9 + (10 - 10 ** 0.8) / 9  # eq. 15 at i = 4, N = 5
    assert net[0].alpha == pytest.approx(2 / esg.k) and esg.k == pytest.approx(k4)


def test_state_dict_round_trip():
    esg = snn.ESG(model(), epochs=20, k_min=1.5, k_max=9.0)
    for _ in range(7):
        esg.step()
    state = esg.state_dict()
    other_model = model()
    other = snn.ESG(other_model, epochs=3)
    other.load_state_dict(state)
    assert other.state_dict() == state
    assert other.k == esg.k
    assert all(m.alpha == snn.esg_alpha(m.surrogate, esg.k) for m in snn.lif_layers(other_model))
    esg.step()
    other.step()
    assert other.k == esg.k
    buffer = io.BytesIO()
    torch.save(state, buffer)  # a checkpoint holds it as plain data
    buffer.seek(0)
    assert torch.load(buffer) == state
    with pytest.raises(ValueError, match="last_epoch"):
        other.load_state_dict({"epochs": 3, "k_min": 1.0, "k_max": 10.0})


ALPHA_RANGE = r"in \[2\.35099e-38, 8\.50706e\+37\]"  # kernels.LIFParams' alpha range, [2^-125, 2^126]


@pytest.mark.parametrize("kwargs,error,words", [
    ({"epochs": 0}, ValueError, "epochs"),
    ({"epochs": 2.5}, TypeError, "epochs"),
    ({"epochs": True}, TypeError, "epochs"),
    ({"epochs": 5, "k_min": 0.0}, ValueError, "k_min"),
    ({"epochs": 5, "k_min": 5.0, "k_max": 2.0}, ValueError, "k_min must be <= k_max"),
    ({"epochs": 5, "k_max": float("inf")}, ValueError, "k_max must be a finite real number " + ALPHA_RANGE),
    ({"epochs": 5, "k_max": float("nan")}, ValueError, "k_max must be a finite real number"),
    ({"epochs": 5, "k_min": float("nan")}, ValueError, "k_min must be a finite real number"),
    ({"epochs": 5, "k_max": 1e38}, ValueError, "k_max must be a finite real number " + ALPHA_RANGE),
    ({"epochs": 5, "k_min": 1e-39}, ValueError, "k_min must be a finite real number " + ALPHA_RANGE),
    ({"epochs": 5, "k_max": "10"}, TypeError, "k_max"),
])
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error, match=words):
        snn.ESG(model(), **kwargs)


def test_model_without_a_scheduled_surrogate_is_rejected():
    with pytest.raises(ValueError, match="no snn.LIF"):
        snn.ESG(nn.Linear(2, 2), epochs=5)
    with pytest.raises(ValueError, match=r"layers 1 \('dspike'\).*rules: tanh, atan, rect.*select_temperature"):
        snn.ESG(nn.Sequential(snn.LIF(), snn.LIF(surrogate="dspike")), epochs=5)
    with pytest.raises(ValueError, match="no rule for surrogate 'dspike'"):
        snn.esg_alpha("dspike", 2.0)


@pytest.mark.parametrize("k", [2.0 ** -125, 2.0 ** 126])
def test_k_at_the_edges_of_the_alpha_range_reaches_the_lifs(k):
    """k_min = k_max = the smallest / largest alpha: K stays there at every epoch and the LIFs,
    which check their alpha at every forward, run with it."""
    m = model()
    esg = snn.ESG(m, epochs=7, k_min=k, k_max=k)
    for _ in range(7):
        assert esg.k == k
        m(torch.zeros(2, 1, 3))
        esg.step()


def test_k_stays_between_k_min_and_k_max():
    """Eq. 15 is a convex combination of k_min and k_max; its float rounding must not step
    outside them (unclamped, K(222) of 399 epochs with k_min = k_max = 3 is 2.9999999999999996)."""
    assert snn.esg_k(222, 399, 3.0, 3.0) == 3.0
    assert all(1.0 <= snn.esg_k(i, 50, 1.0, 10.0) <= 10.0 for i in range(50))


@pytest.mark.parametrize("args,error,words", [
    ((-1, 5), ValueError, "epoch must be an int >= 0"),
    ((0, 0), ValueError, "epochs must be an int >= 1"),
    ((0.5, 5), TypeError, "epoch must be an int"),
    ((0, 5, 1.0, float("inf")), ValueError, "k_max"),
])
def test_esg_k_rejects_bad_arguments(args, error, words):
    with pytest.raises(error, match=words):
        snn.esg_k(*args)


@pytest.mark.parametrize("bad,words", [({"k_max": float("inf")}, "k_max"), ({"epochs": 0}, "epochs"),
                                       ({"last_epoch": -1}, "last_epoch"), ({"last_epoch": 1.5}, "last_epoch")])
def test_load_state_dict_checks_the_values(bad, words):
    esg = snn.ESG(model(), epochs=3)
    state = {**esg.state_dict(), **bad}
    with pytest.raises((TypeError, ValueError), match=words):
        esg.load_state_dict(state)
