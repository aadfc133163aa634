"""bench/roofline.py's minimal-bytes model, counted by hand from what each kernel reads and writes
per element: forward reads x, writes the spikes and the saved state; backward reads the spike
gradient and the saved state and writes the input gradient."""

import pytest
import torch

from bench.roofline import COMPACT_STATE_BYTES, EXACT_STATE_BYTES, lif_min_bytes

T, N = 4, 1000


def test_state_sizes():
    assert EXACT_STATE_BYTES == 4  # one fp32 membrane
    assert COMPACT_STATE_BYTES == 2 + 1 / 8  # one bf16 membrane and one spike bit


@pytest.mark.parametrize("dtype, s", [(torch.float32, 4), (torch.bfloat16, 2), (torch.float16, 2)])
@pytest.mark.parametrize("state", [4.0, 2.125])
def test_bytes_by_hand(dtype, s, state):
    forward = s + s + state  # read x, write spikes, write state
    backward = s + state + s  # read grad spikes, read state, write grad x
    assert lif_min_bytes(T, N, dtype, "fwd", state) == forward * T * N
    assert lif_min_bytes(T, N, dtype, "bwd", state) == backward * T * N
    assert lif_min_bytes(T, N, dtype, "fwdbwd", state) == (forward + backward) * T * N


def test_fp32_numbers():
    assert lif_min_bytes(T, N, torch.float32, "fwd") == 48_000
    assert lif_min_bytes(T, N, torch.float32, "bwd") == 48_000
    assert lif_min_bytes(T, N, torch.bfloat16, "fwdbwd", COMPACT_STATE_BYTES) == 49_000


def test_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        lif_min_bytes(T, N, torch.float32, "both")
