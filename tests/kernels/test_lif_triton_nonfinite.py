"""The Triton backward on infinite inputs (issue 11, item 13): no reset path leaves the last
timestep, so an infinite membrane there must not turn 0 * inf into a NaN gradient."""

import math

import pytest
import torch

from kernels import lif_scan


@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("last", [float("-inf"), float("inf")])
def test_infinite_input_at_last_step_by_hand(device, reset, last):
    # u(0) = 1 fires; u(1) = +-inf, where every surrogate is flat: dx(1) = 0. dx(0) = sg(1) with
    # tanh, alpha = 1, vth = 0.5: 0.5 (1 - tanh(0.5)^2); the reset path from t = 0 carries g(1) = 0.
    x = torch.tensor([[1.0], [last]], device=device, requires_grad=True)
    spikes, _ = lif_scan(x, vth=0.5, decay=0.25, surrogate="tanh", alpha=1.0, reset=reset, backend="triton")
    assert spikes.tolist() == [[1.0], [1.0 if last > 0 else 0.0]]
    spikes.sum().backward()
    expected = torch.tensor([[0.5 * (1 - math.tanh(0.5) ** 2)], [0.0]])
    torch.testing.assert_close(x.grad.cpu(), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("surrogate", ["tanh", "rect", "dspike"])
@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("compact", [False, True])
def test_infinite_last_step_matches_naive(device, surrogate, reset, compact):
    g = torch.Generator().manual_seed(11)
    x = 0.6 * torch.randn(3, 70, generator=g) + 0.3
    x[-1, ::3] = float("-inf")
    x[-1, 1::3] = float("inf")
    grad = torch.randn(3, 70, generator=g)
    results = []
    for backend in ("naive", "triton"):
        xb = x.to(device).requires_grad_()
        spikes, u_mean = lif_scan(xb, surrogate=surrogate, reset=reset, backend=backend,
                                  **({"compact_state": compact} if backend == "triton" else {}))
        (spikes * grad.to(device)).sum().backward()
        results.append((spikes.detach().cpu(), xb.grad.cpu()))
    (ref_s, ref_dx), (s, dx) = results
    assert torch.isfinite(ref_dx).all()
    assert torch.equal(s, ref_s)
    torch.testing.assert_close(dx, ref_dx, rtol=1e-5, atol=1e-6)
