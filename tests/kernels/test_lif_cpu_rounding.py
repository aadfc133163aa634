"""The `cpu` backend's fp16 / bf16 storage rounds exactly like torch: its input gradient in
fp16 / bf16 is torch's rounding (round to nearest, ties to even) of the same computation done in
fp32, bit for bit, and its compact saved membrane is torch's bf16 rounding of the fp32 membrane.
Over 2^20 elements about 128 (fp16) and 16 (bf16) values fall exactly halfway between two
representable numbers, so a rounding that breaks ties another way fails here, while the
tolerance-based tests pass it."""

from __future__ import annotations

import os

import pytest
import torch

from kernels.lif import fused_cpu
from kernels.lif.params import LIFParams

pytestmark = pytest.mark.skipif(not fused_cpu.available() and not os.environ.get("CI"),
                                reason="the native cpu kernel is not built")

T, N = 4, 2**18


def inputs(dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = (0.6 * torch.randn(T, N, generator=g) + 0.3).to(dtype)
    gs = torch.randn(T, N, generator=g).to(dtype)
    return x, gs


def scan(x, gs, p, save):
    spikes, dx = torch.empty_like(x), torch.empty_like(x)
    saved, u_mean = fused_cpu.fwd(x, spikes, p, save)
    fused_cpu.bwd(gs, torch.tensor(0.5), saved, p, dx)
    return spikes, saved, dx


def ties(v32: torch.Tensor, dtype) -> int:
    """How many fp32 values lie exactly halfway between two neighbours of dtype (normal range): the
    dropped low mantissa bits are 1 followed by zeros (13 bits for fp16, 16 for bf16)."""
    b = v32.reshape(-1).view(torch.int32)
    if dtype == torch.bfloat16:
        return int(((b & 0xFFFF) == 0x8000).sum())
    exponent = (b >> 23) & 0xFF
    normal = (exponent >= 127 - 14) & (exponent <= 127 + 15)
    return int((((b & 0x1FFF) == 0x1000) & normal).sum())


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1).view(torch.int16)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("surrogate", ["tanh", "dspike"])
def test_low_precision_gradient_is_torchs_rounding_of_the_fp32_one(dtype, surrogate):
    p = LIFParams(surrogate=surrogate, alpha=2.0)
    x, gs = inputs(dtype, seed=1)
    spikes, _, dx = scan(x, gs, p, "exact")
    spikes32, _, dx32 = scan(x.float(), gs.float(), p, "exact")  # the same numbers, stored in fp32
    assert torch.equal(spikes.float(), spikes32)
    rounded = dx32.to(dtype)
    assert ties(dx32, dtype) > 0  # the test can tell ties-to-even from other tie rules
    mismatch = (bits(dx) != bits(rounded)).nonzero()
    assert mismatch.numel() == 0, (f"{mismatch.numel()} of {dx.numel()} differ, e.g. fp32 "
                                   f"{dx32.reshape(-1)[mismatch[0]].item()!r}: {dx.reshape(-1)[mismatch[0]].item()!r} "
                                   f"vs torch {rounded.reshape(-1)[mismatch[0]].item()!r}")


def test_compact_saved_membrane_is_torchs_bf16_rounding():
    p = LIFParams(surrogate="tanh", alpha=2.0)
    x, _ = inputs(torch.float32, seed=2)
    exact = scan(x, x, p, "exact")[1]
    compact = scan(x, x, p, "compact")[1]
    membrane = next(t for t in exact if t.dtype == torch.float32 and t.shape == x.shape)
    stored = next(t for t in compact
                  if t.dtype in (torch.bfloat16, torch.int16, torch.uint16) and t.numel() == x.numel())
    assert torch.equal(stored.reshape(-1).view(torch.int16), membrane.to(torch.bfloat16).reshape(-1).view(torch.int16))
