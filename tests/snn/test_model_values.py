"""Statistics and shapes of snn's layers and models against a second computation: tdBN's
cumulative running average (momentum None) as the plain mean of the batch statistics, Dspike's
batch statistics as numpy's biased variance, VGG-16's extra pooling exactly when the map after the
four poolings is wider than 7 (the paper's 7 x 7 ImageNet head)."""

import numpy as np
import pytest
import torch
from torch import nn

from snn import models
from snn.dspike import _batch_statistics
from snn.tdbn import TDBatchNorm2d


def test_tdbn_cumulative_average_is_the_mean_of_the_batch_statistics():
    """momentum None: after k training batches, running_mean = mean of the k batch means and
    running_var = mean of the k unbiased batch variances (over T, B, H, W), computed in numpy."""
    torch.manual_seed(0)
    bn = TDBatchNorm2d(3, momentum=None).train()
    means, variances = [], []
    for k in range(4):
        x = torch.randn(2, 5, 3, 4, 4) * (k + 1) + k
        bn(x)
        a = x.double().numpy().transpose(2, 0, 1, 3, 4).reshape(3, -1)
        means.append(a.mean(1))
        variances.append(a.var(1, ddof=1))
        np.testing.assert_allclose(bn.running_mean.numpy(), np.mean(means, 0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(bn.running_var.numpy(), np.mean(variances, 0), rtol=1e-5)
    assert int(bn.num_batches_tracked) == 4


def test_dspike_selection_normalizes_with_the_biased_batch_variance():
    """Inside select_temperature's batch-statistics window a norm sees its input's mean and biased
    variance (what a training-mode forward normalizes with), computed here with numpy."""
    bn = nn.BatchNorm2d(3).eval()
    tdbn = TDBatchNorm2d(3).eval()
    x = torch.randn(4, 3, 5, 5) * 2 + 1
    seq = torch.randn(2, 3, 3, 5, 5) * 3 - 1
    with _batch_statistics(nn.ModuleList([bn, tdbn]), lambda: (bn(x), tdbn(seq))):
        a = x.double().numpy().transpose(1, 0, 2, 3).reshape(3, -1)
        b = seq.double().numpy().transpose(2, 0, 1, 3, 4).reshape(3, -1)
        np.testing.assert_allclose(bn.running_var.numpy(), a.var(1, ddof=0), rtol=1e-5)
        np.testing.assert_allclose(tdbn.running_var.numpy(), b.var(1, ddof=0), rtol=1e-5)
        np.testing.assert_allclose(tdbn.running_mean.numpy(), b.mean(1), rtol=1e-5, atol=1e-6)
    assert torch.equal(bn.running_var, torch.ones(3)) and torch.equal(bn.running_mean, torch.zeros(3))


@pytest.mark.parametrize("size, side", [(16, 1), (32, 2), (112, 7), (128, 4), (224, 7), (240, 7)])
def test_vgg16_pools_once_more_only_when_the_map_is_wider_than_7(size, side):
    """After four 2x2 poolings the map is size // 16 wide; a fifth pooling halves it only when it is
    over 7 (224 -> 14 -> 7), so the classifier takes 512 x side x side features."""
    model = models.build("vgg16", 10, width=0.0625, input_size=size, norm="none")
    first_fc = next(m for m in model.modules() if isinstance(m, nn.Linear))
    assert first_fc.in_features == 32 * side * side
