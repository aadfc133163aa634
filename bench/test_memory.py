"""Group 4 (LIF part): bytes each provider keeps for the backward of one LIF layer.

Saved bytes are counted with saved-tensor hooks (distinct storages) on every device; on CUDA the
growth of allocated memory across the forward, minus the outputs, is recorded beside them. The
forward is what the benchmark times (one round: the numbers of interest are the bytes).
"""

from __future__ import annotations

import pytest
import torch

from kernels.profiling import saved_tensor_bytes

from .kernel_timing import sync
from .lif_providers import PROVIDERS, SHAPE_SWEEP_PROVIDERS
from .record import record
from .shapes import BATCH, model_lif_sizes, tiny
from .test_lif_scan import PARAMS


def pytest_generate_tests(metafunc):
    if "layer" in metafunc.fixturenames:
        full = torch.cuda.is_available() or metafunc.config.getoption("--bench-full")
        layers = [("tiny", 2, 256)] if tiny() else [("sweep", 4, 1 << 20)]
        if full and not tiny():
            layers += [(f"{m}:{name}", 4, BATCH * n) for m in ("cifarnet", "resnet19")
                       for name, n in model_lif_sizes(m)]
        metafunc.parametrize("layer", layers, ids=[f"{name}-T{T}-N{N}" for name, T, N in layers])


@pytest.mark.parametrize("provider_name", SHAPE_SWEEP_PROVIDERS)
def test_lif_saved_bytes(benchmark, layer, provider_name, device, device_name):
    provider = PROVIDERS[provider_name]
    reason = provider.unavailable(device, torch.float32)
    if reason:
        pytest.skip(reason)
    name, T, N = layer
    x = (0.6 * torch.randn(T, N, device=device) + 0.3).requires_grad_()
    provider.run(x, PARAMS)  # compile / autotune outside the measurement
    saved = saved_tensor_bytes(lambda: provider.run(x, PARAMS))
    held = None
    if device == "cuda":
        sync(device)
        before = torch.cuda.memory_allocated()
        spikes, mean = provider.run(x, PARAMS)
        sync(device)
        held = torch.cuda.memory_allocated() - before - spikes.nbytes - mean.nbytes
        del spikes, mean
    benchmark.pedantic(lambda: provider.run(x, PARAMS), rounds=1, iterations=1)
    record(benchmark, kernel="lif_saved_bytes", provider=provider_name, mode="fwd", T=T, N=N, dtype=torch.float32,
           shape=name, device=device_name, saved_bytes=saved, saved_bytes_per_elem=saved / (T * N),
           cuda_held_bytes=held)
