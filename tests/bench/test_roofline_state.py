"""The saved state in the roofline's byte count is the state the providers really keep: the bytes
of the tensors the `torch` backend saves for the backward (counted with saved-tensor hooks,
kernels.profiling.saved_tensor_bytes), per element, against each provider's state_bytes, and
the forward's minimal bytes rebuilt from those tensors: x read, spikes written (both in the
input dtype), the saved state written."""

from __future__ import annotations

import pytest
import torch

from bench.lif_providers import PROVIDERS
from bench.roofline import lif_min_bytes
from kernels.lif.params import LIFParams
from kernels.profiling import saved_tensor_bytes

PARAMS = LIFParams(vth=0.5, decay=0.25, surrogate="tanh", alpha=1.0)
T, N = 4, 1024


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("name", "hand"), [("torch", 4.0), ("torch+compact", 2 + 1 / 8)])
def test_state_bytes_are_what_the_provider_saves(name, hand, dtype):
    """exact: one fp32 membrane (4 bytes); compact: a bf16 membrane and one spike bit (2 + 1/8),
    whatever the input dtype."""
    provider = PROVIDERS[name]
    x = torch.randn(T, N, dtype=dtype).requires_grad_()
    saved = saved_tensor_bytes(lambda: provider.run(x, PARAMS))
    assert saved / (T * N) == hand
    assert provider.state_bytes == hand
    spikes, _ = provider.run(x, PARAMS)
    assert lif_min_bytes(T, N, dtype, "fwd", provider.state_bytes) == x.nbytes + spikes.nbytes + saved


def test_compact_providers_share_the_compact_state():
    """Every '+compact' provider (cpu and triton included, not runnable here) keeps the compact
    state; every other provider of ours keeps the fp32 membrane."""
    for name, provider in PROVIDERS.items():
        assert provider.state_bytes == (2 + 1 / 8 if name.endswith("+compact") else 4.0), name
