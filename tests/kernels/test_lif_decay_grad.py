"""A learnable decay: `lif_scan(x, decay=<0-d tensor>)` gives dL/d decay from the fused backward.

The reference is autograd through the `naive` loop with the decay as a tensor; two cases are
worked out by hand (numpy) so that the reset term in du(t+1)/d decay = v(t), the membrane after
reset, is checked independently of the code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kernels import SURROGATES, lif_scan
from kernels.lif import dispatch, fused_torch

from .lif_check import fused_backends, runnable


def _loss_and_grads(x, decay_value, backend, gs, gm, dtype=torch.float32, **params):
    x = x.detach().clone().requires_grad_()
    decay = torch.tensor(decay_value, dtype=dtype, requires_grad=True)
    spikes, u_mean = lif_scan(x, decay=decay, backend=backend, **params)
    loss = (spikes * gs).sum() + gm * u_mean
    loss.backward()
    return spikes.detach(), x.grad, decay.grad


@pytest.mark.parametrize("backend", fused_backends())
@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize(("reset", "detach_reset"), [("hard", False), ("hard", True), ("soft", False), ("soft", True)])
def test_decay_gradient_equals_autograd_on_naive(backend, surrogate, reset, detach_reset, device):
    g = torch.Generator().manual_seed(11)
    x = (0.6 * torch.randn(7, 3, 45, generator=g) + 0.3).to(device)
    gs = torch.randn(x.shape, generator=g).to(device)
    params = dict(surrogate=surrogate, alpha=1.7, reset=reset, detach_reset=detach_reset)
    s, dx, dd = _loss_and_grads(x, 0.4, backend, gs, 1.5, **params)
    rs, rdx, rdd = _loss_and_grads(x, 0.4, "naive", gs, 1.5, **params)
    assert torch.equal(s, rs)
    torch.testing.assert_close(dx, rdx, rtol=1e-5, atol=1e-5)
    assert dd.shape == () and dd.dtype == torch.float32 and dd.device == rdd.device
    torch.testing.assert_close(dd, rdd, rtol=2e-5, atol=1e-5 * rdd.abs().item())


@pytest.mark.parametrize("backend", ["naive", *fused_backends()])
@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("x1", [0.3, 0.7])  # below and above vth = 0.5: the second fires at t = 1
def test_decay_gradient_by_hand(backend, reset, x1, device):
    """T = 2, one neuron, L = o(2) + gm * mean(u). By hand: u(1) = x1, o(1) = 1[x1 >= vth],
    v(1) = u(1) (1 - o(1)) (hard) or u(1) - vth o(1) (soft), u(2) = decay v(1) + x2, so
    dL/d decay = (sg(u(2)) + gm / 2) * v(1), sg the tanh surrogate alpha/2 (1 - tanh^2(alpha (u - vth)))."""
    vth, decay, alpha, x2, gm = 0.5, 0.25, 2.0, 0.45, 3.0
    o1 = float(x1 >= vth)
    v1 = x1 * (1 - o1) if reset == "hard" else x1 - vth * o1
    u2 = decay * v1 + x2
    expected = (alpha / 2 * (1 - np.tanh(alpha * (u2 - vth)) ** 2) + gm / 2) * v1
    x = torch.tensor([[x1], [x2]], device=device)
    gs = torch.tensor([[0.0], [1.0]], device=device)
    _, _, dd = _loss_and_grads(x, decay, backend, gs, gm, vth=vth, alpha=alpha, reset=reset)
    assert math.isclose(dd.item(), expected, rel_tol=1e-5, abs_tol=1e-7), (dd.item(), expected)


@pytest.mark.parametrize("backend", fused_backends())
def test_compact_state_decay_gradient_is_close(backend, device):
    """The compact state's bf16 membrane enters v(t): the decay gradient stays within the
    compact state's documented error (relative, docs/kernel.md)."""
    g = torch.Generator().manual_seed(5)
    x = (0.6 * torch.randn(6, 200, generator=g) + 0.3).to(device)
    gs = torch.randn(x.shape, generator=g).to(device)
    exact = x.detach().clone().requires_grad_()
    compact = x.detach().clone().requires_grad_()
    grads = []
    for inp, flag in ((exact, False), (compact, True)):
        decay = torch.tensor(0.3, requires_grad=True)
        spikes, u_mean = lif_scan(inp, decay=decay, backend=backend, compact_state=flag)
        ((spikes * gs).sum() + 2.0 * u_mean).backward()
        grads.append(decay.grad.item())
    assert abs(grads[1] - grads[0]) <= 1e-2 * abs(grads[0])


