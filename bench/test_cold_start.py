"""Group 3: cold start of the LIF providers. Each is run in a fresh Python process: the time to
import torch and `kernels`, the first forward+backward (T=4, N=2^16, fp32: loading a native
library, JIT compilation), the first call on a new shape (T=4, N=3000: a recompile for
shape-specialized code) and a warm call on that shape. The benchmark's own time is the whole
subprocess; the phases are in extra_info (seconds).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from .lif_providers import PROVIDERS
from .record import record

ROOT = Path(__file__).resolve().parents[1]
PROVIDER_NAMES = ("cpu", "torch", "compile", "triton")

SCRIPT = textwrap.dedent("""
    import json, sys, time
    start = time.perf_counter()
    import torch
    from bench.kernel_timing import sync
    from bench.lif_providers import PROVIDERS
    from kernels.lif.params import LIFParams
    imported = time.perf_counter()
    provider, device = PROVIDERS[sys.argv[1]], sys.argv[2]

    def call(N):
        x = torch.randn(4, N, device=device).requires_grad_()
        sync(device)
        t = time.perf_counter()
        spikes, mean = provider.run(x, LIFParams())
        (spikes.sum() + mean).backward()
        sync(device)
        return time.perf_counter() - t

    first = call(1 << 16)
    new_shape = call(3000)
    print(json.dumps({"import_s": imported - start, "first_call_s": first, "new_shape_s": new_shape,
                      "warm_s": call(3000)}))
""")


@pytest.mark.parametrize("provider_name", PROVIDER_NAMES)
def test_cold_start(benchmark, provider_name, device, device_name):
    reason = PROVIDERS[provider_name].unavailable(device, torch.float32)
    if benchmark.disabled and provider_name != "cpu":
        reason = "cold starts are measured with --benchmark-only; with timing disabled the body runs once, on 'cpu'"
    if reason:
        pytest.skip(reason)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    phases = {}

    def run():
        out = subprocess.run([sys.executable, "-c", SCRIPT, provider_name, device], cwd=ROOT, env=env,
                             capture_output=True, text=True, check=True)
        phases.update(json.loads(out.stdout.strip().splitlines()[-1]))

    benchmark.pedantic(run, rounds=1, iterations=1)
    record(benchmark, kernel="cold_start", provider=provider_name, mode="fwdbwd", T=4, N=1 << 16,
           dtype=torch.float32, shape="first-T4-N65536-then-N3000", device=device_name, **phases)
