"""snn.ESG: eq. 15 schedule, applied to every tanh LIF, lr-scheduler-style state."""

import io

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


def test_stepping_sets_alpha_on_every_tanh_lif_and_only_those():
    net = model()
    tanh = [m for m in snn.lif_layers(net) if m.surrogate == "tanh"]
    rect = next(m for m in snn.lif_layers(net) if m.surrogate == "rect")
    esg = snn.ESG(net, epochs=10, k_min=2.0, k_max=8.0)
    assert [m.alpha for m in tanh] == [2.0] * 3
    before = [m.alpha for m in tanh]
    esg.step()
    assert all(m.alpha == esg.k != b for m, b in zip(tanh, before))
    assert esg.k == pytest.approx(eq15(1, 10, 2.0, 8.0))
    assert rect.alpha == 1.0


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
    assert all(m.alpha == esg.k for m in snn.lif_layers(other_model) if m.surrogate == "tanh")
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


def test_model_without_tanh_lif_is_rejected():
    with pytest.raises(ValueError, match="tanh"):
        snn.ESG(nn.Sequential(snn.LIF(surrogate="rect")), epochs=5)


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
