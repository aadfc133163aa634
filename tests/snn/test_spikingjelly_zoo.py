"""Every family of SpikingJelly 2.0's model zoo (spikingjelly.activation_based.model) through
snn.interop.spikingjelly.convert, built as its users build it (its default neurons; the tutorial's
ATan surrogate for the ResNets and the VGG; learnable PLIF for parametric_lif_net), at tiny sizes
(T = 2, batch 2): the converted model's output, every neuron layer's spikes and every parameter's
gradient equal SpikingJelly's own (run with functional.reset_net before the call). The families
whose neurons have no exact equivalent are refused, naming the module and the setting, with the
model left as it was."""

from __future__ import annotations

import copy
import types

import pytest
import torch
import torch.nn.functional as F

import snn

pytest.importorskip("spikingjelly", reason="SpikingJelly is an optional dependency (extra [spikingjelly])")

from spikingjelly.activation_based import functional, neuron, surrogate  # noqa: E402
from spikingjelly.activation_based.model import (  # noqa: E402
    masnn,
    maxformer,
    ms_resnet,
    parametric_lif_net,
    qkformer,
    sew_resnet,
    snas_net,
    spike_dhs,
    spike_driven_transformer,
    spikformer,
    spiking_resnet,
    spiking_vgg,
    spiking_vggws_ottt,
)

from snn.interop import spikingjelly as sj  # noqa: E402

T, BATCH = 2, 2
# SpikingJelly's tutorial setting for its ImageNet-style zoo models; the SEW-ResNet paper trains
# the same with IF neurons
ATAN_LIF = dict(spiking_neuron=neuron.LIFNode, surrogate_function=surrogate.ATan(), detach_reset=True)
ATAN_IF = dict(ATAN_LIF, spiking_neuron=neuron.IFNode)


def _multi_step(model):
    functional.set_step_mode(model, "m")
    return model


# family -> (builder, input shape [T, B, C, H, W]); one entry per model family of the zoo whose
# neurons are multi-step LIF / IF / PLIF: the smallest builder where the widths are fixed (ResNet-18,
# VGG-11), else the family's class at tiny widths, so that the whole file runs in seconds.
CONVERTED = {
    "spiking_resnet": (lambda: _multi_step(spiking_resnet.spiking_resnet18(num_classes=10, **ATAN_LIF)),
                       (T, BATCH, 3, 32, 32)),
    "sew_resnet": (lambda: _multi_step(sew_resnet.sew_resnet18(cnf="ADD", num_classes=10, **ATAN_IF)),
                   (T, BATCH, 3, 32, 32)),
    "spiking_vgg": (lambda: _multi_step(spiking_vgg.spiking_vgg11_bn(num_classes=10, **ATAN_LIF)),
                    (T, BATCH, 3, 32, 32)),
    # Fang et al.'s learnable tau with ATan, as SpikingJelly's PLIF tutorial trains it
    "parametric_lif_net": (lambda: _multi_step(parametric_lif_net.MNISTNet(
        channels=4, spiking_neuron=neuron.ParametricLIFNode, surrogate_function=surrogate.ATan(), detach_reset=True)),
        (T, BATCH, 1, 28, 28)),
    "ms_resnet": (lambda: ms_resnet.MSResNet(T=T, num_classes=10, layers=(1, 1, 1), stage_channels=(8, 8, 16),
                                             base_channels=8, stem_kernel_size=3, stem_stride=1),
                  (T, BATCH, 3, 16, 16)),
    "max_resnet": (lambda: ms_resnet.MaxResNet(T=T, num_classes=10, layers=(1, 1, 1), stage_channels=(8, 8, 16),
                                               base_channels=8, stem_kernel_size=3, stem_stride=1),
                   (T, BATCH, 3, 16, 16)),
    "masnn": (lambda: masnn.MASNN(T=T, in_channels=2, num_classes=11, input_size=(16, 16), channels=(8, 8, 8),
                                  fc_hidden=16, reduction_t=1, reduction_c=4),
              (T, BATCH, 2, 16, 16)),
    "att_ms_resnet": (lambda: masnn.AttMSResNet(T=T, num_classes=10, layers=(1, 1, 1), stage_channels=(8, 8, 16),
                                                base_channels=8, stem_kernel_size=3, stem_stride=1, reduction_c=4),
                      (T, BATCH, 3, 16, 16)),
    "spikformer": (lambda: spikformer.Spikformer(T=T, img_size_h=16, img_size_w=16, patch_size=4, num_classes=10,
                                                 embed_dims=32, num_heads=2, depths=1),
                   (T, BATCH, 3, 16, 16)),
    "spike_driven_transformer": (lambda: spike_driven_transformer.SpikeDrivenTransformer(
        T=T, num_classes=10, embed_dims=32, num_heads=2, depths=1), (T, BATCH, 3, 16, 16)),
    "qkformer": (lambda: qkformer.QKFormer(T=T, num_classes=10, embed_dims=32, num_heads=(1, 2, 2),
                                           depths=(1, 1, 1)), (T, BATCH, 3, 16, 16)),
    "maxformer": (lambda: maxformer.MaxFormer(T=T, num_classes=10, embed_dims=32, depths=(1, 1, 1), cifar=True),
                  (T, BATCH, 3, 16, 16)),
}


def _snas_net():
    """SNASNet's narrower CIFAR-100 width, a cell of three spiking convolutions and two skips."""
    args = types.SimpleNamespace(timestep=T, second_avgpooling=2, dataset="cifar100", celltype="forward",
                                 threshold=1.0, tau=4.0 / 3.0)
    con_mat = torch.tensor([[0, 2, 1, 1], [0, 0, 2, 1], [0, 0, 0, 2], [0, 0, 0, 0]])
    return snas_net.SNASNet(args, con_mat)