def test_cpu_decay_gradient_is_the_same_bits_for_any_thread_count():
    if "cpu" not in runnable("cpu"):
        pytest.skip("the native cpu kernel is not built")
    g = torch.Generator().manual_seed(2)
    x = 0.6 * torch.randn(4, 3 * 4096 + 5, generator=g) + 0.3
    gs = torch.randn(x.shape, generator=g)
    previous = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(_loss_and_grads(x, 0.5, "cpu", gs, 1.0)[2])
    finally:
        torch.set_num_threads(previous)
    assert all(torch.equal(r, results[0]) for r in results)


@pytest.mark.parametrize("backend", fused_backends())
def test_a_tensor_decay_without_grad_gives_the_float_decays_result(backend, device):
    x = (0.6 * torch.randn(5, 33, generator=torch.Generator().manual_seed(1)) + 0.3).to(device).requires_grad_()
    spikes, u_mean = lif_scan(x, decay=torch.tensor(0.3), backend=backend)
    (spikes.sum() + u_mean).backward()
    y = x.detach().clone().requires_grad_()
    rspikes, ru_mean = lif_scan(y, decay=0.3, backend=backend)
    (rspikes.sum() + ru_mean).backward()
    assert torch.equal(spikes, rspikes) and torch.equal(u_mean, ru_mean) and torch.equal(x.grad, y.grad)


def test_only_the_decay_needing_a_gradient_still_runs_the_backward():
    x = 0.6 * torch.randn(4, 20, generator=torch.Generator().manual_seed(3)) + 0.3
    decay = torch.tensor(0.25, requires_grad=True)
    spikes, u_mean = lif_scan(x, decay=decay, backend="torch")
    u_mean.backward()
    ref = torch.tensor(0.25, requires_grad=True)
    lif_scan(x, decay=ref, backend="naive")[1].backward()
    torch.testing.assert_close(decay.grad, ref.grad)


@pytest.mark.parametrize(("decay", "error", "match"), [
    (torch.tensor([0.25]), TypeError, "decay must be a number or a 0-d floating tensor"),
    (torch.tensor(1), TypeError, "decay must be a number or a 0-d floating tensor"),
    (torch.tensor(1.5), ValueError, "decay must lie in"),
])
def test_a_bad_decay_tensor_is_refused(decay, error, match):
    with pytest.raises(error, match=match):
        lif_scan(torch.zeros(2, 3), decay=decay, backend="torch")


def test_opcheck_scan_bwd_with_the_decay_gradient():
    x = (0.6 * torch.randn(3, 2, 37, generator=torch.Generator().manual_seed(4)) + 0.3)
    decay = torch.tensor(0.3, requires_grad=True)
    args = (0.5, decay, "atan", dispatch.scalar_arg(1.3), "soft", False, "torch", "exact")
    torch.library.opcheck(torch.ops.lif.scan_fwd.default, (x.requires_grad_(), *args))
    spikes, _, u, bits = torch.ops.lif.scan_fwd(x.detach(), *args)
    grad_spikes = torch.randn(spikes.shape, generator=torch.Generator().manual_seed(5))
    torch.library.opcheck(torch.ops.lif.scan_bwd.default,
                          (grad_spikes, torch.tensor(2.0), u, bits, 0.5, decay.detach(), "atan",
                           dispatch.scalar_arg(1.3), "soft", False, "torch", "exact", True, spikes.shape,
                           spikes.stride(), x.dtype))


@pytest.mark.parametrize("backend", fused_backends("cpu"))  # CPU tensors: triton interpreted
def test_compiled_learnable_decay_matches_eager_and_never_recompiles(backend):
    """Under torch.compile the decay tensor is a graph input: new values (a training step each)
    reuse the graph, and the gradients equal eager ones."""
    from torch._dynamo.testing import CompileCounterWithBackend

    counter = CompileCounterWithBackend("aot_eager")
    fn = torch.compile(lambda x, d: lif_scan(x, decay=d, surrogate="atan", backend=backend), backend=counter,
                       fullgraph=True)
    g = torch.Generator().manual_seed(8)
    x = 0.6 * torch.randn(4, 30, generator=g) + 0.3
    for value in (0.2, 0.35, 0.5, 0.65):
        grads = []
        for run in (fn, lambda x, d: lif_scan(x, decay=d, surrogate="atan", backend=backend)):
            xx = x.clone().requires_grad_()
            d = torch.tensor(value, requires_grad=True)
            spikes, u_mean = run(xx, d)
            (spikes.sum() + 2 * u_mean).backward()
            grads.append((xx.grad, d.grad))
        torch.testing.assert_close(grads[0], grads[1])
    assert counter.frame_count == 1


