"""snn.interop.spikingjelly.convert against SpikingJelly 2.0 itself: for every supported node
setting a converted model gives the original's spikes bit for bit (fp32) and its gradients to
fp32 rounding, also under torch.compile; every refused setting raises before the model is
touched; the state convention (no reset_net, one whole sequence per call)."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import snn

pytest.importorskip("spikingjelly", reason="SpikingJelly is an optional dependency (extra [spikingjelly])")

from spikingjelly.activation_based import functional, layer, neuron, surrogate  # noqa: E402

from snn.interop import spikingjelly as sj  # noqa: E402

from ..kernels.lif_check import fused_backends  # noqa: E402

# name -> a SpikingJelly node factory; tau != 2 wherever it leaks, so that decay = 1 - 1/tau and
# decay = 1/tau (a swapped mapping) differ.
SUPPORTED = {
    "lif-default": lambda: neuron.LIFNode(step_mode="m"),  # tau=2, decay_input, hard, Sigmoid(4)
    "lif-tau3-sigmoid2": lambda: neuron.LIFNode(tau=3.0, v_threshold=0.5, surrogate_function=surrogate.Sigmoid(2.0),
                                                step_mode="m"),
    "lif-tau4-soft-detach": lambda: neuron.LIFNode(tau=4.0, v_reset=None, detach_reset=True, step_mode="m"),
    "lif-no-decay-input": lambda: neuron.LIFNode(tau=3.0, decay_input=False, v_threshold=0.75,
                                                 surrogate_function=surrogate.Sigmoid(3.0), step_mode="m"),
    "lif-no-decay-input-soft": lambda: neuron.LIFNode(tau=1.5, decay_input=False, v_reset=None, step_mode="m"),
    "lif-rect": lambda: neuron.LIFNode(tau=3.0, surrogate_function=surrogate.Rect(2.0), step_mode="m"),
    "lif-piecewise-relu": lambda: neuron.LIFNode(tau=5.0, v_reset=None, surrogate_function=surrogate.PiecewiseLeakyReLU(
        w=0.5, c=0.0), step_mode="m"),
    "if-hard": lambda: neuron.IFNode(surrogate_function=surrogate.Sigmoid(3.0), step_mode="m"),
    "if-soft-detach-rect": lambda: neuron.IFNode(v_reset=None, detach_reset=True,
                                                 surrogate_function=surrogate.Rect(1.0), step_mode="m"),
    "plif-frozen": lambda: _frozen(neuron.ParametricLIFNode(init_tau=3.0, step_mode="m")),
    "plif-frozen-no-decay-input": lambda: _frozen(neuron.ParametricLIFNode(init_tau=2.5, decay_input=False,
                                                                           v_reset=None, step_mode="m")),
    # learnable tau (w trained) with SpikingJelly's tutorial default surrogate, as in its parametric_lif_net
    "plif-learnable-atan": lambda: neuron.ParametricLIFNode(init_tau=3.0, surrogate_function=surrogate.ATan(),
                                                            detach_reset=True, step_mode="m"),
    "plif-learnable-no-decay-input-soft": lambda: neuron.ParametricLIFNode(init_tau=2.5, decay_input=False,
                                                                           v_reset=None, step_mode="m"),
    "lif-atan": lambda: neuron.LIFNode(tau=3.0, surrogate_function=surrogate.ATan(3.0), step_mode="m"),
}


def _frozen(node):
    node.w.requires_grad_(False)
    return node


def conv_net(node, channels=(6, 8)) -> nn.Sequential:
    """A small SpikingJelly CIFARNet-like network: conv-BN-node twice (pooling), an FC head."""
    c1, c2 = channels
    return nn.Sequential(
        layer.SeqToANNContainer(nn.Conv2d(3, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1)), node(),
        layer.SeqToANNContainer(nn.Conv2d(c1, c2, 3, padding=1, bias=False), nn.BatchNorm2d(c2), nn.AvgPool2d(2)),
        node(),
        layer.SeqToANNContainer(nn.Flatten(), nn.Linear(c2 * 4 * 4, 10)),
    )


def _data(seed=0, T=4, batch=6):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, batch, 3, 8, 8, generator=g) * 2.0, torch.randint(0, 10, (batch,), generator=g)


def _neurons(model):
    return [m for m in model.modules() if isinstance(m, (neuron.BaseNode, snn.LIF))]


def run(model, x, y, reset=True):
    """One forward + CE backward: (spikes of every neuron layer, logits, every parameter's grad)."""
    if reset:
        functional.reset_net(model)
    model.zero_grad(set_to_none=True)
    spikes = []
    hooks = [m.register_forward_hook(lambda m, i, o: spikes.append(o.detach())) for m in _neurons(model)]
    try:
        logits = model(x).mean(0)
        F.cross_entropy(logits, y).backward()
    finally:
        for h in hooks:
            h.remove()
    return spikes, logits.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


def assert_same(original, converted, x, y):
    s0, l0, g0 = run(original, x, y)
    s1, l1, g1 = run(converted, x, y)
    assert len(s0) == len(s1) == 2
    for a, b in zip(s0, s1):
        assert 0 < a.mean() < 0.5, "the data must make the layer spike, and not everywhere"
        assert torch.equal(a, b), f"{(a != b).sum().item()} of {a.numel()} spikes differ"
    torch.testing.assert_close(l1, l0, rtol=1e-5, atol=1e-5)
    assert len(g0) == len(g1) > 0
    for a, b in zip(g0, g1):
        # fp32 rounding of the scan relative to the gradient's own scale
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5 * a.abs().max().item())


