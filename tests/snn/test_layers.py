"""TimeDistributed folding and input encoding."""

import pytest
import torch
from torch import nn

import snn


def test_time_distributed_equals_a_per_timestep_loop_and_folds_without_copy():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 4, 6, 6)
    layer = snn.TimeDistributed(nn.Conv2d(4, 5, 3, padding=1), nn.AvgPool2d(2))
    seen = {}
    layer[0].register_forward_pre_hook(lambda m, inputs: seen.update(ptr=inputs[0].data_ptr(), shape=inputs[0].shape))
    y = layer(x)
    assert seen == {"ptr": x.data_ptr(), "shape": (6, 4, 6, 6)}  # a view of x
    assert y.shape == (3, 2, 5, 3, 3)
    for t in range(3):
        assert torch.allclose(y[t], layer[1](layer[0](x[t])), atol=1e-6)


def test_time_distributed_rejects_inputs_without_features():
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        snn.TimeDistributed(nn.Identity())(torch.zeros(3, 2))


def test_direct_encoding_repeats_the_image_as_a_view():
    x = torch.randn(2, 3, 4, 4)
    seq = snn.as_sequence(x, T=5)
    assert seq.shape == (5, 2, 3, 4, 4) and seq.stride(0) == 0 and seq.data_ptr() == x.data_ptr()
    assert all(torch.equal(seq[t], x) for t in range(5))


def test_sequences_pass_through():
    x = torch.randn(4, 2, 2, 8, 8)
    assert snn.as_sequence(x) is x and snn.as_sequence(x, T=4) is x


@pytest.mark.parametrize("shape,T,error,words", [
    ((2, 3, 4, 4), None, ValueError, "needs T"),
    ((4, 2, 2, 8, 8), 3, ValueError, "T=3 does not match the 4 timesteps"),
    ((3, 4, 4), 2, ValueError, r"\[B, C, H, W\] or a sequence"),
    ((2, 3, 4, 4), 0, ValueError, "T must be >= 1"),
    ((2, 3, 4, 4), 2.0, TypeError, "T must be an int"),
])
def test_bad_inputs(shape, T, error, words):
    with pytest.raises(error, match=words):
        snn.as_sequence(torch.zeros(shape), T)
