"""lif_scan beyond the property tests: bad input, memory layouts, saved state, determinism,
non-finite input, the compact state, int64 offsets and gradcheck."""

from __future__ import annotations

import math
from unittest import mock

import pytest
import torch
import triton
import triton.language as tl

from kernels import SURROGATES, lif_scan
from kernels.lif import fused_torch, fused_triton
from kernels.lif.backends import backend_module
from kernels.lif.naive import asymptotic
from kernels.lif.params import LIFParams
from kernels.profiling import saved_tensor_bytes

from .lif_check import assert_matches_naive, fused_backends, run

FUSED = fused_backends()


def _x(shape=(4, 3, 50), seed=0, device="cpu", dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (0.6 * torch.randn(shape, generator=g) + 0.3).to(device=device, dtype=dtype)


def _grad(shape, seed=1, device="cpu", dtype=torch.float32):
    """A seeded standard-normal upstream gradient."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool, torch.uint8])
def test_rejects_non_float_dtype(dtype):
    with pytest.raises(TypeError, match=r"floating tensor.*got dtype"):
        lif_scan(torch.zeros(2, 3, dtype=dtype))


@pytest.mark.parametrize(("x", "match"), [
    (torch.tensor(1.0), "0-d tensor"),
    (torch.zeros(0, 4), "T >= 1"),
    (torch.zeros(3, 0), "at least one neuron"),
])
def test_rejects_bad_shapes(x, match):
    with pytest.raises(ValueError, match=match):
        lif_scan(x)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"alpha": 0.0}, ValueError, "alpha must be > 0"),
    ({"alpha": -1.0}, ValueError, "alpha must be > 0"),
    ({"alpha": float("nan")}, ValueError, "alpha must be finite"),
    ({"alpha": torch.tensor(2.0)}, TypeError, "alpha must be a real number"),
    ({"vth": 0.0, "surrogate": "dspike"}, ValueError, "dspike.*vth > 0"),
    ({"vth": -0.5, "surrogate": "dspike"}, ValueError, "dspike.*vth > 0"),
    ({"decay": 1.5}, ValueError, r"decay must lie in \[0, 1\]"),
    ({"decay": -0.1}, ValueError, r"decay must lie in \[0, 1\]"),
    ({"surrogate": "sigmoid"}, ValueError, "surrogate must be one of"),
    ({"reset": "none"}, ValueError, "reset must be one of"),
    ({"backend": "cuda"}, ValueError, "backend must be one of"),
    ({"detach_reset": 1}, TypeError, "detach_reset must be a bool"),
    ({"compact_state": "yes"}, TypeError, "compact_state must be a bool"),
    ({"compact_state": True, "backend": "naive"}, ValueError, "compact_state=True needs a fused backend"),
])
def test_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        lif_scan(torch.zeros(2, 3), **kwargs)


# The fp32 range edges the parameters are checked against (kernels/lif/params.py):
TINY, MAX = 2.0 ** -126, torch.finfo(torch.float32).max  # smallest normal and largest fp32 number
ALPHA_LO, ALPHA_HI = 2.0 ** -125, 2.0 ** 126  # alpha / 2 and 1 / alpha stay normal, 2 alpha finite
ALPHA_RANGE = r"alpha must .*lie in \[2.3509887e-38, 8.5070592e\+37\]"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"alpha": 1e38}, ALPHA_RANGE),  # the reported case: finite as a float64, NaN gradients in fp32
    ({"alpha": math.nextafter(ALPHA_HI, math.inf)}, ALPHA_RANGE),
    ({"alpha": math.nextafter(ALPHA_LO, 0.0)}, ALPHA_RANGE),
    ({"alpha": 1e-39}, ALPHA_RANGE),
    ({"vth": 1e-39}, r"vth must be 0 or of magnitude in \[1.1754944e-38, 3.4028235e\+38\]"),
    ({"vth": -math.nextafter(MAX, math.inf)}, r"vth must be 0 or of magnitude in"),
    ({"vth": math.nextafter(MAX / 2, math.inf), "surrogate": "dspike"},
     r"dspike.*vth in \[1.1754944e-38, 1.7014117e\+38\]"),
    ({"vth": math.nextafter(TINY, 0.0), "surrogate": "dspike"}, r"dspike.*vth in \[1.1754944e-38"),
    ({"vth": 1e-37, "alpha": 1e3, "surrogate": "dspike"}, r"dspike.*gradient scale .* = 2.5e\+39 must lie in"),
    ({"vth": 1e38, "alpha": 1.0, "surrogate": "dspike"}, r"dspike.*gradient scale .* must lie in \[1.1754944e-38"),
    ({"decay": 1e-40}, r"decay must be 0 or in \[1.1754944e-38, 1\]"),
])
def test_rejects_parameters_outside_the_fp32_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lif_scan(torch.zeros(2, 3), **kwargs)


# At the edges of the accepted ranges every backend computes the surrogate's peak, at u = vth, as a
# finite number: tanh alpha / 2, rect 1 / alpha, Dspike alpha / (2 tanh(alpha / 2) 2 vth).
EDGE_PEAKS = [("tanh", ALPHA_HI, 0.5, ALPHA_HI / 2), ("tanh", ALPHA_LO, 0.5, ALPHA_LO / 2),
              ("tanh", 1.0, -MAX, 0.5), ("rect", ALPHA_HI, 0.5, 1 / ALPHA_HI), ("rect", ALPHA_LO, 0.5, 1 / ALPHA_LO),
              ("rect", 1.0, TINY, 1.0), ("dspike", ALPHA_HI, 0.5, ALPHA_HI / 2), ("dspike", ALPHA_LO, 0.5, 1.0),
              ("dspike", 1.0, TINY, 1 / (2 * math.tanh(0.5) * 2 * TINY))]


@pytest.mark.parametrize("backend", ["naive", *FUSED])
@pytest.mark.parametrize(("surrogate", "alpha", "vth", "peak"), EDGE_PEAKS)
def test_range_edges_give_the_finite_surrogate_peak(backend, surrogate, alpha, vth, peak, device):
    x = torch.tensor([[vth]], device=device).requires_grad_()  # T = 1, so u = x = vth
    spikes, _ = lif_scan(x, vth=vth, surrogate=surrogate, alpha=alpha, backend=backend)
    spikes.sum().backward()
    assert spikes.item() == 1.0
    assert x.grad.item() == pytest.approx(peak, rel=1e-6)


def test_rejects_non_tensor():
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        lif_scan([[0.0, 1.0]])


def test_triton_on_cpu_needs_the_interpreter(monkeypatch):
    monkeypatch.setattr(fused_triton, "_INTERPRETING", False)  # what TRITON_INTERPRET unset at triton's import gives
    with pytest.raises(ValueError, match="needs a CUDA tensor, or TRITON_INTERPRET=1"):
        lif_scan(torch.zeros(2, 3), backend="triton")


def test_triton_takes_meta_tensors_without_the_interpreter(monkeypatch):
    """Meta tensors need only the op's fake implementation, so no CUDA device or interpreter."""
    monkeypatch.setattr(fused_triton, "_INTERPRETING", False)
    spikes, u_mean = lif_scan(torch.empty(2, 3, 5, device="meta"), backend="triton")
    assert spikes.shape == (2, 3, 5) and spikes.device.type == "meta" and u_mean.shape == ()


def test_triton_rejects_float64(device):
    with pytest.raises(TypeError, match="use backend='torch' for float64"):
        lif_scan(torch.zeros(2, 3, dtype=torch.float64, device=device), backend="triton")


# ---------------------------------------------------------------- layouts

@pytest.mark.parametrize("backend", FUSED)
def test_channels_last_view_is_used_in_place(backend, device):
    """[T, B, C, H, W] views of channels_last maps: outputs keep the layout, no copy is made."""
    T, B, C, H, W = 3, 2, 5, 4, 3
    x = _x((T * B, C, H, W), device=device).to(memory_format=torch.channels_last).view(T, B, C, H, W)
    assert not x.is_contiguous()
    gs = torch.randn(x.shape, device=device)  # contiguous upstream gradient: a different layout
    with mock.patch.object(torch.Tensor, "contiguous", side_effect=AssertionError("copied")):
        spikes, _ = lif_scan(x.detach(), backend=backend)
    assert spikes.stride() == x.stride()
    assert_matches_naive(x, backend, gs, 2.0)


@pytest.mark.parametrize("backend", ["naive", *FUSED])
def test_transposed_input_gives_spikes_and_gradient_in_its_layout(backend, device):
    """A dense x whose time dimension is not outermost ([B, T, N] memory seen as [T, B, N]):
    spikes and dL/dx come back with x's strides (torch's rule for elementwise ops)."""
    x = _x((3, 4, 50), device=device).transpose(0, 1)
    assert x.stride() == (50, 200, 1)
    spikes, _ = lif_scan(x, backend=backend)
    assert spikes.stride() == x.stride()
    xg = x.detach().clone().requires_grad_()  # clone keeps the dense layout
    spikes, u_mean = lif_scan(xg, backend=backend)
    (spikes.sum() + u_mean).backward()
    if backend != "naive":  # naive's dx is whatever autograd makes; the fused dx follows the spikes
        assert xg.grad.stride() == x.stride()
    assert_matches_naive(x, backend, torch.randn(x.shape, device=device), 2.0)


@pytest.mark.parametrize("backend", ["naive", *FUSED])
def test_non_dense_input_gives_contiguous_spikes(backend, device):
    x = _x((4, 6, 40), device=device)[:, ::2, 3:]
    assert lif_scan(x, backend=backend)[0].stride() == (111, 37, 1)


@pytest.mark.parametrize("backend", FUSED)
def test_non_dense_input(backend, device):
    x = _x((4, 6, 40), device=device)[:, ::2, 3:]
    assert_matches_naive(x, backend, torch.randn(x.shape, device=device), -1.0)


@pytest.mark.parametrize("backend", FUSED)
def test_time_slice_input(backend, device):
    x = _x((8, 2, 30), device=device)[1::2]
    assert_matches_naive(x, backend, torch.randn(x.shape, device=device), 0.5)


# ---------------------------------------------------------------- saved state

@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_exact_state_saves_fp32_membrane_only(backend, dtype, device):
    x = _x((4, 3, 50), device=device, dtype=dtype).requires_grad_()
    assert saved_tensor_bytes(lambda: lif_scan(x, backend=backend)) == 4 * x.numel()


@pytest.mark.parametrize("backend", FUSED)
def test_compact_state_bytes(backend, device):
    x = _x((4, 3, 50), device=device).requires_grad_()
    T, N = 4, 150
    nbytes = saved_tensor_bytes(lambda: lif_scan(x, backend=backend, compact_state=True))
    assert nbytes == 2 * T * N + T * -(-N // 8)


@pytest.mark.parametrize("backend", FUSED)
def test_inference_saves_nothing(backend, device):
    module = backend_module(backend)
    x = _x(device=device)
    for requires_grad, grad_enabled in [(False, True), (True, False)]:
        with mock.patch.object(module, "fwd", wraps=module.fwd) as spy, torch.set_grad_enabled(grad_enabled):
            spikes, u_mean = lif_scan(x.clone().requires_grad_(requires_grad), backend=backend)
        assert spy.call_args.args[3] is None  # save=None: no membrane written
        assert not spikes.requires_grad and not u_mean.requires_grad


@pytest.mark.parametrize("backend", FUSED)
def test_compact_state_holds_exact_spikes_and_rounded_membrane(backend, device):
    module = backend_module(backend)
    T, N = 5, 1029
    x = _x((T, N), device=device)
    spikes = torch.empty_like(x)
    (u_exact,), _ = module.fwd(x, torch.empty_like(x), LIFParams(), "exact")
    (u_half, bits), _ = module.fwd(x, spikes, LIFParams(), "compact")
    torch.testing.assert_close(u_half, u_exact.to(torch.bfloat16), rtol=0, atol=0)  # round to nearest even
    for t in range(T):
        assert torch.equal(fused_torch.unpack_bits(bits[t].cpu(), N), spikes[t].cpu().bool())


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize(("surrogate", "alpha", "bound"), [("tanh", 1.0, 3e-3), ("tanh", 10.0, 2e-2),
                                                         ("rect", 1.0, 8e-2), ("dspike", 3.0, 4e-2)])
def test_compact_state_gradient_error(backend, surrogate, alpha, bound, device):
    """Spikes are exact; dx moves by the bf16 rounding of u (relative L2 error, measured)."""
    x = _x((4, 4096), device=device)
    gs = 1e-3 * _grad(x.shape, device=device)
    kw = {"surrogate": surrogate, "alpha": alpha}
    s, m, dx = run(x, backend, gs, 2.0, **kw)
    cs, cm, cdx = run(x, backend, gs, 2.0, compact_state=True, **kw)
    assert torch.equal(s, cs) and torch.equal(m, cm)
    err = ((cdx - dx).norm() / dx.norm()).item()
    assert 0 < err < bound


@pytest.mark.parametrize("backend", FUSED)
def test_compact_state_backward_takes_spikes_from_the_bits(backend, device):
    """Membranes just below vth = 0.5 whose bf16 rounding is exactly 0.5: the saved bits say 0,
    recomputing u >= vth from the bf16 membrane would say 1. Hard reset, decay 0.25, tanh with
    alpha = 1 (surrogate 0.5 at u = vth), loss = o(1), both membranes seen as 0.5 in the backward:
      u(0) = 1023/2048, u(1) = 0.25 u(0) + 3/8 = 4095/8192: o = 0, 0 (bf16: 0.5, 0.5)
      dx(1) = sg(0.5) = 0.5
      dx(0) = (dx(1) * -0.25 * 0.5) * sg(0.5) + dx(1) * 0.25 * (1 - o(0)) = -0.03125 + 0.125 = 0.09375
    (a backward using 1[bf16(u(0)) >= vth] would give dx(0) = -0.03125)."""
    x = torch.tensor([[1023 / 2048], [3 / 8]], device=device).requires_grad_()
    spikes, _ = lif_scan(x, backend=backend, compact_state=True)
    spikes[1].sum().backward()
    assert spikes.detach().tolist() == [[0.0], [0.0]]
    assert x.grad.tolist() == [[0.09375], [0.5]]


# ---------------------------------------------------------------- numerics

@pytest.mark.parametrize("backend", FUSED)
def test_deterministic(backend, device):
    x = _x((6, 2100), device=device)
    gs = _grad(x.shape, device=device)
    first = run(x, backend, gs, 2.0)
    second = run(x, backend, gs, 2.0)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@pytest.mark.parametrize("backend", ["naive", *FUSED])
@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_input_shows_in_u_mean(backend, bad, device):
    x = _x(device=device)
    x[2, 1, 7] = bad
    _, u_mean = lif_scan(x, backend=backend)
    assert not torch.isfinite(u_mean)


NAN, INF = float("nan"), float("inf")
# Columns are neurons, rows timesteps; vth = 0.5, decay = 0.25. Spikes follow IEEE arithmetic of
# the recurrence with the rule that a NaN membrane never fires (NaN >= vth is false):
#   NaN from t = 0; NaN after a spike; +inf (hard reset: inf * (1 - 1) = NaN at t = 1; soft:
#   inf - vth stays inf); -inf (stays -inf); +inf after a spike; a finite control.
NON_FINITE_X = [[NAN, 0.6, INF, -INF, 0.6, 0.6],
                [0.6, NAN, 0.6, 0.6, INF, 0.3],
                [0.6, 0.6, 0.6, 0.6, 0.6, 0.6]]
NON_FINITE_SPIKES = {"hard": [[0, 1, 1, 0, 1, 1],
                              [0, 0, 0, 0, 1, 0],
                              [0, 0, 0, 0, 0, 1]],
                     "soft": [[0, 1, 1, 0, 1, 1],
                              [0, 0, 1, 0, 1, 0],
                              [0, 0, 1, 0, 1, 1]]}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize(("backend", "mode"), [("naive", "inference"), ("naive", "grad"),
                                               *[pytest.param(*b.values, m, marks=b.marks) for b in FUSED
                                                 for m in ("inference", "grad", "compact")]])
def test_non_finite_membrane_spikes_are_0_or_1(backend, mode, reset, dtype, device):
    """Every backend and path (no grad, exact and compact saved state) emits 0/1 spikes for NaN
    and +-inf inputs, the hand-computed ones; a NaN membrane never fires."""
    x = torch.tensor(NON_FINITE_X, dtype=dtype, device=device).requires_grad_(mode != "inference")
    spikes, u_mean = lif_scan(x, reset=reset, backend=backend, compact_state=mode == "compact")
    expected = torch.tensor(NON_FINITE_SPIKES[reset], dtype=dtype, device=device)
    assert torch.equal(spikes.detach(), expected), spikes
    assert torch.isnan(u_mean)


@pytest.mark.parametrize("backend", FUSED)
def test_only_one_output_used(backend, device):
    """Unused outputs arrive as None in the backward (no zero tensor) and still give naive's dx."""
    x = _x(device=device)
    assert_matches_naive(x, backend, None, 1.5)
    assert_matches_naive(x, backend, _grad(x.shape, device=device), None)


@triton.jit
def _offset_probe(out_ptr, t, N, pid, BLOCK: tl.constexpr):
    tl.store(out_ptr, fused_triton._row_start(t, N))
    tl.store(out_ptr + 1, tl.max(fused_triton._block_offsets(pid, BLOCK), axis=0))


def test_offsets_are_int64(device):
    """The offset helpers both kernels use stay exact past 2^31 (int32 would wrap)."""
    out = torch.zeros(2, dtype=torch.int64, device=device)
    t, N, pid, BLOCK = 3, 2 ** 30 + 5, 2 ** 22 + 1, 1024
    _offset_probe[(1,)](out, t, N, pid, BLOCK=BLOCK)
    assert out.tolist() == [t * N, pid * BLOCK + BLOCK - 1]


@pytest.mark.requires_cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device with ~20 GB free")
def test_more_than_2_31_elements_on_cuda():
    T, N = 2, 2 ** 30 + 3
    x = (0.6 * torch.randn(T, N, device="cuda") + 0.3).to(torch.bfloat16).requires_grad_()
    spikes, u_mean = lif_scan(x, backend="triton")
    (spikes[:, -4099:].float().sum() + u_mean).backward()
    tail = x[:, -4099:].detach()
    ref_s, _ = lif_scan(tail, backend="naive")
    assert torch.equal(spikes[:, -4099:], ref_s)
    assert torch.isfinite(x.grad[:, -4099:].float()).all() and x.grad[:, -4099:].float().abs().sum() > 0


# ---------------------------------------------------------------- gradcheck (float64, torch backend)

@pytest.mark.parametrize("reset", ["hard", "soft"])
def test_gradcheck_membrane_mean(reset):
    """With spikes locally constant and the reset path detached, u_mean is an exactly
    differentiable function of x: the hand-written backward must equal finite differences."""
    x = _x((5, 7), seed=3, dtype=torch.float64).requires_grad_()
    fn = lambda x: lif_scan(x, reset=reset, detach_reset=True, backend="torch")[1]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-7, atol=1e-9)


class _SurrogatePhi(torch.autograd.Function):
    """phi(u) forward with the fused torch backend's hand-written surrogate as its backward."""

    @staticmethod
    def forward(ctx, u, p):
        ctx.save_for_backward(u)
        ctx.p = p
        return asymptotic(u, p)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        return g * fused_torch.surrogate_grad(u, ctx.p), None


@pytest.mark.parametrize(("surrogate", "alpha"), [("tanh", 1.0), ("tanh", 7.5), ("dspike", 3.0), ("dspike", 0.7)])
def test_gradcheck_smooth_surrogates(surrogate, alpha):
    p = LIFParams(surrogate=surrogate, alpha=alpha, vth=0.6)
    lo, hi = (-1.0, 2.0) if surrogate == "tanh" else (0.01, 1.19)  # Dspike is smooth inside (0, 2 vth)
    u = torch.linspace(lo, hi, 97, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda u: _SurrogatePhi.apply(u, p), (u,))


# Dspike (Li et al. 2021) on x = u / (2 vth), b = 3: values computed by hand, independently of the
# code under test, from b (1 - tanh^2(b (x - 1/2))) / (2 tanh(b / 2)) / (2 vth), 0 outside
# 0 <= u <= 2 vth.
DSPIKE_B3 = {0.5: ([-0.01, 0.0, 0.25, 0.5, 0.75, 1.0, 1.01], [0.0, 0.2995, 0.9887, 1.6572, 0.9887, 0.2995, 0.0]),
             1.0: ([1.0], [0.8286])}


@pytest.mark.parametrize("vth", sorted(DSPIKE_B3))
@pytest.mark.parametrize("backend", ["naive", *FUSED])
def test_dspike_surrogate_is_centred_on_the_threshold(backend, vth, device):
    """T = 1, upstream spike gradient 1: dL/dx is the surrogate derivative at u = x."""
    u, expected = DSPIKE_B3[vth]
    x = torch.tensor(u, dtype=torch.float32, device=device)[None].requires_grad_()
    spikes, _ = lif_scan(x, vth=vth, surrogate="dspike", alpha=3.0, backend=backend)
    spikes.sum().backward()
    torch.testing.assert_close(x.grad[0].cpu(), torch.tensor(expected), atol=6e-5, rtol=0)


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("detach_reset", [False, True])
def test_float64_torch_backend_equals_autograd(surrogate, detach_reset):
    x = _x((6, 3, 40), seed=5, dtype=torch.float64)
    assert_matches_naive(x, "torch", _grad(x.shape, dtype=torch.float64), 2.0,
                         surrogate=surrogate, detach_reset=detach_reset, alpha=1.7)


def _compiled_count(kernel) -> int:
    return sum(len(cache[0]) for cache in kernel.device_caches.values())


@pytest.mark.requires_cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the interpreter compiles nothing)")
def test_no_recompile_across_batch_T_and_alpha():
    """One fp32 configuration: N % 16 == 0, N == 1 and any other N are the only compiled variants
    (see tests/kernels/test_lif_specialization.py for the rule)."""
    kernels = (fused_triton._lif_fwd_kernel, fused_triton._lif_bwd_kernel)
    for kernel in kernels:  # earlier tests compiled other configurations
        for cache in kernel.device_caches.values():
            cache[0].clear()
    for T, batch, alpha in [(4, 8, 1.0), (4, 16, 1.3), (4, 24, 2.0), (4, 40, 5.0), (4, 56, 10.0), (6, 8, 1.1),
                            (2, 3, 9.0)]:
        x = torch.randn(T, batch, 128, 7, 7, device="cuda").requires_grad_()  # N = batch * 6272, a multiple of 16
        spikes, u_mean = lif_scan(x, alpha=alpha, backend="triton")
        (spikes.sum() + u_mean).backward()
    assert [_compiled_count(k) for k in kernels] == [1, 1]
    for T, shape in [(4, (3, 5, 7)), (2, (8, 3, 3)), (5, (1,)), (3, (1,))]:  # N = 105, 72: other; N = 1
        x = torch.randn(T, *shape, device="cuda").requires_grad_()
        spikes, u_mean = lif_scan(x, alpha=1.7, backend="triton")
        (spikes.sum() + u_mean).backward()
    assert [_compiled_count(k) for k in kernels] == [3, 3]
