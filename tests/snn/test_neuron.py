"""snn.LIF: the module over [T, B, ...] and what it exposes after a forward."""

import pytest
import torch

import snn
from kernels import lif_scan
from ..kernels.lif_check import runnable


@pytest.mark.parametrize("surrogate,alpha", [("tanh", 1.0), ("tanh", 10.0), ("rect", 1.0), ("dspike", 3.0)])
def test_forward_matches_lif_scan_and_exposes_u_mean_and_rate(surrogate, alpha):
    torch.manual_seed(0)
    x = torch.randn(3, 2, 5, 7) + 0.3
    lif = snn.LIF(surrogate=surrogate, alpha=alpha, backend="torch", sample_dims=2)
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


@pytest.mark.parametrize("backend", ["naive", *runnable("cpu")])
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
    with pytest.raises(ValueError, match=r"time-major"):
        snn.LIF()(torch.zeros(shape))


@pytest.mark.parametrize("shape", [(8, 3, 4, 4), (8, 6), (2, 3, 4, 5, 6, 7)])
def test_a_batch_that_cannot_be_time_major_is_refused(shape):
    """A single-step [B, C, H, W] or [B, F] batch (SpikingJelly's step_mode='s' habit) would scan
    over its batch dimension as if it were time: refused, naming the shape and the fix."""
    with pytest.raises(ValueError, match=r"time-major.*" + str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")):
        snn.LIF(backend="torch")(torch.zeros(shape))


@pytest.mark.parametrize("shape", [(4, 2, 8), (4, 2, 3, 5, 5)])
def test_the_paper_layouts_are_accepted_by_default(shape):
    assert snn.LIF(backend="torch")(torch.zeros(shape)).shape == shape


def test_sample_dims_states_the_layout_exactly():
    """With sample_dims=k exactly [T, B, *k dims] runs: the time dimension is explicit."""
    x = torch.full((3, 2, 4, 5), 0.6)
    spikes = snn.LIF(backend="torch", sample_dims=2)(x)
    assert spikes[0].eq(1).all()  # 0.6 >= vth 0.5 at t = 0: the scan ran over dim 0 as time
    assert snn.LIF(backend="torch", sample_dims=0)(torch.zeros(3, 7)).shape == (3, 7)
    for k, shape in ((2, (3, 2, 4)), (1, (3, 2, 4, 5)), (0, (3, 2, 1))):
        with pytest.raises(ValueError, match=rf"sample_dims={k}.*{2 + k} dimensions"):
            snn.LIF(sample_dims=k)(torch.zeros(shape))
    for bad in (-1, 1.0, True, "2"):
        with pytest.raises(ValueError, match="sample_dims"):
            snn.LIF(sample_dims=bad)


def _trained_mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(snn.TimeDistributed(torch.nn.Linear(6, 8, bias=False)), snn.LIF(backend="torch"),
                               snn.TimeDistributed(torch.nn.Linear(8, 3)))


def test_deepcopy_and_pickle_between_forward_and_backward():
    """A model copied after a forward with grad (a best-model snapshot in the middle of a step):
    the copy is made, pickles, holds the same weights and u_mean value without a graph, and the
    original's backward still gives the gradient it gives without the copy."""
    import copy
    import io

    x = torch.randn(4, 5, 6, generator=torch.Generator().manual_seed(1)) + 0.5
    grads = []
    for make_copy in (False, True):
        model = _trained_mlp()
        out = model(x)
        loss = out.square().sum() + 2.0 * snn.im_loss(model)
        if make_copy:
            twin = copy.deepcopy(model)
            buffer = io.BytesIO()
            torch.save(model, buffer)  # pickles the whole module
            assert twin[1].u_mean.grad_fn is None and torch.equal(twin[1].u_mean, model[1].u_mean.detach())
            assert all(torch.equal(a, b) for a, b in zip(twin.parameters(), model.parameters()))
            buffer.seek(0)
            loaded = torch.load(buffer, weights_only=False)
            assert torch.equal(loaded[1].u_mean, model[1].u_mean.detach())
            with pytest.raises(RuntimeError, match="copy made after its forward"):
                snn.im_loss(twin)  # the copy ran no forward with grad
            twin(x)
            snn.im_loss(twin).backward()  # after its own forward, the copy trains
        loss.backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        assert torch.equal(a, b)


def test_averaged_model_follows_training():
    """torch.optim.swa_utils.AveragedModel deep-copies the model when made and on each update:
    made after a training forward, updated after steps, its weights are the running mean of the
    trained weights (computed here by hand)."""
    from torch.optim.swa_utils import AveragedModel

    model = _trained_mlp()
    x = torch.randn(4, 5, 6, generator=torch.Generator().manual_seed(2)) + 0.5
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(x)  # a forward with grad before the copy: u_mean holds a graph
    swa = AveragedModel(model)
    history = [[p.detach().clone() for p in model.parameters()]]
    for _ in range(3):
        opt.zero_grad()
        (model(x).square().mean() + 2.0 * snn.im_loss(model)).backward()
        opt.step()
        swa.update_parameters(model)
        history.append([p.detach().clone() for p in model.parameters()])
    # AveragedModel's first update copies; later ones average: the mean of the 3 trained states.
    for i, p in enumerate(swa.module.parameters()):
        torch.testing.assert_close(p, sum(h[i] for h in history[1:]) / 3)


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
