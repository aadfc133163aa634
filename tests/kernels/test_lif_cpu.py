"""The native `cpu` backend beyond the property tests: its saved state against the `torch`
backend's, the fixed summation order of u_mean, the absence of FMA contraction, float64, the
dispatch of 'auto' and its errors. (Spikes and dx against `naive`: test_lif_properties.py.)"""

from __future__ import annotations

import os
from unittest import mock

import numpy as np
import pytest
import torch

from kernels import SURROGATES, lif_scan
from kernels.lif import fused_cpu, fused_torch
from kernels.lif.params import LIFParams
from kernels.profiling import saved_tensor_bytes

from .lif_check import assert_matches_naive, fused_backends

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]

# CI (CI=true) builds the kernel with the package: there a missing kernel is a failure, not a skip.
pytestmark = pytest.mark.skipif(not fused_cpu.available() and not os.environ.get("CI"),
                                reason="the native cpu kernel is not built")


def test_the_native_kernel_is_built():
    assert fused_cpu.available(), "pip install -e . built no kernels/lif/_lif_cpu* (is a C++ compiler there?)"


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize(("reset", "detach_reset", "save"), [("hard", False, "exact"), ("hard", True, "compact"),
                                                              ("soft", False, "compact"), ("soft", True, "exact")])
def test_every_built_variant_gives_the_same_bits(surrogate, dtype, reset, detach_reset, save):
    """The AVX2 and baseline builds of the kernel (fused_cpu.VARIANTS) differ in vector width
    only: spikes, saved state, u_mean and dx are bit-identical."""
    built = {name: lib for name in fused_cpu.VARIANTS if (lib := fused_cpu.load_variant(name)) is not None}
    if len(built) < 2:
        pytest.skip(f"only {sorted(built)} built on this machine")
    p = LIFParams(surrogate=surrogate, alpha=1.7, reset=reset, detach_reset=detach_reset)
    x = _x((5, 1029), seed=3, dtype=dtype)
    gs = _x((5, 1029), seed=4, dtype=dtype)
    results = []
    for lib in built.values():
        with mock.patch.object(fused_cpu, "_LIBRARY", lib):
            spikes, dx = torch.empty_like(x), torch.empty_like(x)
            saved, u_mean = fused_cpu.fwd(x, spikes, p, save)
            fused_cpu.bwd(gs, torch.tensor(2.0), saved, p, dx)
        results.append([spikes, *saved, u_mean, dx])
    for a, b in zip(*results):
        assert torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8))



def _x(shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (0.6 * torch.randn(shape, generator=g) + 0.3).to(dtype)


@pytest.fixture
def threads():
    """Sets torch's thread count (the cpu kernel's) for one test, restoring it afterwards."""
    previous = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(previous)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("save", ["exact", "compact"])
@pytest.mark.parametrize("reset", ["hard", "soft"])
def test_saved_state_equals_torch_backend(dtype, save, reset):
    """Spikes, the fp32 (fp64) membrane, its bf16 rounding and the packed spike bits, bit for bit
    against the torch backend's in-place ops; N = 1029 is no multiple of 8, 16 or the chunk."""
    p = LIFParams(reset=reset)
    x = _x((5, 1029), seed=1, dtype=dtype)
    s_cpu, s_ref = torch.empty_like(x), torch.empty_like(x)
    with mock.patch.object(fused_cpu, "CHUNK", 136):
        saved_cpu, _ = fused_cpu.fwd(x, s_cpu, p, save)
    saved_ref, _ = fused_torch.fwd(x, s_ref, p, save)
    assert torch.equal(s_cpu, s_ref)
    assert len(saved_cpu) == len(saved_ref)
    for a, b in zip(saved_cpu, saved_ref):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a.view(torch.uint8), b.view(torch.uint8))  # bitwise, signed zeros included


def _documented_u_sum(u: torch.Tensor, chunk: int) -> float:
    """The order fused_cpu documents, re-implemented: per chunk and time step 16 fp32 lanes
    (element i of the row into lane i mod 16, in order), lanes added in order into a double per
    chunk, chunks added in order."""
    T, N = u.shape
    total = 0.0
    for a in range(0, N, chunk):
        part = 0.0
        for t in range(T):
            row = u[t, a:a + chunk].numpy()
            acc = np.zeros(16, dtype=np.float32)
            full = len(row) // 16 * 16
            for block in row[:full].reshape(-1, 16):
                acc += block
            acc[:len(row) - full] += row[full:]
            lanes = 0.0
            for value in acc:
                lanes += float(value)
            part += lanes
        total += part
    return total


