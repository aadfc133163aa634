"""snn.TDBatchNorm2d against a manual computation over (T, B, H, W)."""

import math

import pytest
import torch

import snn


def manual(x, gamma, beta, alpha, vth, eps=1e-5):
    mean = x.mean(dim=(0, 1, 3, 4), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(0, 1, 3, 4), keepdim=True)
    shape = (1, 1, -1, 1, 1)
    return gamma.view(shape) * alpha * vth * (x - mean) / torch.sqrt(var + eps) + beta.view(shape)


@pytest.mark.parametrize("alpha,vth", [(1.0, 0.5), (1 / math.sqrt(2), 0.5), (1.0, 1.0)])
def test_training_forward_backward_and_running_statistics(alpha, vth):
    torch.manual_seed(0)
    T, B, C, H, W = 3, 4, 5, 6, 7
    x = (torch.randn(T, B, C, H, W) * torch.rand(C).view(1, 1, C, 1, 1) * 3 + torch.randn(C).view(1, 1, C, 1, 1))
    norm = snn.TDBatchNorm2d(C, alpha=alpha, vth=vth)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.normal_()
    gamma, beta = norm.weight.detach().clone().requires_grad_(), norm.bias.detach().clone().requires_grad_()
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()

    y = norm(xa)
    ref = manual(xb, gamma, beta, alpha, vth)
    assert torch.allclose(y, ref, atol=1e-5)
    grad_out = torch.randn_like(y)
    y.backward(grad_out)
    ref.backward(grad_out)
    assert torch.allclose(xa.grad, xb.grad, atol=1e-4)
    assert torch.allclose(norm.weight.grad, gamma.grad, atol=1e-3)
    assert torch.allclose(norm.bias.grad, beta.grad, atol=1e-3)

    mean = x.mean(dim=(0, 1, 3, 4))
    unbiased = x.var(dim=(0, 1, 3, 4), unbiased=True)
    assert torch.allclose(norm.running_mean, 0.1 * mean, atol=1e-6)
    assert torch.allclose(norm.running_var, 0.9 + 0.1 * unbiased, atol=1e-5)
    assert norm.num_batches_tracked.item() == 1

    norm.eval()
    shape = (1, 1, -1, 1, 1)
    expected = (gamma.view(shape) * alpha * vth * (x - norm.running_mean.view(shape))
                / torch.sqrt(norm.running_var.view(shape) + 1e-5) + beta.view(shape))
    assert torch.allclose(norm(x), expected, atol=1e-5)


def test_not_affine_scales_by_alpha_vth():
    torch.manual_seed(1)
    x = torch.randn(2, 3, 4, 5, 5)
    y = snn.TDBatchNorm2d(4, alpha=0.5, vth=2.0, affine=False)(x)
    assert torch.allclose(y, manual(x, torch.ones(4), torch.zeros(4), 0.5, 2.0), atol=1e-5)


@pytest.mark.parametrize("x,error,words", [
    (torch.zeros(2, 4, 3, 3), ValueError, r"\[T, B, C, H, W\]"),
    (torch.zeros(2, 2, 3, 3, 3), ValueError, "channels"),
    ([1.0], TypeError, "tensor"),
])
def test_bad_input(x, error, words):
    with pytest.raises(error, match=words):
        snn.TDBatchNorm2d(4)(x)


@pytest.mark.parametrize("kwargs,error", [
    ({"alpha": 0.0}, ValueError), ({"vth": "1"}, TypeError), ({"alpha": math.inf}, ValueError),
    ({"vth": math.nan}, ValueError), ({"eps": 0.0}, ValueError), ({"eps": -1e-5}, ValueError),
    ({"momentum": 1.5}, ValueError), ({"momentum": -0.1}, ValueError), ({"momentum": "0.1"}, TypeError),
    ({"affine": 1}, TypeError), ({"track_running_stats": "yes"}, TypeError),
])
def test_bad_arguments(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        snn.TDBatchNorm2d(4, **kwargs)


@pytest.mark.parametrize("num_features,error", [(0, ValueError), (-3, ValueError), (4.0, TypeError), (True, TypeError)])
def test_bad_num_features(num_features, error):
    with pytest.raises(error, match="num_features must be an int >= 1"):
        snn.TDBatchNorm2d(num_features)


def test_momentum_none_is_the_cumulative_average():
    bn = snn.TDBatchNorm2d(2, momentum=None)
    assert bn.momentum is None
