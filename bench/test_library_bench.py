"""Group 6: Open Neuromorphic's "SNN library benchmarks" reproduced, ours beside the other libraries.

The published benchmark: one Linear(n, n) and one LIF layer on input [T = 500, B = 16, n], n in
{512, 4096, 16384}, forward and backward (of output.sum(), as published) timed separately. Each
case is timed twice: `published` (Linear + LIF, as published) and `lif` (the LIF layer alone, on
the Linear's output precomputed). Every library runs the one dynamics of bench/library_peers.py,
and its spikes and gradient are compared with ours on the case's input before it is timed: the
differences are recorded in each result (spike_mismatch, first_mismatch_step, dx_rel_err) and
fail the test only beyond 1% of the spikes (a wrong configuration, not a rounding tie). The bytes
autograd keeps for the LIF layer's backward are recorded as saved_bytes_lif (distinct storages, any device).

Sizes and rounds: CUDA and --bench-full run n in {512, 4096, 16384} at 1 and 2 CPU threads with up
to 5 rounds; CPU runs n = 512 with up to 7 rounds (medians steadier on a loaded machine); rounds
are cut to fit ROUND_CAP_S per test (at least one).
With --benchmark-disable or --bench-tiny each body runs once on a tiny case (1 thread).
"""

from __future__ import annotations

import os
import time

import pytest
import torch

from kernels.profiling import saved_tensor_bytes

from .kernel_timing import sync
from .library_peers import DYNAMICS, PEERS, compare
from .record import record
from .shapes import tiny

T, BATCH = 500, 16
ROUND_CAP_S = 6.0  # seconds of timed rounds per test on CPU (the first, untimed run sets the count)
_COMPARED: dict[tuple, dict] = {}  # (peer, case) -> compare() result, once per session


def _small(config) -> bool:
    return tiny() or config.getoption("benchmark_disable")


def pytest_generate_tests(metafunc):
    if "case" not in metafunc.fixturenames:
        return
    config = metafunc.config
    if _small(config):
        cases, threads = [(16, 2, 64)], [1]
    else:
        full = torch.cuda.is_available() or config.getoption("--bench-full")
        # CPU default: n = 512 only (about 2 minutes on 2 cores); n = 4096 takes ~15 minutes more there
        cases = [(T, BATCH, n) for n in ((512, 4096, 16384) if full else (512,))]
        threads = [1, 2]
    metafunc.parametrize("case", cases, ids=[f"T{t}-B{b}-n{n}" for t, b, n in cases])
    metafunc.parametrize("threads", threads, ids=[f"threads{k}" for k in threads])


class _Threads:
    """torch's intra-op thread count set for the test, restored after it."""

    def __init__(self, n):
        self.n, self.before = n, torch.get_num_threads()

    def __enter__(self):
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.before)


def _model(peer, n, scope, device):
    lif = peer.build(n)
    if scope == "lif":
        return lif, None
    linear = torch.nn.Linear(n, n, device=device)
    return (lambda x: lif(linear(x))), linear


@pytest.mark.parametrize("mode", ("fwd", "bwd"))
@pytest.mark.parametrize("scope", ("published", "lif"))
@pytest.mark.parametrize("peer_name", tuple(PEERS))
def test_library_bench(benchmark, request, case, threads, peer_name, scope, mode, device, device_name):
    peer = PEERS[peer_name]
    reason = peer.unavailable(device)
    if reason:
        pytest.skip(reason)
    steps, batch, n = case
    g = torch.Generator(device=device).manual_seed(0)
    inp = torch.randn(steps, batch, n, generator=g, device=device)
    with _Threads(threads):
        if (peer_name, case) not in _COMPARED:  # once per input: the check of the dynamics
            torch.manual_seed(0)
            with torch.no_grad():
                lif_input = torch.nn.Linear(n, n, device=device)(inp)
            _COMPARED[peer_name, case] = {**compare(peer, lif_input),
                                          "saved_bytes_lif": saved_tensor_bytes(
                                              lambda: peer.build(n)(lif_input.detach().requires_grad_()))}
        check = _COMPARED[peer_name, case]
        if check["spike_mismatch"] > 1e-2:
            pytest.fail(f"{peer_name}: {check['spike_mismatch']:.2%} of the spikes differ from ours: "
                        f"not the same dynamics")
        torch.manual_seed(0)
        model, linear = _model(peer, n, scope, device)
        if scope == "lif":
            with torch.no_grad():
                x = torch.nn.Linear(n, n, device=device)(inp)
            x.requires_grad_()
        else:
            x = inp

        def forward():
            out = model(x)
            sync(device)
            return out

        def setup():  # an untimed forward for the backward to run on
            if linear is not None:
                linear.zero_grad(set_to_none=True)
            x.grad = None
            return (forward(),), {}

        def backward(out):
            out.sum().backward()  # the published loss
            sync(device)

        target, setup_fn = (forward, None) if mode == "fwd" else (backward, setup)
        start = time.perf_counter()  # one untimed run: warms up and sizes the rounds
        target(*setup()[0]) if setup_fn else target()
        first = time.perf_counter() - start
        if _small(request.config):
            rounds, warmup = 1, 0
        else:
            max_rounds = 5 if (device == "cuda" or request.config.getoption("--bench-full")) else 7
            rounds, warmup = max(1, min(max_rounds, int(ROUND_CAP_S / max(first, 1e-9)))), 0
        kwargs = {} if setup_fn is None else {"setup": setup_fn}
        benchmark.pedantic(target, rounds=rounds, warmup_rounds=warmup, iterations=1, **kwargs)
    record(benchmark, kernel="library_bench", provider=peer_name, mode=mode, T=steps, N=batch * n, n=n, batch=batch,
           dtype=torch.float32, shape=f"{scope}-T{steps}-B{batch}-n{n}-threads{threads}", scope=scope,
           threads=threads, device=device_name, library_version=peer.version(), dynamics=str(DYNAMICS),
           load_1min=os.getloadavg()[0], **check)  # the machine's load when the timing ended