def test_u_mean_is_summed_in_the_documented_order_whatever_the_thread_count(threads):
    """With decay 0, u = x; +-2^24 on every 16th neuron make the result depend on the lane
    assignment (a small value added to 2^24 in fp32 is lost), so another order shows."""
    T, N, chunk = 3, 64 * 7 + 21, 64
    x = _x((T, N), seed=2)
    x[:, 0::32], x[:, 16::32] = 2.0 ** 24, -(2.0 ** 24)
    p = LIFParams(decay=0.0)
    (u,), _ = fused_torch.fwd(x, torch.empty_like(x), p, "exact")  # the membrane, independently
    expected = torch.tensor(_documented_u_sum(u, chunk) / (T * N), dtype=torch.float32)
    with mock.patch.object(fused_cpu, "CHUNK", chunk):
        for n_threads in (1, 2, 3, 5):
            threads(n_threads)
            _, u_mean = fused_cpu.fwd(x, torch.empty_like(x), p, None)
            assert torch.equal(u_mean, expected), n_threads


def test_u_mean_bit_equal_across_thread_counts(threads):
    x = _x((4, 30011), seed=3)
    means = []
    for n_threads in (1, 2, 3):
        threads(n_threads)
        means.append(lif_scan(x, backend="cpu")[1])
    assert all(torch.equal(m, means[0]) for m in means)


def _fma_sensitive_input():
    """x [2, 1] fp32 with u(1) = fl(fl(decay u(0)) + x(1)) == vth = 0.5 exactly (a spike at t = 1)
    while the exact decay u(0) + x(1) lies more than half an ulp below 0.5: a fused
    multiply-add would round it below the threshold and lose the spike. decay = 0.9, u(0) < 0."""
    decay = np.float32(0.9)
    for v in np.arange(-3.0, -2.0, 2.0 ** -12, dtype=np.float32):
        product = decay * v  # fp32, rounded
        error = float(decay) * float(v) - float(product)  # the product of two fp32 is exact in double
        if error < -(2.0 ** -26) * 1.5:  # below 0.5 the fp32 spacing is 2^-25
            x1 = np.float32(0.5) - product
            assert float(x1) == 0.5 - float(product)  # exact: one spacing 2^-22
            return torch.tensor([[float(v)], [float(x1)]], dtype=torch.float32)
    raise AssertionError("no FMA-sensitive input found")


@pytest.mark.parametrize("backend", ["naive", *fused_backends("cpu")])
def test_no_fma_contraction_in_the_forward(backend):
    x = _fma_sensitive_input()
    spikes, _ = lif_scan(x, vth=0.5, decay=0.9, backend=backend)
    assert spikes.flatten().tolist() == [0.0, 1.0]


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("detach_reset", [False, True])
def test_float64_equals_naive(surrogate, reset, detach_reset):
    x = _x((6, 3, 40), seed=5, dtype=torch.float64)
    gs = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    assert_matches_naive(x, "cpu", gs, 2.0, surrogate=surrogate, reset=reset, detach_reset=detach_reset, alpha=1.7)


def test_strided_inputs_and_one_used_output():
    x = _x((4, 6, 40), seed=7)[:, ::2, 3:]
    gs = torch.randn(x.shape, generator=torch.Generator().manual_seed(8))
    assert_matches_naive(x, "cpu", gs, -1.0)
    assert_matches_naive(x, "cpu", None, 1.5)
    assert_matches_naive(x, "cpu", gs, None)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_saved_bytes(dtype):
    x = _x((4, 3, 50), dtype=dtype).requires_grad_()
    assert saved_tensor_bytes(lambda: lif_scan(x, backend="cpu")) == 4 * x.numel()
    assert saved_tensor_bytes(lambda: lif_scan(x, backend="cpu", compact_state=True)) == 2 * 600 + 4 * 19


def test_inference_saves_nothing():
    with mock.patch.object(fused_cpu, "fwd", wraps=fused_cpu.fwd) as spy:
        spikes, u_mean = lif_scan(_x((4, 50)), backend="cpu")
    assert spy.call_args.args[3] is None
    assert not spikes.requires_grad and not u_mean.requires_grad


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_input_shows_in_u_mean(bad):
    x = _x((4, 3, 50))
    x[2, 1, 7] = bad
    assert not torch.isfinite(lif_scan(x, backend="cpu")[1])


def test_auto_picks_cpu_and_falls_back_to_torch_without_the_kernel():
    x = _x((3, 20))
    with mock.patch.object(fused_cpu, "fwd", wraps=fused_cpu.fwd) as cpu_fwd:
        lif_scan(x)
    assert cpu_fwd.called
    with mock.patch.object(fused_cpu, "_LIBRARY", None), \
            mock.patch.object(fused_torch, "fwd", wraps=fused_torch.fwd) as torch_fwd:
        lif_scan(x)
        with pytest.raises(RuntimeError, match="native kernel .* was not built.*backend='torch' works"):
            lif_scan(x, backend="cpu")
    assert torch_fwd.called


def test_rejects_non_cpu_tensor():
    """Meta tensors go through the op's fake implementation (tests/kernels/test_compile.py); any
    other non-CPU tensor is refused by the kernel's own check."""
    with pytest.raises(ValueError, match="backend='cpu' needs a CPU tensor, got a tensor on meta"):
        fused_cpu.require(torch.zeros(2, 3, device="meta"))