@pytest.mark.parametrize("setting", list(SUPPORTED))
def test_converted_matches_spikingjelly(setting):
    torch.manual_seed(0)
    original = conv_net(SUPPORTED[setting])
    converted = sj.convert(copy.deepcopy(original))
    assert len(snn.lif_layers(converted)) == 2 and not any(isinstance(m, neuron.BaseNode) for m in converted.modules())
    x, y = _data()
    assert_same(original, converted, x, y)


@pytest.mark.parametrize("setting", ["lif-default", "lif-tau3-sigmoid2", "lif-tau4-soft-detach", "lif-no-decay-input",
                                     "if-hard", "plif-frozen"])
def test_spikes_bit_exact_on_many_neurons(setting):
    """Where the two libraries round differently (decay_input=True, tau != 2) a spike could only
    differ an ulp from threshold: none does among 2^21 neuron-steps."""
    x = torch.randn(8, 1 << 18, generator=torch.Generator().manual_seed(11)) * 1.5 + 0.3
    with torch.no_grad():
        theirs = nn.Sequential(SUPPORTED[setting]())(x)
        ours = sj.convert(nn.Sequential(SUPPORTED[setting]()), example=x)(x)
    assert 0.01 < theirs.mean() < 0.5
    assert torch.equal(ours, theirs), f"{(ours != theirs).sum().item()} of {ours.numel()} spikes differ"


@pytest.mark.parametrize("backend", ["naive", *fused_backends("cpu")])
@pytest.mark.parametrize("setting", ["lif-tau3-sigmoid2", "plif-learnable-atan"])
def test_every_backend_matches(backend, setting):
    torch.manual_seed(1)
    original = conv_net(SUPPORTED[setting], channels=(4, 4))
    converted = sj.convert(copy.deepcopy(original), backend=backend)
    assert {m.backend for m in snn.lif_layers(converted)} == {backend}
    x, y = _data(seed=1, T=3, batch=4)
    assert_same(original, converted, x, y)


@pytest.mark.slow  # Inductor compiles both networks: ~7 s cached, ~35 s cold on 2 cores
def test_torch_compile_matches():
    """One compiled network holding two different settings (each compile costs ~10 s on CPU)."""
    torch.manual_seed(2)
    nodes = iter([SUPPORTED["lif-tau3-sigmoid2"], SUPPORTED["if-soft-detach-rect"]])
    original = conv_net(lambda: next(nodes)())
    converted = sj.convert(copy.deepcopy(original))
    x, y = _data(seed=2)
    s0, l0, g0 = run(torch.compile(original), x, y)
    functional.reset_net(original)
    s1, l1, g1 = run(torch.compile(converted, fullgraph=True), x, y)
    assert len(s0) == len(s1) == 2 and all(torch.equal(a, b) for a, b in zip(s0, s1))
    torch.testing.assert_close(l1, l0, rtol=1e-5, atol=1e-5)
    for a, b in zip(g0, g1):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5 * a.abs().max().item())


@pytest.mark.parametrize("shape", [(4, 6, 3, 10), (4, 30), (4, 2, 3, 2, 2, 2)])
def test_any_time_major_shape_like_spikingjelly(shape):
    """SpikingJelly's multi-step nodes take any [T, ...]; so does the converted layer once convert
    has seen the layout in an example call (e.g. after a Conv1d, [T, B, C, L]), spikes and input
    gradient equal to the original's. Without the example the layer refuses the rank rather than
    guess which dimension is time (snn.LIF's rule)."""
    x0 = torch.randn(shape, generator=torch.Generator().manual_seed(10)) * 2.0
    with pytest.raises(ValueError, match=r"time-major.*convert\(model, example=x\)"):
        sj.convert(nn.Sequential(SUPPORTED["lif-tau3-sigmoid2"]()))(x0)
    converted = sj.convert(nn.Sequential(SUPPORTED["lif-tau3-sigmoid2"]()), example=x0)
    assert converted[0].sample_dims == len(shape) - 2
    spikes, grads = [], []
    for model in (nn.Sequential(SUPPORTED["lif-tau3-sigmoid2"]()), converted):
        x = x0.clone().requires_grad_()
        s = model(x)
        (s * torch.arange(s.numel()).reshape(s.shape).cos()).sum().backward()
        spikes.append(s.detach())
        grads.append(x.grad)
    assert spikes[1].shape == x0.shape and 0 < spikes[0].mean() < 1
    assert torch.equal(spikes[0], spikes[1])
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-5 * grads[0].abs().max().item())


