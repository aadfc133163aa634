"""The host side of a lif_scan call: settings validated once per setting, and the eager path
(`dispatch.EagerScan`, the ops' implementations called directly) equal to the custom ops that
torch.compile and meta tensors use."""

from __future__ import annotations

import pytest
import torch

from kernels import lif_scan
from kernels.lif import dispatch, params
from kernels.lif.params import LIFParams, validated

from .lif_check import fused_backends


def test_a_setting_is_validated_once_and_reused():
    first = validated(0.5, 0.25, "tanh", 1.2345, "hard", False)
    assert validated(0.5, 0.25, "tanh", 1.2345, "hard", False) is first
    assert first == LIFParams(vth=0.5, decay=0.25, surrogate="tanh", alpha=1.2345)


@pytest.mark.parametrize(("args", "error", "match"), [
    # True == 1 and hash(True) == hash(1), yet a bool is refused
    ((True, 0.25, "tanh", 1.0, "hard", False), TypeError, "vth must be a real number"),
    ((0.5, 1.5, "tanh", 1.0, "hard", False), ValueError, "decay must lie in"),
    ((0.5, 0.25, "tanh", 0.0, "hard", False), ValueError, "alpha must be > 0"),
    ((0.5, 0.25, "tanh", 1.0, "hard", 0), TypeError, "detach_reset must be a bool"),  # 0 == False
    (([0.5], 0.25, "tanh", 1.0, "hard", False), TypeError, "vth must be a real number"),  # unhashable
])
def test_a_bad_setting_raises_every_time_even_after_its_equal_good_one(args, error, match):
    validated(1, 0.25, "tanh", 1.0, "hard", False)
    validated(0.5, 0.25, "tanh", 1.0, "hard", False)
    for _ in range(2):
        with pytest.raises(error, match=match):
            validated(*args)
        with pytest.raises(error, match=match):
            lif_scan(torch.zeros(2, 3), *args)


def test_lif_scan_does_not_revalidate_a_known_setting(monkeypatch):
    x = torch.randn(3, 8)
    lif_scan(x, alpha=1.75, backend="torch")
    calls = []
    real = LIFParams.__post_init__
    monkeypatch.setattr(LIFParams, "__post_init__", lambda self: (calls.append(1), real(self))[1])
    lif_scan(x, alpha=1.75, backend="torch")
    assert calls == []
    lif_scan(x, alpha=1.875, backend="torch")  # a new setting is validated
    assert calls == [1]


def _eager(x, p: LIFParams, backend: str, state: str):
    return dispatch.EagerScan.apply(x, None, p, backend, state)


def _through_ops(x, p: LIFParams, backend: str, state: str):
    return torch.ops.lif.scan_fwd(x, p.vth, dispatch.scalar_arg(p.decay), p.surrogate, dispatch.scalar_arg(p.alpha),
                                  p.reset, p.detach_reset, backend, state)[:2]


BACKENDS = fused_backends()


LAYOUTS = {"transposed": lambda t: t.transpose(1, 2),  # dense, not time-major: spikes and dx keep its strides
           "strided": lambda t: t[:, :, ::2]}  # not dense: spikes and dx are contiguous


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("state", ["exact", "compact"])
@pytest.mark.parametrize("surrogate", ["tanh", "dspike"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_eager_path_equals_the_custom_ops(backend, state, surrogate, layout, device):
    g = torch.Generator().manual_seed(3)
    x0 = LAYOUTS[layout]((0.6 * torch.randn(5, 2, 37, generator=g) + 0.3).to(device))
    gs = torch.randn(x0.shape, generator=g).to(device)
    p = LIFParams(surrogate=surrogate, alpha=2.5, reset="soft")
    results = []
    for run in (_eager, _through_ops):
        x = x0.detach().requires_grad_()  # keeps x0's strides (a clone of a non-dense x0 would be contiguous)
        spikes, u_mean = run(x, p, backend, state)
        # autograd.grad returns dx as the backward made it (accumulating into x.grad may restride it)
        (dx,) = torch.autograd.grad([spikes, u_mean], [x], [gs, torch.tensor(1.5, device=device)])
        results.append((spikes, u_mean, dx, spikes.stride(), dx.stride()))
    (s, m, dx, ss, dxs), (rs, rm, rdx, rss, rdxs) = results
    assert torch.equal(s, rs) and torch.equal(m, rm) and torch.equal(dx, rdx)
    assert (ss, dxs) == (rss, rdxs) == (torch.empty_like(x0).stride(),) * 2


def test_validated_is_bypassed_while_compiling(monkeypatch):
    """While torch.compile traces, settings may be symbolic: nothing is cached then."""
    monkeypatch.setattr(params, "_checkable", lambda: False)
    before = params._validated_once.cache_info().currsize
    p = validated(0.5, 0.25, "tanh", 4.321, "hard", False)
    assert params._validated_once.cache_info().currsize == before and p.alpha == 4.321
