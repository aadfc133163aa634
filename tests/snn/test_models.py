"""snn.models: shapes, forward+backward on both CPU backends, parameter counts, IM flags, errors."""

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision

import snn
from ..kernels.lif_check import runnable
from snn.models import build, count_parameters

NAMES = ("cifarnet", "resnet19", "vgg16", "resnet34")
TINY = {"width": 1 / 16, "input_size": 16}


def tiny(name, **kwargs):
    return build(name, 10, **{**TINY, **kwargs})


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("T", [1, 2, 4])
def test_static_and_dvs_shapes_and_backward_with_torch_backend(name, T):
    torch.manual_seed(0)
    for in_channels, x in ((3, torch.randn(2, 3, 16, 16)), (2, torch.rand(T, 2, 2, 16, 16))):
        model = tiny(name, in_channels=in_channels, backend="torch")
        logits = model(x, T=T) if x.dim() == 4 else model(x)
        assert logits.shape == (2, 10)
        loss = F.cross_entropy(logits, torch.tensor([1, 7])) + 2 * snn.im_loss(model)
        loss.backward()
        stem = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        assert stem.weight.grad is not None and stem.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_on_every_fused_backend_matches_the_first(name):
    """Every fused backend that runs here (the Triton kernels interpreted on CPU) gives the loss and
    parameter gradients of the first."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16)
    grads = {}
    backends = runnable("cpu")
    for backend in backends:
        torch.manual_seed(1)
        model = tiny(name, backend=backend)
        loss = F.cross_entropy(model(x, T=2), torch.tensor([3, 5])) + 2 * snn.im_loss(model)
        loss.backward()
        grads[backend] = (loss.detach(), [p.grad for p in model.parameters()])
    reference = grads[backends[0]]
    for backend in backends[1:]:
        assert torch.allclose(grads[backend][0], reference[0], atol=1e-5), backend
        for a, b in zip(grads[backend][1], reference[1]):
            assert (a - b).abs().max() <= 1e-4 * b.abs().max() + 1e-6, backend


# Independent derivation of the parameter counts at width 1.0 from each paper's layer list.
# bias: the hidden layers with no norm after them have one (every conv with norm 'none', the hidden
# FCs); the classifier FC always has one.
def conv(cin, cout, k, norm, bias):
    return cin * cout * k * k + (2 * cout if norm != "none" else cout if bias else 0)  # gamma, beta / bias


def fc(n_in, n_out, bias=True):
    return n_in * n_out + (n_out if bias else 0)


def resnet(stem, stages, cin, norm, bias, classes):
    total = stem
    for blocks, cout, stride in stages:
        for i in range(blocks):
            s = stride if i == 0 else 1
            total += conv(cin, cout, 3, norm, bias) + conv(cout, cout, 3, norm, bias)
            total += conv(cin, cout, 1, norm, bias) if (s != 1 or cin != cout) else 0
            cin = cout
    return total + fc(cin, classes)


def derived(name, classes, size, norm, bias):
    if name == "cifarnet":
        chans = [3, 128, 256, 512, 1024, 512]
        return (sum(conv(a, b, 3, norm, bias) for a, b in zip(chans, chans[1:]))
                + fc(512 * (size // 4) ** 2, 1024, bias) + fc(1024, 512, bias) + fc(512, classes))
    if name == "vgg16":
        chans = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
        side = size // 16 if size // 16 <= 7 else size // 32
        return (sum(conv(a, b, 3, norm, bias) for a, b in zip(chans, chans[1:]))
                + fc(512 * side * side, 4096, bias) + fc(4096, 4096, bias) + fc(4096, classes))
    if name == "resnet19":
        return resnet(conv(3, 128, 3, norm, bias), [(3, 128, 1), (3, 256, 2), (2, 512, 2)], 128, norm, bias, classes)
    return resnet(conv(3, 64, 7, norm, bias), [(3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)], 64, norm, bias,
                  classes)


PINNED = {  # norm='tdbn', width 1.0
    ("cifarnet", 10, 32): 45_005_450,
    ("resnet19", 10, 32): 12_569_226,
    ("vgg16", 10, 32): 39_933_898,
    ("vgg16", 1000, 224): 138_361_768,
    ("resnet34", 1000, 224): 21_797_672,
}


@pytest.mark.parametrize("setting", list(PINNED))
@pytest.mark.parametrize("norm,bias,default", [("tdbn", None, True), ("bn", None, True), ("none", None, False),
                                               ("tdbn", False, None), ("none", True, None)])
def test_parameter_counts_at_width_one(setting, norm, bias, default):
    """default: the bias the norm implies when build() is not told (None when bias is given)."""
    name, classes, size = setting
    with torch.device("meta"):
        model = build(name, classes, norm=norm, input_size=size, bias=bias)
    expected = derived(name, classes, size, norm, default if bias is None else bias)
    assert count_parameters(model) == expected
    if norm == "tdbn" and bias is None:
        assert expected == PINNED[setting]
    rows = snn.models.parameter_counts(norm, bias=bias)
    counts = {(r["model"], r["num_classes"], r["input_size"]): r["parameters"] for r in rows}
    assert counts[setting] == count_parameters(model)


@pytest.mark.parametrize("name", NAMES)
def test_no_norm_networks_are_bias_free_but_for_the_classifier(name):
    """Paper sec. 4.2: no bias or scaling at inference. Only the last FC (the class scores) has a bias."""
    model = tiny(name, norm="none")
    biased = [n for n, p in model.named_parameters() if n.endswith("bias")]
    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    assert [p for n, p in model.named_parameters() if n.endswith("bias")] == [head.bias], biased
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with_bias = tiny(name, norm="none", bias=True)
    assert sum(n.endswith("bias") for n, _ in with_bias.named_parameters()) == len(layers)
    assert count_parameters(with_bias) - count_parameters(model) == sum(
        m.out_channels if isinstance(m, torch.nn.Conv2d) else m.out_features for m in layers[:-1])


def test_counts_agree_with_torchvision_where_layouts_coincide():
    with torch.device("meta"):
        assert count_parameters(build("resnet34", 1000, input_size=224)) == count_parameters(
            torchvision.models.resnet34())
        assert count_parameters(build("vgg16", 1000, norm="none", bias=True, input_size=224)) == count_parameters(
            torchvision.models.vgg16())
    assert 12.5e6 < PINNED[("resnet19", 10, 32)] < 12.7e6


@pytest.mark.parametrize("name", ["resnet19", "resnet34"])
def test_resnet_im_flags_and_residual_norm_alpha(name):
    model = tiny(name)
    blocks = [m for m in model.modules() if isinstance(m, snn.models.BasicBlock)]
    assert len(blocks) == (8 if name == "resnet19" else 16)
    for block in blocks:
        assert block.lif1.im is False and block.lif2.im is True
        assert block.conv1[1].alpha == 1.0 and block.conv2[1].alpha == pytest.approx(1 / math.sqrt(2))
        if not isinstance(block.shortcut, torch.nn.Identity):
            assert block.shortcut[1].alpha == pytest.approx(1 / math.sqrt(2))
    lifs = snn.lif_layers(model)
    assert sum(m.im for m in lifs) == len(blocks) + 1  # stem + one per block


@pytest.mark.parametrize("name", ["cifarnet", "vgg16"])
def test_every_lif_of_the_plain_networks_is_restricted(name):
    assert all(m.im for m in snn.lif_layers(tiny(name)))


def test_lif_settings_reach_every_neuron_and_tdbn_uses_their_vth():
    model = tiny("resnet19", vth=1.0, decay=0.5, surrogate="rect", alpha=0.5, reset="soft")
    for m in snn.lif_layers(model):
        assert (m.vth, m.decay, m.surrogate, m.alpha, m.reset) == (1.0, 0.5, "rect", 0.5, "soft")
    assert all(m.vth == 1.0 for m in model.modules() if isinstance(m, snn.TDBatchNorm2d))


@pytest.mark.parametrize("norm,kind", [("bn", torch.nn.BatchNorm2d), ("none", None)])
def test_norm_choices(norm, kind):
    model = tiny("cifarnet", norm=norm)
    assert not any(isinstance(m, snn.TDBatchNorm2d) for m in model.modules())
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.bias is None for c in convs)  # a norm's shift, or no bias at all (norm none)
    if kind is not None:
        assert sum(isinstance(m, kind) for m in model.modules()) == len(convs)


@pytest.mark.parametrize("call,error,words", [
    (lambda: build("resnet50", 10), ValueError, "unknown model name 'resnet50'"),
    (lambda: build("resnet19", 10, norm="layer"), ValueError, "norm must be one of"),
    (lambda: build("resnet19", 0), ValueError, "num_classes"),
    (lambda: build("resnet19", 10, width=0), ValueError, "width"),
    (lambda: build("resnet19", 10, in_channels=2.0), TypeError, "in_channels"),
    (lambda: build("resnet19", 10, tau=2.0), TypeError, "unknown LIF keyword"),
    (lambda: build("resnet19", 10, im=False), TypeError, "im is set per layer"),
    (lambda: build("resnet19", 10, surrogate="sigmoid"), ValueError, "surrogate"),
    (lambda: build("vgg16", 10, input_size=8), ValueError, "input_size"),
    (lambda: build("cifarnet", 10, norm="none", bias=1), TypeError, "bias must be a bool"),
])
def test_bad_build_arguments(call, error, words):
    with pytest.raises(error, match=words):
        call()


@pytest.mark.parametrize("x,T,words", [
    (torch.zeros(2, 3, 16, 16), None, "needs T"),
    (torch.zeros(4, 2, 3, 16, 16), 2, "T=2 does not match the 4 timesteps"),
    (torch.zeros(3, 16, 16), 2, r"\[B, C, H, W\] or a sequence"),
    (torch.zeros(2, 2, 16, 16), 2, "expects 3 input channels"),
    (torch.zeros(2, 3, 32, 32), 2, "built for 16x16"),
])
def test_bad_model_inputs(x, T, words):
    with pytest.raises(ValueError, match=words):
        tiny("cifarnet")(x, T=T)


@pytest.mark.parametrize("flags,biases", [([], 1), (["--bias"], 8), (["--no-bias"], 1)])
def test_train_cli_bias_flag_reaches_the_model(flags, biases):
    """cifarnet has 5 convs, 2 hidden FCs and the classifier: --norm none is bias-free but for the
    classifier unless --bias."""
    from snn.train.cli import config_from_args
    from snn.train.prepare import build_model

    cfg = config_from_args(["--norm", "none", "--width", "0.0625", *flags])
    info = type("Info", (), {"num_classes": 10, "in_channels": 1, "size": (16, 16)})()
    model = build_model(cfg, info)
    assert sum(n.endswith("bias") for n, _ in model.named_parameters()) == biases