def _membrane_mean(node_factory, x):
    """Mean of SpikingJelly's pre-reset H, rebuilt with its public charge function from the
    post-reset v_seq it stores: H(t) = lif_charge(X(t), V(t-1))."""
    node = node_factory()
    node.store_v_seq = True
    node(x)
    v_prev = torch.cat([torch.zeros_like(x[:1]), node.v_seq[:-1]])
    h = functional.lif_charge(x, v_prev, node.tau, node.decay_input, node.v_reset)
    return h.mean()


@pytest.mark.parametrize("setting", ["lif-tau3-sigmoid2", "lif-tau4-soft-detach", "lif-no-decay-input"])
def test_u_mean_is_spikingjelly_pre_reset_membrane(setting):
    x = torch.randn(5, 7, 11, generator=torch.Generator().manual_seed(3)) + 0.5
    lif = sj.convert(nn.Sequential(SUPPORTED[setting]()))[0]
    lif(x)
    torch.testing.assert_close(lif.u_mean, _membrane_mean(SUPPORTED[setting], x), rtol=1e-6, atol=1e-6)


def test_mapping_table():
    """The documented parameters, from the settings alone."""
    m = sj.mapping_of(neuron.LIFNode(tau=4.0, v_threshold=0.5, v_reset=None, detach_reset=True,
                                     surrogate_function=surrogate.Sigmoid(3.0), step_mode="m"))
    assert (m.params.decay, m.input_gain, m.params.vth, m.params.reset, m.params.detach_reset) == (0.75, 0.25, 0.5,
                                                                                                  "soft", True)
    assert (m.params.surrogate, m.params.alpha) == ("tanh", 1.5)
    m = sj.mapping_of(neuron.LIFNode(tau=4.0, decay_input=False, step_mode="m"))
    assert (m.params.decay, m.input_gain, m.params.reset) == (0.75, 1.0, "hard")
    m = sj.mapping_of(neuron.IFNode(surrogate_function=surrogate.Rect(4.0), step_mode="m"))
    assert (m.params.decay, m.input_gain, m.params.surrogate, m.params.alpha) == (1.0, 1.0, "rect", 0.25)
    m = sj.mapping_of(neuron.IFNode(surrogate_function=surrogate.PiecewiseLeakyReLU(w=0.5, c=0), step_mode="m"))
    assert (m.params.surrogate, m.params.alpha) == ("rect", 1.0)
    m = sj.mapping_of(neuron.LIFNode(surrogate_function=surrogate.ATan(3.0), step_mode="m"))
    assert (m.params.surrogate, m.params.alpha) == ("atan", 3.0)
    plif = neuron.ParametricLIFNode(init_tau=4.0, step_mode="m")
    m = sj.mapping_of(plif)
    assert m.params.decay == pytest.approx(0.75) and m.plif is plif
    layer_ = m.build(im=True, backend="torch")
    assert layer_.w is plif.w and layer_.decay == pytest.approx(0.75) and layer_.decay_input


def test_surrogate_slope_is_half_of_sigmoid_alpha():
    """d/dx sigmoid(a x) equals the tanh surrogate's gradient at alpha = a / 2 (an independent
    autograd evaluation, not SpikingJelly's backward)."""
    u = torch.linspace(-2, 3, 101, dtype=torch.float64, requires_grad=True)
    a, vth = 3.0, 0.5
    (g_sigmoid,) = torch.autograd.grad(torch.sigmoid(a * (u - vth)).sum(), u)
    surrogate_name, alpha = sj.surrogate_of(surrogate.Sigmoid(a))
    (g_tanh,) = torch.autograd.grad((0.5 * torch.tanh(alpha * (u - vth)) + 0.5).sum(), u)
    assert surrogate_name == "tanh"
    torch.testing.assert_close(g_tanh, g_sigmoid)


def test_convert_keeps_modules_weights_and_mode():
    torch.manual_seed(4)
    model = conv_net(SUPPORTED["lif-default"]).eval()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    others = {name: m for name, m in model.named_modules()
              if not isinstance(m, (neuron.BaseNode, surrogate.SurrogateFunctionBase))}
    out = sj.convert(model, backend="torch", im=False)
    assert out is model
    assert isinstance(model[1], sj.ConvertedLIF) and isinstance(model[3], sj.ConvertedLIF)
    assert all(dict(model.named_modules())[name] is m for name, m in others.items())
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())
    assert all(not m.training and not m.im and m.backend == "torch" for m in snn.lif_layers(model))


