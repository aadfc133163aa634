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


@pytest.mark.parametrize("kwargs,error,words", [
    ({"epochs": 0}, ValueError, "epochs"),
    ({"epochs": 2.5}, TypeError, "epochs"),
    ({"epochs": 5, "k_min": 0.0}, ValueError, "k_min"),
    ({"epochs": 5, "k_min": 5.0, "k_max": 2.0}, ValueError, "k_min must be <= k_max"),
])
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error, match=words):
        snn.ESG(model(), **kwargs)


def test_model_without_tanh_lif_is_rejected():
    with pytest.raises(ValueError, match="tanh"):
        snn.ESG(nn.Sequential(snn.LIF(surrogate="rect")), epochs=5)
