"""Group: `torch.compile` of the naive loop (provider 'compile'), on the shapes where it is what
its name says.

torch.compile with dynamic=False specializes on every shape and, past torch._dynamo's recompile
limit (8), silently runs the function eagerly: over the ~40 shapes of the other groups most
'compile' rows would have timed the plain autograd loop. Here it is timed on one or two shapes,
each compiled once: every test counts the compilations of its shape (CompileCounterWithBackend
around Inductor) and fails unless there was exactly one; `fail_on_recompile_limit_hit` turns a
fallback to eager into an error; fullgraph=True makes a graph break one. The rows carry the shape
ids of test_lif_scan.py, so the report puts them beside the other providers.

CUDA: T=4, N=2^20 and 2^22, fp32. CPU: T=4, N=2^20 fp32 (one shape: Inductor builds C++ per
shape, about 25 s cold on 2 cores). --bench-tiny: T=2, N=256 fp32.
"""

from __future__ import annotations

import functools

import pytest
import torch

from kernels.lif.naive import lif_scan_naive

from .lif_providers import Provider, check_against_naive
from .record import record
from .roofline import lif_min_bytes
from .shapes import LifCase, tiny
from .test_lif_scan import MODES, PARAMS, _inputs, _time_mode

CUDA_CASES = [LifCase(4, 1 << 20, torch.float32, "sweep-T4-N1048576-fp32"),
              LifCase(4, 1 << 22, torch.float32, "sweep-T4-N4194304-fp32")]
CPU_CASES = [LifCase(4, 1 << 20, torch.float32, "sweep-T4-N1048576-fp32")]
TINY_CASES = [LifCase(2, 256, torch.float32, "tiny-T2-N256-fp32")]
_COMPILED: dict[str, tuple] = {}  # case id -> (compiled function, its compile counter)


def pytest_generate_tests(metafunc):
    if "ccase" in metafunc.fixturenames:
        cases = TINY_CASES if tiny() else CUDA_CASES if torch.cuda.is_available() else CPU_CASES
        metafunc.parametrize("ccase", cases, ids=[c.id for c in cases], scope="module")


@pytest.fixture(scope="module", autouse=True)
def _dynamo_fresh():
    """No cache entries left from other code in this process; a recompile-limit hit raises."""
    torch._dynamo.reset()
    known = hasattr(torch._dynamo.config, "fail_on_recompile_limit_hit")  # older torch: the count alone
    with torch._dynamo.config.patch(**({"fail_on_recompile_limit_hit": True} if known else {})):
        yield
    _COMPILED.clear()
    torch._dynamo.reset()


def _compiled(case: LifCase):
    from torch._dynamo.testing import CompileCounterWithBackend

    if case.id not in _COMPILED:
        counter = CompileCounterWithBackend("inductor")
        fn = torch.compile(functools.partial(lif_scan_naive, p=PARAMS), backend=counter, dynamic=False, fullgraph=True)
        _COMPILED[case.id] = fn, counter
    return _COMPILED[case.id]


@pytest.mark.parametrize("mode", MODES)
def test_compile_provider(benchmark, ccase, mode, device, device_name, copy_bandwidth):
    fn, counter = _compiled(ccase)
    provider = Provider("compile", lambda x, p: fn(x), lambda device, dtype: None, exact=False)
    x, gs, gm = _inputs(ccase.T, ccase.N, ccase.dtype, device)
    if mode == MODES[0]:
        check_against_naive(provider, x, PARAMS, gs)
    _time_mode(benchmark, provider, mode, x, gs, gm)
    assert counter.frame_count == 1, (f"{ccase.id}: {counter.frame_count} compilations (1 expected; 0 means dynamo "
                                      f"ran the function eagerly)")
    record(benchmark, kernel="lif_scan", provider="compile", mode=mode, T=ccase.T, N=ccase.N, dtype=ccase.dtype,
           shape=ccase.id, device=device_name, copy_bandwidth=copy_bandwidth, compilations=counter.frame_count,
           min_bytes=lif_min_bytes(ccase.T, ccase.N, ccase.dtype, mode, provider.state_bytes))