@pytest.mark.parametrize("backend", ["naive", *fused_backends()])
@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("x0", [0.3, 0.7])  # below and above vth = 0.5: the second fires and resets at t = 0
@pytest.mark.parametrize("last", [math.inf, -math.inf])
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the interpreter's NumPy
def test_decay_gradient_ignores_a_non_finite_last_step(backend, reset, x0, last, device):
    """v(T - 1) multiplies nothing (there is no u(T)), so an infinite last input must not reach
    dL/d decay: a backward that formed g(T) v(T - 1) with g(T) = 0 would make 0 * inf = NaN.
    By hand, T = 2, one neuron, L = o(1) + gm * mean(u): sg(u(1) = +-inf) = 0, so
    g(1) = gm / 2 and dL/d decay = g(1) v(0), v(0) = x0 (1 - o(0)) or x0 - vth o(0)."""
    vth, gm = 0.5, 3.0
    o0 = float(x0 >= vth)
    v0 = x0 * (1 - o0) if reset == "hard" else x0 - vth * o0
    x = torch.tensor([[x0], [last]], device=device)
    gs = torch.tensor([[0.0], [1.0]], device=device)
    _, _, dd = _loss_and_grads(x, 0.25, backend, gs, gm, vth=vth, surrogate="atan", alpha=2.0, reset=reset)
    assert math.isclose(dd.item(), gm / 2 * v0, rel_tol=1e-6, abs_tol=1e-7), (dd.item(), gm / 2 * v0)


@pytest.mark.parametrize("backend", fused_backends())
@pytest.mark.parametrize("reset", ["hard", "soft"])
def test_decay_gradient_sums_every_program_and_chunk(backend, reset, device, monkeypatch):
    """The decay gradient is reduced per Triton program (512 neurons in its decay-gradient
    variants), per cpu chunk (4096 neurons) and per torch chunk, then summed: with N spanning
    several of each, every neuron's dx and every partial sum must be there exactly once (the other
    tests fit in one)."""
    monkeypatch.setattr(fused_torch, "CHUNK", 4096)  # its own chunk (2^18) would need a large N
    g = torch.Generator().manual_seed(21)
    x = (0.6 * torch.randn(3, 2 * 4096 + 37, generator=g) + 0.3).to(device)
    gs = torch.randn(x.shape, generator=g).to(device)
    params = dict(surrogate="atan", alpha=1.7, reset=reset)
    s, dx, dd = _loss_and_grads(x, 0.4, backend, gs, 1.5, **params)
    rs, rdx, rdd = _loss_and_grads(x, 0.4, "naive", gs, 1.5, **params)
    assert torch.equal(s, rs)
    torch.testing.assert_close(dx, rdx, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dd, rdd, rtol=2e-5, atol=1e-5 * rdd.abs().item())


@pytest.mark.parametrize("backend", fused_backends())
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_input_keeps_the_decay_gradient_in_fp32(backend, dtype, device):
    """dL/d decay is a sum over all neurons in the compute dtype (fp32 for half storage): it must
    reach an fp32 decay unrounded, not through the storage dtype (a bf16 rounding is 2^-9 relative).
    The naive loop computes in fp32 from the same half input."""
    g = torch.Generator().manual_seed(12)
    x = (0.6 * torch.randn(5, 2, 37, generator=g) + 0.3).to(dtype).to(device)
    gs = torch.randn(x.shape, generator=g).to(device)
    params = dict(surrogate="tanh", alpha=1.3, reset="soft")
    s, _, dd = _loss_and_grads(x, 0.35, backend, gs, 2.0, **params)
    rs, _, rdd = _loss_and_grads(x, 0.35, "naive", gs, 2.0, **params)
    assert torch.equal(s, rs) and dd.dtype == torch.float32
    torch.testing.assert_close(dd, rdd, rtol=2e-5, atol=1e-6 * rdd.abs().item())