def test_trains_with_im_loss_and_esg():
    """The README recipe on a SpikingJelly model: CE + 2 IM-Loss, ESG, a few SGD steps."""
    torch.manual_seed(5)
    model = sj.convert(conv_net(SUPPORTED["lif-default"]))
    esg = snn.ESG(model, epochs=2)
    assert all(m.alpha == esg.k == 1.0 for m in snn.lif_layers(model))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = _data(seed=5, batch=16)
    losses = []
    for epoch in range(2):
        for _ in range(4):
            optimizer.zero_grad()
            logits = model(x).mean(0)
            im = snn.im_loss(model)
            loss = F.cross_entropy(logits, y) + 2.0 * im
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        esg.step()
    assert all(m.alpha == esg.k > 1.0 for m in snn.lif_layers(model))
    assert losses[-1] < losses[0]


def test_sj_cifarnet_converts_and_trains():
    """The benchmark's SpikingJelly CIFARNet (7 LIFNode layers), narrow: converted, every node is
    an snn.LIF, and steps with CE + 2 IM-Loss under ESG lower the loss."""
    from bench.test_spikingjelly_convert import sj_cifarnet

    torch.manual_seed(13)
    model = sj.convert(sj_cifarnet(width=1 / 16))
    assert len(snn.lif_layers(model)) == 7 and not any(isinstance(m, neuron.BaseNode) for m in model.modules())
    esg = snn.ESG(model, epochs=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(13)
    x = torch.randn(4, 3, 32, 32, generator=g).unsqueeze(0).repeat(2, 1, 1, 1, 1)
    y = torch.randint(0, 10, (4,), generator=g)
    losses = []
    for _ in range(3):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x).mean(0), y) + 2.0 * snn.im_loss(model)
        loss.backward()
        optimizer.step()
        esg.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_docs_example_runs():
    """docs/spikingjelly.md's example, executed as written."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "spikingjelly.md").read_text()
    block = re.search(r"## Convert, then train.*?```python\n(.*?)```", text, re.S).group(1)
    namespace = {}
    torch.manual_seed(9)
    exec(compile(block, "docs/spikingjelly.md", "exec"), namespace)
    model, esg = namespace["model"], namespace["esg"]
    assert len(snn.lif_layers(model)) == 2 and not any(isinstance(m, neuron.BaseNode) for m in model.modules())
    assert all(m.alpha == esg.k > 1.0 for m in snn.lif_layers(model))
    assert namespace["loss"].isfinite()


def test_im_loss_gradient_reaches_the_weights():
    torch.manual_seed(6)
    model = sj.convert(conv_net(SUPPORTED["lif-tau3-sigmoid2"]))
    x, _ = _data(seed=6)
    model(x)
    snn.im_loss(model).backward()
    assert model[0][0].weight.grad.abs().sum() > 0


# --- state conventions -------------------------------------------------------------------------

def test_no_reset_net_needed():
    """SpikingJelly carries V into the next call unless reset_net runs; a converted model starts
    every call from zero, so it equals the original with reset_net before every call."""
    torch.manual_seed(7)
    original = conv_net(SUPPORTED["lif-tau3-sigmoid2"])
    converted = sj.convert(copy.deepcopy(original))
    x, _ = _data(seed=7)
    with torch.no_grad():
        first = converted(x)
        second = converted(x)
        functional.reset_net(converted)  # harmless: nothing to reset
        third = converted(x)
        functional.reset_net(original)
        reference = original(x)
        carried = original(x)  # no reset_net: V carried over
    assert torch.equal(first, second) and torch.equal(first, third)
    torch.testing.assert_close(first, reference, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(carried, reference, atol=1e-3), "SpikingJelly's state must carry over"


def test_one_step_per_call_restarts_the_membrane():
    """T = 1 per call (stepping a sequence) is each step on its own: the original with reset_net
    before every step, not the original stepping through the sequence."""
    torch.manual_seed(8)
    original = conv_net(SUPPORTED["lif-tau3-sigmoid2"])
    converted = sj.convert(copy.deepcopy(original))
    x, _ = _data(seed=8)
    with torch.no_grad():
        stepped = torch.cat([converted(x[t:t + 1]) for t in range(len(x))])
        restarted = []
        for t in range(len(x)):
            functional.reset_net(original)
            restarted.append(original(x[t:t + 1]))
        functional.reset_net(original)
        whole = original(x)
    torch.testing.assert_close(stepped, torch.cat(restarted), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(stepped, whole, atol=1e-3)


@pytest.mark.parametrize("dropout", ["Dropout", "Dropout2d"])
def test_dropout_becomes_stateless(dropout):
    """SpikingJelly's multi-step dropout keeps its mask until reset_net; the converted layer draws
    the same mask (same random numbers) once per call, so a model without reset_net still gets a
    fresh mask every call, shared by the T steps."""
    def model():
        return nn.Sequential(getattr(layer, dropout)(p=0.5, step_mode="m"), SUPPORTED["lif-tau3-sigmoid2"]())

    original, converted = model(), sj.convert(model())
    assert isinstance(converted[0], sj.SequenceDropout)
    x = torch.randn(4, 3, 5, 6, 6) + 1.0
    torch.manual_seed(12)
    functional.reset_net(original)
    theirs = original[0](x)
    torch.manual_seed(12)
    ours = converted[0](x)
    assert torch.equal(ours, theirs) and (ours == 0).any()
    assert torch.equal(ours[0] == 0, ours[3] == 0), "one mask for all T steps"
    if dropout == "Dropout2d":
        assert torch.equal((ours == 0).all(-1).all(-1), (ours == 0).any(-1).any(-1)), "whole channels"
    assert not torch.equal(converted[0](x) == 0, ours == 0), "a new mask in the next call"
    converted.eval()
    assert torch.equal(converted[0](x), x)


# --- refusals ----------------------------------------------------------------------------------

class SubLIF(neuron.LIFNode):
    pass


def _hooked():
    node = neuron.LIFNode(step_mode="m")
    node.register_forward_hook(lambda *args: None)
    return node


def _hooked_dropout():
    dropout = layer.Dropout(0.5, step_mode="m")
    dropout.register_forward_pre_hook(lambda *args: None)
    return dropout


def _precision():
    node = neuron.LIFNode(step_mode="m")
    node._neuron_precision = (torch.bfloat16, "fp32", "fp32")
    return node


REFUSED = {  # name -> (node factory, words the error must contain)
    "v_reset": (lambda: neuron.LIFNode(v_reset=0.5, step_mode="m"), "v_reset=0.5"),
    "single-step": (lambda: neuron.LIFNode(), "step_mode='s'"),
    "store_v_seq": (lambda: neuron.LIFNode(step_mode="m", store_v_seq=True), "store_v_seq=True"),
    "other-surrogate": (lambda: neuron.LIFNode(surrogate_function=surrogate.Erf(), step_mode="m"), "Erf"),
    "not-spiking": (lambda: neuron.LIFNode(surrogate_function=surrogate.Sigmoid(spiking=False), step_mode="m"),
                    "spiking=False"),
    "leaky-relu-slope": (lambda: neuron.LIFNode(surrogate_function=surrogate.PiecewiseLeakyReLU(c=0.01),
                                                step_mode="m"), "c=0.01"),
    "tensor-alpha": (lambda: neuron.LIFNode(surrogate_function=surrogate.Sigmoid(torch.tensor(4.0)), step_mode="m"),
                     "positive real"),
    "threshold": (lambda: neuron.LIFNode(v_threshold=float("inf"), step_mode="m"), "vth must be finite"),
    "hook": (_hooked, "forward hooks"),
    "precision": (_precision, "neuron precision"),
    "subclass": (lambda: SubLIF(step_mode="m"), "SubLIF"),
    "other-neuron": (lambda: neuron.IzhikevichNode(step_mode="m"), "IzhikevichNode"),
    "stateful-layer": (lambda: layer.SynapseFilter(step_mode="m"), "SynapseFilter"),
    "single-step-dropout": (lambda: layer.Dropout(0.5), "step_mode='s'"),
    "hooked-dropout": (_hooked_dropout, "forward pre-hooks"),
}


def _snapshot(model):
    return [(name, m) for name, m in model.named_modules()], {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("setting", list(REFUSED))
def test_refused_before_anything_changes(setting):
    factory, words = REFUSED[setting]
    nodes = iter([SUPPORTED["lif-default"], factory])  # a convertible node first: it must stay too
    model = conv_net(lambda: next(nodes)())
    modules, state = _snapshot(model)
    with pytest.raises(sj.ConversionError) as raised:
        sj.convert(model)
    message = str(raised.value)
    assert "3 (" in message and words in message, message  # the path of the refused module, the setting
    assert "  1 (" not in message  # the convertible one is not listed
    assert [(n, m) for n, m in model.named_modules()] == modules
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_every_refused_module_is_listed():
    nodes = iter([lambda: neuron.LIFNode(step_mode="m", v_reset=-1.0), lambda: neuron.IFNode()])
    model = conv_net(lambda: next(nodes)())
    with pytest.raises(sj.ConversionError, match=r"(?s)1 \(LIFNode\): v_reset=-1.0.*3 \(IFNode\): step_mode='s'"):
        sj.convert(model)


def test_checkpoint_wrapper_is_refused():
    from spikingjelly.activation_based.memopt import checkpointing

    model = conv_net(SUPPORTED["lif-default"])
    model[1] = checkpointing.checkpoint_module(model[1])
    with pytest.raises(sj.ConversionError, match="checkpoint wrapper '1'"):
        sj.convert(model)


def test_compiled_model_is_refused():
    with pytest.raises(sj.ConversionError, match="torch.compile"):
        sj.convert(torch.compile(conv_net(SUPPORTED["lif-default"])))


def test_bad_arguments():
    with pytest.raises(sj.ConversionError, match="no SpikingJelly neuron"):
        sj.convert(nn.Linear(2, 2))
    with pytest.raises(sj.ConversionError, match="no SpikingJelly neuron"):
        sj.convert(sj.convert(conv_net(SUPPORTED["lif-default"])))  # already converted
    with pytest.raises(TypeError, match="torch.nn.Module"):
        sj.convert("model")
    with pytest.raises(ValueError, match="backend must be one of"):
        sj.convert(conv_net(SUPPORTED["lif-default"]), backend="cuda")
    with pytest.raises(TypeError, match="im must be a bool"):
        sj.convert(conv_net(SUPPORTED["lif-default"]), im=1)
    with pytest.raises(ValueError, match="input_gain"):
        sj.ConvertedLIF(input_gain=1.5)
    with pytest.raises(ValueError, match=r"time-major.*\(5,\)"):
        sj.convert(nn.Sequential(neuron.LIFNode(step_mode="m")))(torch.ones(5))
    with pytest.raises(ValueError, match="step_mode must be 'm'.*or 's'.*got 'x'"):
        sj.ConvertedLIF(step_mode="x")
    with pytest.raises(ValueError, match="example.*failed"):
        sj.convert(conv_net(SUPPORTED["lif-default"]), example=torch.ones(2, 2, 5))


# --- single-step mode, a node used twice, a bare node ---------------------------------------------

def step_net(node) -> nn.Sequential:
    """conv_net with SpikingJelly's step-mode layers (SeqToANNContainer has no single-step mode),
    BN's scale and the second convolution enlarged so that both layers spike."""
    model = nn.Sequential(
        layer.Conv2d(3, 6, 3, padding=1, bias=False, step_mode="m"), layer.BatchNorm2d(6, step_mode="m"), node(),
        layer.Conv2d(6, 8, 3, padding=1, bias=False, step_mode="m"), layer.AvgPool2d(2, step_mode="m"), node(),
        layer.Flatten(step_mode="m"), layer.Linear(8 * 4 * 4, 10, step_mode="m"),
    )
    with torch.no_grad():  # 10-45% of neurons spike in both layers for each setting tested
        model[1].weight.mul_(3.0)
        model[3].weight.mul_(24.0)
    return model


