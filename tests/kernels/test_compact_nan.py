"""The compact saved state keeps every NaN a NaN.

The Triton forward rounds the fp32 membrane to bf16 in integer arithmetic (`_round_to_bf16`). A
NaN's bit pattern must not take part in that rounding: NVIDIA GPUs produce the canonical NaN
0x7FFFFFFF, which the rounding addition would carry into 0x8000 = -0.0, and other patterns would
become +0.0 or infinity. The kernel gives the quiet NaN 0x7FC0 for every NaN (torch's own
conversion gives a quiet NaN too, whose bits vary with the device and code path: 0xFFFF on this
torch's vectorized CPU path) and rounds every other value to nearest even exactly as torch does.
Checked on the conversion alone (each pattern stored as is) and through the forward (NaN input
of a compact-state scan), against the torch backend and, on CPU, the cpu backend.
"""

from __future__ import annotations

import pytest
import torch
import triton
import triton.language as tl

from kernels.lif import fused_triton
from kernels.lif.fused_triton import _round_to_bf16
from kernels.lif.backends import FUSED_BACKENDS, backend_module
from kernels.lif.params import LIFParams

from .lif_check import runnable

# NaN patterns: NVIDIA's canonical NaN and its negative, the x86 default NaN and its negative,
# signalling NaNs with only low or only high mantissa bits, and the largest signalling NaN.
NAN_BITS = [0x7FFFFFFF, 0xFFFFFFFF, 0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FBFFFFF, 0x7F810000,
            0x7FFF8000, 0x7F807FFF]
# Finite values and infinities around the rounding's edges: ties to even in both directions,
# the largest finite fp32 (rounds to inf), just below it, infinities, signed zeros, subnormals.
OTHER_BITS = [0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF, 0x7F7FFFFF, 0x7F7F7FFF, 0x7F800000, 0xFF800000,
              0x00000000, 0x80000000, 0x00008000, 0x00018000, 0x807FFFFF, 0xC2F6E979]
NAN_BF16 = 0x7FC0
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


def _fp32(bits: list[int], device) -> torch.Tensor:
    """fp32 tensor with exactly these bit patterns (no arithmetic touches them)."""
    signed = [b - (1 << 32) if b >= 1 << 31 else b for b in bits]
    return torch.tensor(signed, dtype=torch.int32).view(torch.float32).to(device)


def _bf16_bits(x: torch.Tensor) -> list[int]:
    return [b & 0xFFFF for b in x.cpu().flatten().view(torch.int16).tolist()]


def _quiet_nan(bits: int) -> bool:
    """bf16 bits of a quiet NaN: exponent all ones, top mantissa bit set."""
    return bits & 0x7FC0 == 0x7FC0


def _same_rounding(got: list[int], want: list[int]) -> bool:
    """Equal bits, except that any quiet NaN equals any other."""
    return got == want or (_quiet_nan(got) and _quiet_nan(want))


@triton.jit
def _round_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs, _round_to_bf16(tl.load(x_ptr + offs, mask=mask, other=0.0)), mask=mask)


def _kernel_round(x: torch.Tensor) -> torch.Tensor:
    y = torch.empty(x.shape, dtype=torch.bfloat16, device=x.device)
    _round_kernel[(1,)](x, y, x.numel(), BLOCK=triton.next_power_of_2(x.numel()))
    return y


def test_every_nan_pattern_rounds_to_the_quiet_nan(device):
    got = _bf16_bits(_kernel_round(_fp32(NAN_BITS, device)))
    assert got == [NAN_BF16] * len(NAN_BITS), {hex(b): hex(g) for b, g in zip(NAN_BITS, got) if g != NAN_BF16}


def test_nan_patterns_round_as_torch_does(device):
    x = _fp32(NAN_BITS + OTHER_BITS, device)
    got, want = _bf16_bits(_kernel_round(x)), _bf16_bits(x.cpu().to(torch.bfloat16))
    bad = {hex(b): (hex(g), hex(w)) for b, g, w in zip(NAN_BITS + OTHER_BITS, got, want) if not _same_rounding(g, w)}
    assert not bad, f"input bits -> (kernel, torch): {bad}"


def _compact_fwd(module, x):
    (u_half, _bits), _ = module.fwd(x, torch.empty_like(x), LIFParams(), "compact")
    return u_half


@pytest.mark.parametrize("reference", [name for name in FUSED_BACKENDS if backend_module(name) is not fused_triton])
def test_compact_forward_saves_nan_membranes_as_the_other_backends(reference, device):
    """NaN patterns as input at t = 0 (u(0) = 0 + x(0): a NaN whatever the hardware does with its
    payload) and finite input elsewhere; the saved bf16 membrane equals the reference's bit for bit."""
    if reference not in runnable(device):
        pytest.skip(f"backend {reference!r} does not run on {device} here")
    T, width = 3, 16
    x = torch.linspace(-1.0, 1.5, T * len(NAN_BITS) * width, dtype=torch.float32).view(T, -1).to(device)
    x[0, ::width] = _fp32(NAN_BITS, device)  # one NaN pattern every `width` neurons
    x[1, 1::width] = _fp32(NAN_BITS, device)
    ref_module = backend_module(reference)
    got, want = _compact_fwd(fused_triton, x), _compact_fwd(ref_module, x)
    assert torch.isnan(got[0, ::width]).all() and torch.isnan(got[1, 1::width]).all()
    bad = [i for i, (g, w) in enumerate(zip(_bf16_bits(got), _bf16_bits(want))) if not _same_rounding(g, w)]
    assert not bad, f"saved bf16 membrane differs from {reference}'s at flat indices {bad[:8]}"
