"""snn.LIF: the module over [T, B, ...] and what it exposes after a forward."""

import pytest
import torch

import snn
from kernels import lif_scan


@pytest.mark.parametrize("surrogate,alpha", [("tanh", 1.0), ("tanh", 10.0), ("rect", 1.0), ("dspike", 3.0)])
def test_forward_matches_lif_scan_and_exposes_u_mean_and_rate(surrogate, alpha):
    torch.manual_seed(0)
    x = torch.randn(3, 2, 5, 7) + 0.3
    lif = snn.LIF(surrogate=surrogate, alpha=alpha, backend="torch")
    assert lif.u_mean is None and lif.spike_rate is None
    spikes = lif(x)
    ref_spikes, ref_mean = lif_scan(x, surrogate=surrogate, alpha=alpha, backend="naive")
    assert torch.equal(spikes, ref_spikes)
    assert torch.allclose(lif.u_mean, ref_mean)
    assert isinstance(lif.spike_rate, float)
    assert lif.spike_rate == pytest.approx(ref_spikes.mean().item())


def test_compact_state_reaches_the_kernel():
    torch.manual_seed(2)
    x = (torch.randn(4, 2, 32) + 0.4).requires_grad_()
    grads = {}
    for compact in (False, True):
        lif = snn.LIF(compact_state=compact, backend="torch")
        grads[compact] = torch.autograd.grad(lif(x).sum() + lif.u_mean, x)[0]
    assert not torch.equal(grads[False], grads[True])  # the bf16 membrane shows in the gradient
    assert torch.allclose(grads[False], grads[True], rtol=0.05, atol=1e-3)


def test_u_mean_is_differentiable_and_surrogate_is_a_runtime_setting():
    torch.manual_seed(1)
    x = (torch.randn(4, 3, 16) + 0.4).requires_grad_()
    lif = snn.LIF(backend="torch")
    lif(x)
    (mean_grad,) = torch.autograd.grad(lif.u_mean, x)
    assert mean_grad.abs().sum() > 0
    grads = []
    for k in (1.0, 10.0):
        lif.alpha = k  # what ESG does between forwards
        grads.append(torch.autograd.grad(lif(x).sum(), x)[0])
    assert not torch.allclose(grads[0], grads[1])


RESET_PAIRS = [(reset, detach) for reset in ("hard", "soft") for detach in (False, True)]


@pytest.mark.parametrize("backend", ["naive", "torch"])
def test_reset_and_detach_reset_reach_lif_scan(backend):
    """The module's spikes and input gradient equal lif_scan's with the same reset and
    detach_reset, for every pair; the four pairs give four different gradients on this input,
    so a setting the module dropped would show."""
    g = torch.Generator().manual_seed(3)
    x = 0.6 * torch.randn(4, 2, 8, generator=g) + 0.4
    gs = torch.randn(x.shape, generator=g)
    grads = []
    for reset, detach_reset in RESET_PAIRS:
        xm = x.clone().requires_grad_()
        lif = snn.LIF(reset=reset, detach_reset=detach_reset, backend=backend)
        spikes = lif(xm)
        ((spikes * gs).sum() + 2.0 * lif.u_mean).backward()
        xr = x.clone().requires_grad_()
        ref_spikes, ref_mean = lif_scan(xr, reset=reset, detach_reset=detach_reset, backend="naive")
        ((ref_spikes * gs).sum() + 2.0 * ref_mean).backward()
        assert torch.equal(spikes, ref_spikes)
        torch.testing.assert_close(xm.grad, xr.grad, rtol=1e-5, atol=1e-6)
        grads.append(xr.grad)
    for i in range(len(grads)):
        for j in range(i):
            assert (grads[i] - grads[j]).abs().max() > 1e-2, (RESET_PAIRS[i], RESET_PAIRS[j])


@pytest.mark.parametrize("shape", [(5,), ()])
def test_input_without_batch_dimension_is_rejected(shape):
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        snn.LIF()(torch.zeros(shape))


def test_non_tensor_input_is_rejected():
    with pytest.raises(TypeError, match="torch.Tensor"):
        snn.LIF()([[0.0, 1.0]])


@pytest.mark.parametrize("kwargs,error,words", [
    ({"surrogate": "sigmoid"}, ValueError, "surrogate"),
    ({"backend": "cuda"}, ValueError, "backend"),
    ({"im": 1}, TypeError, "im"),
    ({"alpha": 0.0}, ValueError, "alpha"),
    ({"decay": 1.5}, ValueError, "decay"),
    ({"vth": "0.5"}, TypeError, "vth"),
    ({"compact_state": "yes"}, TypeError, "compact_state"),
    ({"compact_state": True, "backend": "naive"}, ValueError, "compact_state"),
])
def test_bad_settings_name_the_argument(kwargs, error, words):
    with pytest.raises(error, match=words):
        snn.LIF(**kwargs)


def test_lif_layers_lists_every_lif_in_order():
    a, b = snn.LIF(), snn.LIF(im=False)
    model = torch.nn.Sequential(torch.nn.Identity(), a, torch.nn.Sequential(b))
    assert snn.lif_layers(model) == [a, b]
    with pytest.raises(TypeError, match="model"):
        snn.lif_layers([a, b])