def run_steps(model, x, y, sequences=1):
    """set_step_mode 's', reset_net, then `sequences` times: each step of x through model one call
    at a time (reset_net only before the first sequence, so state carries into the next); a CE
    backward on all logits: (logits [sequences, T, B, 10], every parameter's grad)."""
    functional.set_step_mode(model, "s")
    functional.reset_net(model)
    model.zero_grad(set_to_none=True)
    logits = torch.stack([torch.stack([model(x[t]) for t in range(len(x))]) for _ in range(sequences)])
    F.cross_entropy(logits.mean(1).flatten(0, 1), y.repeat(sequences)).backward()
    return logits.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


STEPPED = {**SUPPORTED,  # a soft reset with vth != 1, so that V - vth S and V - S differ
           "lif-soft-vth": lambda: neuron.LIFNode(tau=2.5, v_reset=None, v_threshold=0.75, step_mode="m")}


@pytest.mark.parametrize("setting", ["lif-tau3-sigmoid2", "lif-tau4-soft-detach", "lif-no-decay-input",
                                     "if-soft-detach-rect", "plif-frozen", "lif-soft-vth"])
def test_single_step_mode_equals_spikingjelly_step_by_step(setting):
    """After functional.set_step_mode(model, 's') a converted model steps one [B, C, H, W] time
    step per call with its membrane kept between calls, as SpikingJelly does: equal logits at
    every step, and gradients (backpropagated through the kept state: BPTT) to fp32 rounding.
    Two sequences without reset_net in between: the state carries into the second too."""
    torch.manual_seed(20)
    original = step_net(STEPPED[setting])
    converted = sj.convert(copy.deepcopy(original))
    x, y = _data(seed=20)
    l0, g0 = run_steps(original, x, y, sequences=2)
    l1, g1 = run_steps(converted, x, y, sequences=2)
    assert all(m.step_mode == "s" for m in snn.lif_layers(converted))
    assert not torch.allclose(l0[0], l0[1], atol=1e-3), "the data must make the carried state matter"
    torch.testing.assert_close(l1, l0, rtol=1e-5, atol=1e-5)
    for a, b in zip(g0, g1):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5 * a.abs().max().item())


