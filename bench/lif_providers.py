"""The LIF-scan providers the benchmarks compare, each doing the IM-Loss job: spikes plus a
differentiable membrane mean, forward and backward.

SpikingJelly 2.0 (`functional.lif_multi_step`, the op behind `LIFNode` in multi-step mode) is
configured to the same math: tau = 1 / (1 - decay), decay_input=False, v_reset=0 (hard) or None
(soft), v_threshold = vth, and its built-in Sigmoid surrogate with alpha_sj = 2 * alpha, since
0.5 tanh(a y) + 0.5 = sigmoid(2 a y): the same backward as our tanh surrogate. It exposes only
the post-reset membrane (store_v_seq=True), so its IM job is a loss on `v_seq.mean()`: the
closest expression of the paper's pre-reset mean, at the cost of an extra [T, N] fp32 write and
read. That mean is a different quantity, so its u_mean is not compared with ours.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from kernels import lif_scan
from kernels.lif.naive import lif_scan_naive
from kernels.lif.params import LIFParams

from .roofline import COMPACT_STATE_BYTES, EXACT_STATE_BYTES


@dataclass(frozen=True)
class Provider:
    name: str
    run: Callable[[torch.Tensor, LIFParams], tuple]  # x [T, ...] -> (spikes, membrane mean)
    unavailable: Callable[[str, torch.dtype], Optional[str]]  # (device, dtype) -> reason or None
    state_bytes: float = EXACT_STATE_BYTES
    exact: bool = True  # spikes bit-equal to naive and dx to 1e-5; otherwise checked loosely
    pre_reset_mean: bool = True  # its mean is the paper's u_mean (compared with naive)


def _always(device, dtype):
    return None


INTERPRETED_TRITON = False  # set by --bench-tiny under TRITON_INTERPRET=1 (bench/conftest.py): the rehearsal


def _cuda_only(device, dtype):
    if device == "cuda" or INTERPRETED_TRITON:
        return None
    return "Triton kernels are timed on CUDA only (the interpreter is a correctness tool)"


def _cpu_only(device, dtype):
    from kernels.lif import fused_cpu

    if device != "cpu":
        return "the native cpu backend runs on CPU tensors only"
    return None if fused_cpu.available() else "the native cpu kernel is not built (pip install -e .)"


def _fused(backend: str, compact: bool):
    return lambda x, p: lif_scan(x, vth=p.vth, decay=p.decay, surrogate=p.surrogate, alpha=p.alpha, reset=p.reset,
                                 detach_reset=p.detach_reset, backend=backend, compact_state=compact)


@functools.lru_cache(maxsize=None)
def _compiled_naive(p: LIFParams):
    return torch.compile(functools.partial(lif_scan_naive, p=p), dynamic=False)


def _spikingjelly_missing(device, dtype):
    if importlib.util.find_spec("spikingjelly") is None:
        return "spikingjelly is not installed (pip install --no-deps spikingjelly==2.0.0 loguru)"
    return None


def _spikingjelly(x: torch.Tensor, p: LIFParams):
    from spikingjelly.activation_based import functional, surrogate

    if p.surrogate != "tanh":
        raise ValueError("the SpikingJelly provider is configured for the tanh (ESG) surrogate only")
    spikes, _, v_seq = functional.lif_multi_step(
        x, torch.zeros_like(x[0], dtype=torch.float32), 1.0 / (1.0 - p.decay), False, p.vth,
        0.0 if p.reset == "hard" else None,
        surrogate.Sigmoid(alpha=2.0 * p.alpha), p.detach_reset, True)
    return spikes, v_seq.float().mean()  # v0 in fp32: the membrane state is kept in fp32, as ours


PROVIDERS = {
    "naive": Provider("naive", _fused("naive", False), _always),
    "torch": Provider("torch", _fused("torch", False), _always),
    "torch+compact": Provider("torch+compact", _fused("torch", True), _always, COMPACT_STATE_BYTES, exact=False),
    "cpu": Provider("cpu", _fused("cpu", False), _cpu_only),
    "cpu+compact": Provider("cpu+compact", _fused("cpu", True), _cpu_only, COMPACT_STATE_BYTES, exact=False),
    "triton": Provider("triton", _fused("triton", False), _cuda_only),
    "triton+compact": Provider("triton+compact", _fused("triton", True), _cuda_only, COMPACT_STATE_BYTES, exact=False),
    "compile": Provider("compile", lambda x, p: _compiled_naive(p)(x), _always, exact=False),
    "spikingjelly": Provider("spikingjelly", _spikingjelly, _spikingjelly_missing, exact=False, pre_reset_mean=False),
}
# torch.compile specializes on shapes (dynamic=False) and falls back to eager after its recompile
# limit: across the groups' many shapes its rows would time the eager loop. It is timed in its own
# group (bench/test_compile_provider.py) on one or two shapes, with its compilations counted.
SHAPE_SWEEP_PROVIDERS = tuple(name for name in PROVIDERS if name != "compile")


def run_step(provider: Provider, x: torch.Tensor, p: LIFParams, grad_spikes: torch.Tensor, grad_mean: torch.Tensor):
    """Forward and backward of the IM job; returns (spikes, mean, dx)."""
    x = x.detach().requires_grad_()
    spikes, mean = provider.run(x, p)
    torch.autograd.backward([spikes, mean], [grad_spikes, grad_mean])
    return spikes.detach(), mean.detach(), x.grad


def check_against_naive(provider: Provider, x: torch.Tensor, p: LIFParams, grad_spikes: torch.Tensor) -> None:
    """Raise AssertionError if the provider's spikes, mean or gradient disagree with `naive` on x.

    The gradient is compared on the spike path alone (the means differ for SpikingJelly). Exact
    providers: spikes bit for bit, dx within 1e-5 relative L2 (fp32; a half ulp per element in
    half dtypes). Others (compact state, torch.compile's reordered arithmetic, SpikingJelly):
    at most 1e-4 of the spikes may flip at threshold ties, dx within 5e-2 relative L2.
    """
    zero = torch.zeros((), device=x.device)
    s, m, dx = run_step(provider, x, p, grad_spikes, zero)
    rs, rm, rdx = run_step(PROVIDERS["naive"], x, p, grad_spikes, zero)
    flipped = (s != rs).float().mean().item()
    dx_err = ((dx.double() - rdx.double()).norm() / rdx.double().norm().clamp_min(1e-30)).item()
    half = x.dtype in (torch.float16, torch.bfloat16)
    dx_tol = (5e-3 if half else 1e-5) if provider.exact else 5e-2
    if (provider.exact and flipped > 0) or flipped > 1e-4:
        raise AssertionError(f"{provider.name}: {flipped:.2e} of the spikes differ from naive")
    if dx_err > dx_tol:
        raise AssertionError(f"{provider.name}: dx relative L2 error {dx_err:.2e} > {dx_tol:.0e}")
    if provider.pre_reset_mean:
        torch.testing.assert_close(m.float(), rm.float(), rtol=1e-4, atol=1e-6)
