"""Group 1: the LIF scan, forward / backward / forward+backward, every provider doing the IM job.

Each benchmark first checks the provider against `naive` on its own input (a mismatch fails the
benchmark instead of timing it), then times it with compile/autotune in the warm-up rounds.
CPU runs a reduced set (T=4, N in {2^16, 2^20}); CUDA runs the LIF layer shapes of CIFARNet
and ResNet-19 at batch 128 for T in {2, 4, 6, 10} and a sweep of neuron counts (`--bench-full`
runs that set on CPU as well; `--bench-tiny` two tiny cases). torch.compile has its own group
(test_compile_provider.py).
"""

from __future__ import annotations

import pytest
import torch

from kernels.lif.params import LIFParams

from .kernel_timing import sync
from .lif_providers import PROVIDERS, SHAPE_SWEEP_PROVIDERS, check_against_naive, run_step
from .record import record
from .roofline import lif_min_bytes
from .shapes import lif_cases

PARAMS = LIFParams(vth=0.5, decay=0.25, surrogate="tanh", alpha=1.0)
MODES = ("fwd", "bwd", "fwdbwd")
_CHECKED: set[tuple[str, str]] = set()  # (provider, case id) pairs that matched naive in this session
_NAIVE_MEDIAN: dict[tuple[str, str], float] = {}  # (case id, mode) -> naive's median in this session (s)


def _inputs(T, N, dtype, device, seed=0):
    g = torch.Generator(device=device).manual_seed(seed)
    x = (0.6 * torch.randn(T, N, generator=g, device=device) + 0.3).to(dtype)
    grad_spikes = (1e-3 * torch.randn(T, N, generator=g, device=device)).to(dtype)
    return x, grad_spikes, torch.tensor(2.0, device=device)


def _time_mode(benchmark, provider, mode, x, gs, gm) -> None:
    """Time one mode with benchmark.pedantic (20 rounds on CUDA, 3 elsewhere, 2 warm-up)."""
    target, setup = _timed(provider, mode, x, gs, gm)
    rounds = 20 if x.is_cuda else 3
    kwargs = {} if setup is None else {"setup": setup}
    benchmark.pedantic(target, rounds=rounds, warmup_rounds=2, iterations=1, **kwargs)


def _timed(provider, mode, x, gs, gm):
    """(target, setup) for benchmark.pedantic; setup (untimed) builds what the target needs."""
    if mode == "fwd":
        def target():
            out = provider.run(x.detach().requires_grad_(), PARAMS)  # a training forward: state saved
            sync(x.device)
            return out
        return target, None
    if mode == "fwdbwd":
        def target():
            out = run_step(provider, x, PARAMS, gs, gm)
            sync(x.device)
            return out
        return target, None

    def setup():
        xr = x.detach().requires_grad_()
        spikes, mean = provider.run(xr, PARAMS)
        sync(x.device)
        return (spikes, mean), {}

    def target(spikes, mean):
        torch.autograd.backward([spikes, mean], [gs, gm])
        sync(x.device)
    return target, setup


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        full = torch.cuda.is_available() or metafunc.config.getoption("--bench-full")
        cases = lif_cases(full)
        metafunc.parametrize("case", cases, ids=[c.id for c in cases])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("provider_name", SHAPE_SWEEP_PROVIDERS)
def test_lif_scan(benchmark, case, provider_name, mode, device, device_name, copy_bandwidth):
    provider = PROVIDERS[provider_name]
    if mode not in case.modes:
        pytest.skip(f"model-layer shapes are timed forward+backward only (mode {mode} is swept on the N sweep)")
    reason = provider.unavailable(device, case.dtype)
    if reason:
        pytest.skip(reason)
    x, gs, gm = _inputs(case.T, case.N, case.dtype, device)
    if (provider_name, case.id) not in _CHECKED:  # once per input, not once per mode
        check_against_naive(provider, x, PARAMS, gs)
        _CHECKED.add((provider_name, case.id))
    _time_mode(benchmark, provider, mode, x, gs, gm)
    record(benchmark, kernel="lif_scan", provider=provider_name, mode=mode, T=case.T, N=case.N, dtype=case.dtype,
           shape=case.id, device=device_name, copy_bandwidth=copy_bandwidth,
           min_bytes=lif_min_bytes(case.T, case.N, case.dtype, mode, provider.state_bytes))
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # speed-up over naive timed in this run (naive is the first provider)
        if provider_name == "naive":
            _NAIVE_MEDIAN[case.id, mode] = stats.stats.median
        elif (case.id, mode) in _NAIVE_MEDIAN:
            benchmark.extra_info["vs_naive"] = _NAIVE_MEDIAN[case.id, mode] / stats.stats.median