def test_single_step_state_is_reset_by_reset_net_and_cut_by_detach_net():
    torch.manual_seed(21)
    model = sj.convert(step_net(SUPPORTED["lif-tau3-sigmoid2"]))
    x, _ = _data(seed=21)
    functional.set_step_mode(model, "s")
    with torch.no_grad():
        functional.reset_net(model)
        first = torch.stack([model(x[t]) for t in range(len(x))])
        carried = torch.stack([model(x[t]) for t in range(len(x))])
        functional.reset_net(model)
        again = torch.stack([model(x[t]) for t in range(len(x))])
    assert torch.equal(first, again) and not torch.equal(first, carried)
    lif = model[2]
    assert lif.reset == "hard" and lif.params.reset == "hard"  # still the reset rule as a setting
    model(x[0])
    assert lif._u_prev.requires_grad
    functional.detach_net(model)
    assert not lif._u_prev.requires_grad and not lif._o_prev.requires_grad


def test_a_batch_is_never_scanned_as_time():
    """A single-step batch [B, C, H, W] fed to a multi-step converted layer is refused (before:
    scanned over B as if it were time), also after a multi-step model was switched partly."""
    model = sj.convert(step_net(SUPPORTED["lif-default"]))
    x, _ = _data(seed=22)
    with pytest.raises(ValueError, match=r"time-major.*\(6, 6, 8, 8\)"):
        model[2](model[1](model[0](x))[0])  # one step's [B, C, H, W] into a multi-step layer
    functional.set_step_mode(model, "s")
    with pytest.raises(ValueError, match=r"one time step.*\(4, 6, 3, 8, 8\).*multi-step mode"):
        model[2](x)  # a whole [T, B, C, H, W] sequence into a single-step layer


