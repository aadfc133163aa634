"""Hypothesis property tests: the fused backends equal the `naive` reference.

Spike rule: on one device every backend performs the same fp32 operations in the same order
(the Triton kernels and the cpu backend's C++ are compiled without FMA contraction), so spikes
must agree bit for bit, threshold ties included; no input is filtered. u_mean agrees to fp32
summation error and dx to a relative 1e-5 in fp32 (one storage ulp in fp16/bf16).
"""

from __future__ import annotations

from unittest import mock

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kernels.lif import fused_cpu, fused_torch
from kernels.lif.fused_triton import BLOCK

from ..hypothesis_profiles import max_examples
from .lif_check import assert_matches_naive

NOT_BUILT = pytest.mark.skipif(not fused_cpu.available(),
                               reason="the native cpu kernel is not built (pip install -e .)")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

neurons = st.one_of(st.sampled_from([1, 7, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 3]), st.integers(1, 2 * BLOCK))


@st.composite
def cases(draw):
    n = draw(neurons)
    # Split n into a trailing shape of rank 1-3 when it factors, so shapes such as [T, B, C] occur.
    lead = draw(st.sampled_from([d for d in (1, 2, 3, 4) if n % d == 0]))
    return {
        "T": draw(st.integers(1, 12)),
        "shape": (lead, n // lead) if lead > 1 else (n,),
        "dtype": draw(st.sampled_from(sorted(DTYPES))),
        "vth": draw(st.sampled_from([0.5, 1.0, 0.3, 0.75])),
        "decay": draw(st.sampled_from([0.25, 0.5, 0.0, 1.0, 0.9])),
        "alpha": draw(st.sampled_from([1.0, 0.5, 2.0, 3.0, 10.0])),
        "surrogate": draw(st.sampled_from(["tanh", "rect", "dspike"])),
        "reset": draw(st.sampled_from(["hard", "soft"])),
        "detach_reset": draw(st.booleans()),
        "grads": draw(st.sampled_from(["both", "spikes", "mean"])),
        "dyadic": draw(st.booleans()),
        "seed": draw(st.integers(0, 2 ** 16)),
    }


def _inputs(case, device):
    g = torch.Generator().manual_seed(case["seed"])
    shape = (case["T"], *case["shape"])
    if case["dyadic"]:  # multiples of 1/16: exact arithmetic, many membranes exactly at vth
        x = torch.randint(-16, 24, shape, generator=g) / 16
    else:
        x = 0.6 * torch.randn(shape, generator=g) + 0.3
    x = x.to(DTYPES[case["dtype"]])
    gs = torch.randn(shape, generator=g).to(x.dtype) if case["grads"] != "mean" else None
    gm = 3.0 if case["grads"] != "spikes" else None
    return x.to(device), None if gs is None else gs.to(device), gm


def _params(case):
    return {k: case[k] for k in ("vth", "decay", "alpha", "surrogate", "reset", "detach_reset")}


EDGE = dict(dtype="fp32", vth=0.5, decay=0.25, alpha=1.0, surrogate="tanh", reset="hard",
            detach_reset=False, grads="both", seed=0)
KERNEL_SETTINGS = settings(deadline=None, max_examples=max_examples(150), suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("backend", ["triton", "torch", pytest.param("cpu", marks=NOT_BUILT)])
@KERNEL_SETTINGS
@given(case=cases())
@example(case={**EDGE, "T": 1, "shape": (1,), "dyadic": True})
@example(case={**EDGE, "T": 3, "shape": (BLOCK,), "dyadic": False})
@example(case={**EDGE, "T": 4, "shape": (BLOCK + 1,), "dyadic": True, "surrogate": "rect", "reset": "soft"})
@example(case={**EDGE, "T": 5, "shape": (2, 3), "dyadic": True, "dtype": "bf16", "surrogate": "dspike"})
def test_backend_matches_naive(backend, case, device):
    x, gs, gm = _inputs(case, device)
    assert_matches_naive(x, backend, gs, gm, **_params(case))


def test_input_exactly_at_threshold_fires(device):
    """u == vth fires (o = 1[u >= vth]) in every backend; the surrogate peaks there."""
    x = torch.full((2, 5), 0.5, device=device)
    for backend in ("naive", "torch", "triton", *(["cpu"] if fused_cpu.available() else [])):
        from kernels import lif_scan

        spikes, _ = lif_scan(x, vth=0.5, backend=backend)
        assert spikes[0].eq(1).all(), backend


@pytest.mark.parametrize(("backend", "module"),
                         [("torch", fused_torch), pytest.param("cpu", fused_cpu, marks=NOT_BUILT)])
@settings(deadline=None, max_examples=max_examples(40))
@given(case=cases(), chunk=st.sampled_from([8, 64, 136]), threads=st.sampled_from([1, 2, 3]))
@example(case={**EDGE, "T": 3, "shape": (2 * 64 + 1,), "dyadic": False}, chunk=64, threads=3)
@example(case={**EDGE, "T": 2, "shape": (3, 8 * 17), "dyadic": True, "dtype": "bf16"}, chunk=8, threads=2)
def test_cpu_paths_across_chunks_and_threads(backend, module, case, chunk, threads):
    """The CPU paths process neurons in chunks (the cpu backend splits chunks between threads);
    a chunk edge, a partial last chunk or a thread boundary must not change anything."""
    x, gs, gm = _inputs(case, "cpu")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with mock.patch.object(module, "CHUNK", chunk):
            assert_matches_naive(x, backend, gs, gm, **_params(case))
    finally:
        torch.set_num_threads(previous)
