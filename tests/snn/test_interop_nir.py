"""snn.interop.nir against NIR itself and against snnTorch and Norse, whose own NIR export and
import are the other side of every cross-library test. Exactness: equal spikes in fp32 on the
tested inputs; the only tolerance is Norse's Euler step, v + dt/tau (x - v), which rounds
differently from the kernels' decay u + gain x (stated in docs/nir.md; no spike differs here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import snn

nir = pytest.importorskip("nir", reason="NIR is an optional dependency (extra [nir])")

from snn.interop import nir as snir  # noqa: E402

T, B = 30, 6


def run_stepwise(module, x, stateful=True):
    """A library's single-step module over x [T, B, ...] -> stacked outputs; stateful: it takes and
    returns its state (Norse, nirtorch's executors), else it keeps it (snnTorch's init_hidden)."""
    state, out = None, []
    for t in range(x.shape[0]):
        if stateful:
            o, state = module(x[t], state)
        else:
            o = module(x[t])
        out.append(o)
    return torch.stack(out)


def our_model(decay=0.8, vth=0.7, gain=1.0):
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(12, 20), snir.NIRLIF(input_gain=gain, vth=vth, decay=decay),
                         nn.Linear(20, 7, bias=False), snir.NIRLIF(input_gain=gain, vth=vth, decay=decay))


def inputs(*shape, scale=1.5):
    return torch.randn(T, B, *shape, generator=torch.Generator().manual_seed(2)) * scale


# ---------------------------------------------------------------- ours -> NIR -> ours

def conv_model():
    torch.manual_seed(3)
    return nn.Sequential(
        snn.TimeDistributed(nn.Conv2d(2, 4, 3, padding=1)), snn.LIF(vth=0.5, decay=0.6),
        snn.TimeDistributed(nn.AvgPool2d(2)), snn.TimeDistributed(nn.Conv2d(4, 4, 3, stride=1, padding=1)),
        snn.LIF(vth=0.4, decay=1.0),  # an IF neuron
        snn.TimeDistributed(nn.AvgPool2d(2, divisor_override=1), nn.Flatten(), nn.Linear(16, 5)),
        snn.LIF(vth=0.3, decay=0.0))


@pytest.mark.parametrize("make, shape", [(our_model, (12,)), (conv_model, (2, 8, 8))], ids=["fc", "conv"])
def test_round_trip_is_identical(make, shape, tmp_path):
    model, x = make(), inputs(*shape)
    graph = snir.export(model, x, dt=1e-4)
    path = tmp_path / "model.nir"
    nir.write(path, graph)
    back = snir.load(path, dt=1e-4)
    assert torch.equal(back(x), model(x))
    ours = [m for m in model.modules() if isinstance(m, snn.LIF)]
    theirs = [m for m in back.modules() if isinstance(m, snn.LIF)]
    def fp32(m):  # the values the kernels compute with
        return tuple(np.float32(v) for v in (m.vth, m.decay, getattr(m, "input_gain", 1.0)))
    assert [fp32(m) for m in ours] == [fp32(m) for m in theirs]
    again = snir.load(snir.export(back, x, dt=1e-4), dt=1e-4)  # a loaded model exports too
    assert torch.equal(again(x), model(x))


def test_graph_values_worked_by_hand():
    """decay 0.75, dt 1e-3 -> tau = 4e-3, r = tau / dt = 4 (gain 1); vth 0.5 -> v_threshold just below."""
    model = nn.Sequential(nn.Linear(3, 2), snn.LIF(vth=0.5, decay=0.75))
    node = snir.export(model, inputs(3), dt=1e-3).nodes["1"]
    assert isinstance(node, nir.LIF)
    assert node.tau.flat[0] == pytest.approx(4e-3, rel=1e-15) and node.r.flat[0] == pytest.approx(4.0, rel=1e-15)
    assert node.v_threshold.flat[0] == float(np.nextafter(np.float32(0.5), np.float32(0)))
    lin = snir.export(model, inputs(3), dt=1e-3).nodes["0"]
    assert lin.weight.shape == (2, 3) and np.array_equal(lin.weight, model[0].weight.detach().numpy())


def test_threshold_tie_follows_nir():
    """NIR fires at v > v_threshold: a membrane exactly on the threshold does not fire after load."""
    g = nir.NIRGraph.from_list(nir.Input(np.array([1])), nir.IF(r=np.ones(1), v_threshold=np.ones(1)),
                               nir.Output(np.array([1])))
    m = snir.load(g, dt=1.0)
    x = torch.tensor([0.5, 0.5, 0.5, 0.75]).reshape(4, 1, 1)  # membrane 0.5, 1.0 (tie: no spike), 1.5, ...
    assert m(x).flatten().tolist() == [0.0, 0.0, 1.0, 0.0]


# ---------------------------------------------------------------- refusals

def lif_node(n=4, **over):
    p = dict(tau=np.full(n, 5e-4), r=np.full(n, 5.0), v_leak=np.zeros(n), v_threshold=np.ones(n),
             v_reset=np.zeros(n))
    p.update(over)
    return nir.LIF(**p)


@pytest.mark.parametrize("node, words", [
    (lif_node(v_leak=np.full(4, 0.1)), "v_leak"),
    (lif_node(v_reset=np.full(4, -0.2)), "v_reset"),
    (lif_node(tau=np.array([5e-4, 5e-4, 6e-4, 5e-4])), "tau differs"),
    (lif_node(v_threshold=np.array([1.0, 2.0, 1.0, 1.0])), "v_threshold differs"),
    (lif_node(tau=np.full(4, 5e-5)), "tau=5e-05 < dt"),
    (nir.CubaLIF(tau_syn=np.ones(4), tau_mem=np.ones(4), r=np.ones(4), v_leak=np.zeros(4),
                 v_threshold=np.ones(4)), "synaptic current"),
    (nir.LI(tau=np.ones(4), r=np.ones(4), v_leak=np.zeros(4)), "without spikes"),
])
def test_load_refuses_naming_node_and_parameter(node, words):
    g = nir.NIRGraph.from_list(nir.Input(np.array([4])), node, nir.Output(np.array([4])))
    kind = type(node).__name__  # NIRGraph.from_list names a node after its type
    with pytest.raises(snir.NIRError, match=rf"node '{kind.lower()}' \({kind}\): .*{words}"):
        snir.load(g, dt=1e-4)


def test_load_refuses_a_recurrent_graph():
    g = nir.NIRGraph(nodes={"in": nir.Input(np.array([4])), "lif": lif_node(),
                            "rec": nir.Linear(weight=np.eye(4)), "out": nir.Output(np.array([4]))},
                     edges=[("in", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "out")])
    with pytest.raises(snir.NIRError, match="cycle"):
        snir.load(g, dt=1e-4)


@pytest.mark.parametrize("bad, words", [
    (snn.LIF(reset="soft"), "reset='soft'"),
    (nn.ReLU(), "ReLU.*no NIR node"),
])
def test_export_refuses(bad, words):
    model = nn.Sequential(nn.Linear(3, 4), bad)
    with pytest.raises(snir.NIRError, match=words):
        snir.export(model, inputs(3), dt=1e-4)


# ---------------------------------------------------------------- snnTorch

def snntorch_model(mech):
    snt = pytest.importorskip("snntorch", reason="snnTorch is an optional test dependency")
    torch.manual_seed(4)
    # per-neuron beta and threshold: snnTorch's export needs them to give the LIF node its shape
    return nn.Sequential(nn.Linear(12, 20), snt.Leaky(beta=torch.full((20,), 0.8), threshold=torch.full((20,), 0.7),
                                                      init_hidden=True, reset_mechanism=mech),
                         nn.Linear(20, 7), snt.Leaky(beta=torch.full((7,), 0.8), threshold=torch.full((7,), 0.7),
                                                     init_hidden=True, reset_mechanism=mech))


def snntorch_graph(net):
    from snntorch.export_nir import export_to_nir
    return export_to_nir(net, torch.randn(1, 12), ignore_dims=[0])


def test_snntorch_zero_reset_loads_exactly():
    net, x = snntorch_model("zero"), inputs(12)
    ours = snir.load(snntorch_graph(net), dt=1e-4)(x)
    theirs = run_stepwise(net, x, stateful=False)
    assert theirs.sum() > 0 and torch.equal(ours, theirs)


def test_snntorch_subtract_reset_is_lost_by_its_export():
    """snnTorch's export writes a 'subtract' Leaky as the reset-to-zero LIF (NIR has no subtractive
    reset): the graph equals the 'zero' model's, loads here as snnTorch's own import_from_nir reads
    it, and differs from the original subtract model."""
    from snntorch.import_nir import import_from_nir
    net, x = snntorch_model("subtract"), inputs(12)
    g = snntorch_graph(net)
    gz = snntorch_graph(snntorch_model("zero"))
    for k in g.nodes:
        for f, v in g.nodes[k].to_dict().items():
            if isinstance(v, np.ndarray):
                assert np.array_equal(v, gz.nodes[k].to_dict()[f]), (k, f)
    ours = snir.load(g, dt=1e-4)(x)
    assert torch.equal(ours, run_stepwise(import_from_nir(g), x))
    assert not torch.equal(ours, run_stepwise(net, x, stateful=False))


def test_snntorch_reads_our_export():
    pytest.importorskip("snntorch", reason="snnTorch is an optional test dependency")
    from snntorch.import_nir import import_from_nir
    model, x = trained_here(gain=1.0), inputs(12)
    theirs = run_stepwise(import_from_nir(snir.export(model, x, dt=1e-4)), x)
    ours = model(x)
    assert ours.sum() > 0 and torch.equal(theirs, ours)


# ---------------------------------------------------------------- Norse

def norse_model(dt=1e-3):
    norse = pytest.importorskip("norse.torch", reason="Norse is an optional test dependency")
    torch.manual_seed(5)

    def p(n):
        return norse.LIFBoxParameters(tau_mem_inv=torch.full((n,), 250.0), v_th=torch.full((n,), 0.3),
                                      v_leak=torch.zeros(n), v_reset=torch.zeros(n))
    return norse, norse.SequentialState(nn.Linear(12, 20), norse.LIFBoxCell(p(20), dt=dt), nn.Linear(20, 7),
                                        norse.LIFBoxCell(p(7), dt=dt))


def test_norse_lifbox_loads_exactly():
    """Norse 1.1.0's to_nir writes tau = dt / tau_mem_inv (dt times its time constant), so its graphs
    read back with dt = dt_norse ** 2 (docs/nir.md)."""
    norse, net = norse_model()
    x = inputs(12, scale=3.0)
    g = norse.to_nir(net, torch.randn(1, 12))
    m = snir.load(g, dt=1e-3 ** 2)
    assert m.module("1").decay == float(np.float32(0.75)) and m.module("1").input_gain == 0.25
    theirs = run_stepwise(net, x)
    ours = m(x)
    assert theirs.sum() > 0 and torch.equal(ours, theirs)


def test_norse_reads_our_export():
    """Norse's from_nir ignores r (gain dt / tau), so the model trained here has gain 1 - decay."""
    norse = pytest.importorskip("norse.torch", reason="Norse is an optional test dependency")
    model, x = trained_here(gain=1 - 0.75, decay=0.75, vth=0.3), inputs(12, scale=3.0)
    g = snir.export(model, x, dt=1e-3)
    assert all(float(np.max(n.r)) == 1.0 for n in g.nodes.values() if isinstance(n, nir.LIF))
    theirs = run_stepwise(norse.from_nir(g, dt=1e-3), x)
    ours = model(x)
    assert ours.sum() > 0 and torch.equal(theirs, ours)


# ---------------------------------------------------------------- trained here

def trained_here(gain, decay=0.8, vth=0.7):
    """A few IM-Loss steps of our_model, so the exported weights are ones training wrote."""
    model = our_model(decay=decay, vth=vth, gain=gain)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = inputs(12), torch.arange(B) % 7
    for _ in range(3):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x).mean(0), y) + 2.0 * snn.im_loss(model)
        loss.backward()
        opt.step()
    return model