def test_mixing_modes_and_shapes_needs_reset_net():
    model = sj.convert(step_net(SUPPORTED["lif-default"]))
    x, _ = _data(seed=23)
    functional.set_step_mode(model, "s")
    functional.reset_net(model)
    model(x[0])
    with pytest.raises(ValueError, match=r"'2' got a step of shape \(3, 6, 8, 8\).*reset_net"):
        model(x[0, :3])
    functional.set_step_mode(model, "m")
    with pytest.raises(RuntimeError, match="'2' holds the membrane of single-step calls.*reset_net"):
        model(x)
    functional.reset_net(model)
    assert model(x).shape == (4, 6, 10)


def test_single_step_dropout_keeps_its_mask_until_reset_net():
    def model():
        return nn.Sequential(layer.Dropout(p=0.5, step_mode="m"), SUPPORTED["lif-tau3-sigmoid2"]())

    original, converted = model(), sj.convert(model())
    for m in (original, converted):
        functional.set_step_mode(m, "s")
        functional.reset_net(m)
    x = torch.randn(3, 5, 6) + 1.0
    torch.manual_seed(24)
    theirs = [original[0](x[t]) for t in range(3)]
    torch.manual_seed(24)
    ours = [converted[0](x[t]) for t in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs)) and (ours[0] == 0).any()
    assert torch.equal(ours[0] == 0, ours[2] == 0), "one mask for the whole sequence"
    functional.reset_net(converted)
    assert not torch.equal(converted[0](x[0]) == 0, ours[0] == 0), "a new mask after reset_net"


class Twice(nn.Module):
    """One node called twice per forward: SpikingJelly carries its membrane into the second call."""

    def __init__(self):
        super().__init__()
        self.fc = layer.Linear(5, 5, step_mode="m")
        with torch.no_grad():
            self.fc.weight.mul_(6.0)
        self.sn = SUPPORTED["lif-tau3-sigmoid2"]()

    def forward(self, x):
        return self.sn(self.fc(self.sn(x)))


def test_a_node_registered_twice_is_refused():
    model = conv_net(SUPPORTED["lif-default"])
    model.add_module("again", model[1])
    modules, state = _snapshot(model)
    with pytest.raises(sj.ConversionError, match=r"registered at 2 paths \(1, again\).*copy.deepcopy"):
        sj.convert(model)
    assert [(n, m) for n, m in model.named_modules()] == modules


def test_a_node_called_twice_in_one_forward_is_refused_multi_step_and_exact_single_step():
    torch.manual_seed(25)
    original = Twice()
    converted = sj.convert(copy.deepcopy(original))
    x = torch.randn(4, 3, 5) * 3 + 1
    with pytest.raises(RuntimeError, match=r"'sn' is called a second time within one forward.*copy.deepcopy"):
        converted(x)
    converted.sn(x), converted.sn(x)  # outside a forward of the model each call is a whole sequence
    functional.set_step_mode(converted, "s")
    functional.set_step_mode(original, "s")
    outs = []
    for model in (original, converted):
        functional.reset_net(model)
        xs = x.clone().requires_grad_()
        out = torch.stack([model(xs[t]) for t in range(4)])
        (out * torch.arange(out.numel()).reshape(out.shape).sin()).sum().backward()
        outs.append((out.detach(), xs.grad))
    assert torch.equal(outs[0][0], outs[1][0]) and 0 < outs[0][0].mean() < 1
    torch.testing.assert_close(outs[1][1], outs[0][1], rtol=1e-4, atol=1e-6)


def test_a_bare_node_is_converted():
    node = SUPPORTED["lif-tau3-sigmoid2"]()
    lif = sj.convert(node)
    assert isinstance(lif, sj.ConvertedLIF) and isinstance(node, neuron.LIFNode)
    x = torch.randn(4, 3, 5) * 2
    with torch.no_grad():
        assert torch.equal(lif(x), node(x))


