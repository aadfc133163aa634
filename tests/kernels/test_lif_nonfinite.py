"""The backward on non-finite inputs: every backend follows the one rule of
lif_scan's docstring, checked by hand on small cases (every backend and saved state) and by
agreement of all backends on every surrogate x reset x detach_reset x saved state x storage dtype
x which outputs the loss uses, with NaN, +inf and -inf at each timestep.

The rule: dx is the recurrence of fused_torch.bwd in IEEE arithmetic (0 * inf = NaN, NaN
propagates), where rect and dspike select exactly 0 outside their window (a NaN membrane is
outside every window), the hard-reset factor is 1 - o(t) of the emitted spike (1 for a NaN
membrane), and no reset path leaves t = T - 1.
"""

import itertools
import math

import pytest
import torch

from kernels import SURROGATES, lif_scan

from .lif_check import GRAD_RTOL, fused_backends, runnable

NAN, INF = float("nan"), float("inf")
VTH, DECAY, ALPHA = 0.5, 0.25, 1.0  # rect window 0 < u < 1, dspike window 0 <= u <= 1
# NumPy (the Triton interpreter's arithmetic) warns on every NaN it makes; NaN is the point here.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
PATHS = [pytest.param("naive", False, id="naive"),
         *[pytest.param(*b.values, c, id=f"{b.values[0]}-{'compact' if c else 'exact'}", marks=b.marks)
           for b in fused_backends() for c in (False, True)]]


def _dx(x, backend, compact, grad_spikes, grad_mean, **params):
    """dL/dx for L = sum(spikes * grad_spikes) + grad_mean * u_mean (a None term is left out)."""
    x = x.detach().clone().requires_grad_()
    kwargs = {"compact_state": compact} if backend != "naive" else {}
    spikes, u_mean = lif_scan(x, vth=VTH, decay=DECAY, alpha=ALPHA, backend=backend, **kwargs, **params)
    pairs = []
    if grad_spikes is not None:
        pairs.append((spikes, grad_spikes))
    if grad_mean is not None:
        pairs.append((u_mean, torch.tensor(grad_mean, dtype=u_mean.dtype, device=x.device)))
    torch.autograd.backward(*zip(*pairs))
    return x.grad


def _sg_tanh(u):
    return 0.5 * ALPHA * (1 - math.tanh(ALPHA * (u - VTH)) ** 2)


def _sg_dspike(u):  # b = alpha on x = u / (2 vth): d/du (tanh(b (x - 1/2)) + tanh(b/2)) / (2 tanh(b/2))
    return ALPHA * (1 - math.tanh(ALPHA * (u / (2 * VTH) - 0.5)) ** 2) / (2 * math.tanh(ALPHA / 2)) / (2 * VTH)


# One neuron, T = 3, computed by hand from the rule (c = grad_mean / (T N) = 1/3 with grad_mean 1):
HAND_CASES = [
    # NaN from t = 0: u = NaN throughout, no spike. Windowed surrogates: G(t) is NaN (the hard reset
    # path multiplies by u) but lies outside the window, so g(t) = c + decay (1 - o(t)) g(t+1) with
    # 1 - o(t) = 1: 1/3, 1/3 + 1/12 = 5/12, 1/3 + 5/48 = 7/16. tanh has no window: NaN * sg.
    *[(s, "hard", d, [NAN, 0.3, 0.3], None, 1.0, [7 / 16, 5 / 12, 1 / 3])
      for s in ("rect", "dspike") for d in (False, True)],
    # tanh has no window: sg(NaN) = NaN. With no spike gradient, dL/do(t) exists only through the
    # reset path: attached, G(1) = g(2) (-decay) NaN = NaN reaches t = 1 and 0 (none leaves t = 2);
    # detached, no surrogate term exists at all and dx is the windowed surrogates' one.
    ("tanh", "hard", False, [NAN, 0.3, 0.3], None, 1.0, [NAN, NAN, 1 / 3]),
    ("tanh", "hard", True, [NAN, 0.3, 0.3], None, 1.0, [7 / 16, 5 / 12, 1 / 3]),
    # +inf at t = 1 fires; the hard reset makes u(2) = inf * 0 + 0.3 = NaN. g(2) = 0 (outside the
    # window); G(1) = 1 + 0 * (-decay * inf) = NaN, outside the window at u = inf: g(1) = 0 + 0 * 0;
    # G(0) = 1: dx(0) = sg(0.3). tanh: g(2) = 1 * sg(NaN) = NaN, which reaches every timestep.
    ("rect", "hard", False, [0.3, INF, 0.3], [1.0, 1.0, 1.0], None, [1 / ALPHA, 0.0, 0.0]),
    ("dspike", "hard", False, [0.3, INF, 0.3], [1.0, 1.0, 1.0], None, [_sg_dspike(0.3), 0.0, 0.0]),
    ("tanh", "hard", False, [0.3, INF, 0.3], [1.0, 1.0, 1.0], None, [NAN, NAN, NAN]),
    # -inf at t = 0: u = -inf throughout, no spike, sg(-inf) = 0 exactly. g(2) = 1 * 0 + c = 1/3;
    # attached: G(1) = 1 + (1/3) (-decay) (-inf) = +inf, and inf * sg(-inf) = inf * 0 = NaN;
    # detached: G(1) = 1, g(1) = 0 + c + decay g(2) = 5/12, g(0) = 7/16.
    ("tanh", "hard", False, [-INF, 0.3, 0.3], [1.0, 1.0, 1.0], 1.0, [NAN, NAN, 1 / 3]),
    ("tanh", "hard", True, [-INF, 0.3, 0.3], [1.0, 1.0, 1.0], 1.0, [7 / 16, 5 / 12, 1 / 3]),
    # Soft reset at -inf: the reset path carries -decay * vth (finite), so nothing is NaN:
    # g(2) = g(1) = 0 and dx(0) = sg(0.3).
    ("tanh", "soft", False, [0.3, -INF, 0.3], [1.0, 1.0, 1.0], None, [_sg_tanh(0.3), 0.0, 0.0]),
    # +-inf at the last step (flat surrogate there; no reset path leaves t = T - 1): u(0) = 1 fires,
    # dx(0) = sg(1) whatever the reset.
    *[("tanh", r, False, [1.0, v], [1.0, 1.0], None, [_sg_tanh(1.0), 0.0])
      for r in ("hard", "soft") for v in (INF, -INF)],
]