def _spike_dhs():
    args = types.SimpleNamespace(fea_step=3, fea_num_layers=8, fea_block_multiplier=3, fea_filter_multiplier=48)
    return spike_dhs.SpikeDHS(init_channels=3, args=args)


# family -> (builder, the first refused module's path, words naming the setting), as the family
# builds it: neurons with no exact snn.LIF equivalent, or single-step nodes (converted below the
# way the refusal says)
REFUSED = {
    # online training through time: a node with its own trace state and single-step update
    "spiking_vggws_ottt": (lambda: spiking_vggws_ottt.ottt_spiking_vgg11_ws(num_classes=10), "features.1",
                           "OTTTLIFNode"),
    # Spike-DHS searches the DSpike surrogate's width (no snn.LIF surrogate) on LIFNode subclasses
    "spike_dhs": (_spike_dhs, "feature.cells.0.spikes.0", "surrogate_function DSpike has no exact"),
    # SNASNet loops over time itself around single-step nodes placed inside plain torch layers
    "snas_net": (_snas_net, "cell1.cell_architecture.0.0", "step_mode='s'"),
}


def _neurons(model):
    return [m for m in model.modules() if isinstance(m, (neuron.BaseNode, snn.LIF))]


def _run(model, x, y):
    """One forward + CE backward with SpikingJelly's state reset first and the dropout masks drawn
    from the same seed: (logits, every neuron layer's spikes in call order, {name: grad})."""
    functional.reset_net(model)
    model.zero_grad(set_to_none=True)
    spikes = []
    hooks = [m.register_forward_hook(lambda m, i, o: spikes.append(o.detach())) for m in _neurons(model)]
    torch.manual_seed(1)
    try:
        out = model(x)
    finally:
        for h in hooks:
            h.remove()
    logits = out.mean(0) if out.dim() == 3 else out  # some families average over T themselves
    F.cross_entropy(logits, y).backward()
    return logits.detach(), spikes, {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("family", list(CONVERTED))
def test_zoo_family_converts_exactly(family):
    build, shape = CONVERTED[family]
    torch.manual_seed(0)
    original = build()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g) * 2.0
    y = torch.randint(0, 10, (BATCH,), generator=g)
    # the example declares the transformers' [T, B, C, N] layouts (harmless elsewhere)
    converted = sj.convert(copy.deepcopy(original), example=x)
    assert not any(isinstance(m, neuron.BaseNode) for m in converted.modules())
    assert len(snn.lif_layers(converted)) == len(_neurons(original)) > 0
    l0, s0, g0 = _run(original, x, y)
    l1, s1, g1 = _run(converted, x, y)

    assert len(s0) == len(s1) > 0
    for i, (a, b) in enumerate(zip(s0, s1)):
        assert torch.equal(a, b), f"layer {i}: {(a != b).sum().item()} of {a.numel()} spikes differ"
    fired = sum(bool(a.any()) for a in s0)
    assert fired >= len(s0) // 2, f"only {fired} of {len(s0)} layers spike: the data tests too little"
    torch.testing.assert_close(l1, l0, rtol=1e-5, atol=1e-5)
    assert sorted(g1) == sorted(g0) and g0
    if family == "parametric_lif_net":
        assert any(n.endswith(".w") for n in g1), "the learnable tau must get its gradient"
    # fp32 rounding of the scan, relative to the largest gradient of the model: a BN deep in the
    # net can have gradients 1e-6 of the rest
    scale = max(g.abs().max().item() for g in g0.values())
    diff = max((g1[n] - g0[n]).abs().max().item() for n in g0)
    assert diff <= 1e-4 * scale, f"largest gradient difference {diff:.3g}, relative {diff / scale:.3g}"


def _snapshot(model):
    return [(n, type(m)) for n, m in model.named_modules()], {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("family", list(REFUSED))
def test_zoo_family_without_equivalent_is_refused_unchanged(family):
    build, path, words = REFUSED[family]
    torch.manual_seed(0)
    model = build()
    modules, state = _snapshot(model)
    with pytest.raises(sj.ConversionError) as raised:
        sj.convert(model)
    message = str(raised.value)
    assert f"  {path} (" in message and words in message, message
    after_modules, after_state = _snapshot(model)
    assert after_modules == modules
    assert after_state.keys() == state.keys() and all(torch.equal(after_state[k], v) for k, v in state.items())


def test_single_step_zoo_model_converts_the_way_its_refusal_says():
    """SNASNet loops over time itself, one single-step call per step: refused as built, its
    refusal says to convert in multi-step mode and switch back; done so, it computes SpikingJelly's
    step-by-step output, spikes and gradients."""
    torch.manual_seed(0)
    original = _snas_net()
    converted = copy.deepcopy(original)
    functional.set_step_mode(converted, "m")
    sj.convert(converted)
    functional.set_step_mode(converted, "s")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, 3, 32, 32, generator=g) * 2.0  # the model repeats the image over its T steps
    y = torch.randint(0, 100, (BATCH,), generator=g)
    l0, s0, g0 = _run(original, x, y)
    l1, s1, g1 = _run(converted, x, y)
    assert len(s0) == len(s1) == T * len(snn.lif_layers(converted)) > 0  # one call per layer and step
    assert all(torch.equal(a, b) for a, b in zip(s0, s1)) and sum(a.sum() for a in s0) > 0
    torch.testing.assert_close(l1, l0, rtol=1e-5, atol=1e-5)
    assert sorted(g1) == sorted(g0) and g0
    scale = max(g.abs().max().item() for g in g0.values())
    assert max((g1[n] - g0[n]).abs().max().item() for n in g0) <= 1e-4 * scale