# --- SpikingJelly's zoo ResNets: exact, and IM-Loss's layer choice --------------------------------

# The residual rule worked out per block from SpikingJelly's forward code: spiking_resnet's sn1
# fires inside the branch, sn2 on branch + shortcut; SEW's sn1 and sn2 both fire inside the branch
# (the block outputs the sum), downsample_sn on the shortcut; MS-ResNet's spike1 and spike2 both
# open the branch's convolutions (the membrane shortcut has no neuron), head_lif is outside.
BLOCKS = [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
IM_FALSE = {"spiking_resnet18": [f"{b}.sn1" for b in BLOCKS],
            "sew_resnet18": [f"{b}.{n}" for b in BLOCKS for n in ("sn1", "sn2")],
            "ms_resnet18": [f"{b}.{n}" for b in BLOCKS for n in ("spike1", "spike2")]}
IM_TRUE = {"spiking_resnet18": ["sn1"] + [f"{b}.sn2" for b in BLOCKS],
           "sew_resnet18": ["sn1", "layer2.0.downsample_sn", "layer3.0.downsample_sn", "layer4.0.downsample_sn"],
           "ms_resnet18": ["head_lif"]}


@pytest.mark.parametrize("name", list(IM_FALSE))
def test_zoo_resnets_leave_residual_branches_out_of_im_loss(name):
    from bench.test_spikingjelly_convert import zoo_model

    torch.manual_seed(26)
    original = zoo_model(name)
    converted = sj.convert(copy.deepcopy(original))
    flags = {path: m.im for path, m in converted.named_modules() if isinstance(m, snn.LIF)}
    assert sorted(p for p, im in flags.items() if not im) == sorted(IM_FALSE[name])
    assert sorted(p for p, im in flags.items() if im) == sorted(IM_TRUE[name])
    assert sorted(sj.residual_branches(original)) == sorted(IM_FALSE[name])
    assert not any(m.im for m in snn.lif_layers(sj.convert(copy.deepcopy(original), im=False)))
    x = torch.randn(2, 2, 3, 32, 32, generator=torch.Generator().manual_seed(26)) * 2
    y = torch.tensor([1, 7])
    outputs, grads = [], []
    for model in (original, converted):
        functional.reset_net(model)
        model.zero_grad(set_to_none=True)
        out = model(x)
        out = out if out.dim() == 2 else out.mean(0)  # ms_resnet averages over T itself
        F.cross_entropy(out, y).backward()
        outputs.append(out.detach())
        grads.append([p.grad for p in model.parameters() if p.grad is not None])
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)
    assert len(grads[0]) == len(grads[1]) > 0
    scale = max(a.abs().max().item() for a in grads[0])  # a BN deep in the net has grads 1e-6 of the rest
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5 * scale)
    loss = snn.im_loss(converted)
    assert loss.isfinite()


@pytest.mark.parametrize("setting", ["plif-frozen", "plif-learnable-atan", "lif-default"])
def test_state_dict_loads_strictly_both_ways(setting):
    """A converted model's state_dict (PLIF's w under its own key) loads strictly into the
    SpikingJelly model and back; a trained w travels."""
    torch.manual_seed(4)
    original = conv_net(SUPPORTED[setting])
    converted = sj.convert(copy.deepcopy(original))
    with torch.no_grad():
        for p in converted.parameters():
            p.add_(0.125)  # "training": every parameter moves, w included
    fresh = conv_net(SUPPORTED[setting])
    fresh.load_state_dict(converted.state_dict(), strict=True)
    for (name, a), (_, b) in zip(fresh.state_dict().items(), converted.state_dict().items()):
        assert torch.equal(a, b), name
    back = sj.convert(conv_net(SUPPORTED[setting]))
    back.load_state_dict(original.state_dict(), strict=True)
    assert sorted(back.state_dict()) == sorted(original.state_dict())


def test_learnable_plif_trains_w_like_spikingjelly():
    """Three SGD steps on a learnable PLIF model: w (and every weight) moves as in SpikingJelly."""
    torch.manual_seed(5)
    original = conv_net(SUPPORTED["plif-learnable-atan"])
    converted = sj.convert(copy.deepcopy(original))
    x, y = _data()
    for model in (original, converted):
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        for _ in range(3):
            functional.reset_net(model)
            opt.zero_grad()
            F.cross_entropy(model(x).mean(0), y).backward()
            opt.step()
    w0 = [m.w for m in original.modules() if isinstance(m, neuron.ParametricLIFNode)]
    w1 = [m.w for m in snn.lif_layers(converted)]
    assert len(w0) == len(w1) == 2 and all(a.item() != -math.log(2.0) for a in w0)  # w moved from init_tau=3
    for a, b in zip(w0, w1):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


def test_converted_plif_decay_is_read_only():
    lif = sj.convert(nn.Sequential(neuron.ParametricLIFNode(step_mode="m")))[0]
    with pytest.raises(AttributeError, match="assign w"):
        lif.decay = 0.5