@pytest.mark.parametrize("backend,compact", PATHS)
@pytest.mark.parametrize("surrogate,reset,detach,x,grad_spikes,grad_mean,expected", HAND_CASES,
                         ids=lambda v: str(v).replace(" ", "") if isinstance(v, list) else None)
def test_backward_by_hand(device, backend, compact, surrogate, reset, detach, x, grad_spikes, grad_mean, expected):
    x = torch.tensor(x, device=device)[:, None]
    gs = None if grad_spikes is None else torch.tensor(grad_spikes, device=device)[:, None]
    dx = _dx(x, backend, compact, gs, grad_mean, surrogate=surrogate, reset=reset, detach_reset=detach)
    # the membrane's bf16 rounding in the compact state (0.3 -> 0.30078) moves sg by ~1e-3
    tol = 4e-3 if compact else 1e-6
    torch.testing.assert_close(dx.cpu(), torch.tensor(expected)[:, None], rtol=0, atol=tol, equal_nan=True)


def _nonfinite_batch():
    """x [3, 40]: four finite neurons (no spikes; spikes at t = 0 and 2; at t = 0 and 1; starting
    outside the windows), each also with NaN, +inf and -inf put at each timestep. Every finite
    membrane is at least 0.05 from vth and the window edges, so the compact state's bf16 rounding
    moves no spike and no window test."""
    base = torch.tensor([[0.3, 0.8, 0.7, 1.5],
                         [0.3, 0.1, 0.7, -0.4],
                         [0.3, 0.9, 0.2, 0.2]])
    columns = [base]
    for value, t in itertools.product((NAN, INF, -INF), range(3)):
        poisoned = base.clone()
        poisoned[t] = value
        columns.append(poisoned)
    return torch.cat(columns, dim=1)


def _assert_same_nonfinite(dx, ref, what):
    for name, test in (("NaN", torch.isnan), ("+inf", torch.isposinf), ("-inf", torch.isneginf)):
        differ = test(dx) != test(ref)
        assert not differ.any(), f"{what}: {name} at different positions {differ.nonzero().tolist()[:5]}"


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("grads", ["spikes", "mean", "both"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_all_backends_agree(device, surrogate, reset, detach, grads, dtype):
    x = _nonfinite_batch().to(device, dtype)
    g = torch.Generator().manual_seed(13)
    gs = (torch.rand(x.shape, generator=g) + 0.5).to(device, dtype) if grads != "mean" else None
    gm = 3.0 if grads != "spikes" else None
    params = {"surrogate": surrogate, "reset": reset, "detach_reset": detach}
    ref = _dx(x, "naive", False, gs, gm, **params).cpu().float()
    rtol = GRAD_RTOL[dtype]  # dx is rounded to the storage dtype: one ulp apart at most
    backends = runnable(device)
    compact_ref = None
    for backend, compact in itertools.product(backends, (False, True)):
        what = f"{backend}{' compact' if compact else ''}"
        dx = _dx(x, backend, compact, gs, gm, **params).cpu().float()
        _assert_same_nonfinite(dx, ref, what)
        finite = ref.isfinite()
        if compact:  # a bf16 membrane: close to naive, and the fused backends agree among themselves
            torch.testing.assert_close(dx[finite], ref[finite], rtol=2e-2, atol=2e-2, msg=lambda e: f"{what}: {e}")
            compact_ref = dx if compact_ref is None else compact_ref
            torch.testing.assert_close(dx[finite], compact_ref[finite], rtol=rtol, atol=rtol,
                                       msg=lambda e: f"{what} vs torch compact: {e}")
        else:
            torch.testing.assert_close(dx[finite], ref[finite], rtol=rtol, atol=rtol, msg=lambda e: f"{what}: {e}")
