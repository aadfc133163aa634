"""Fused Triton kernels: the LIF scan with the in-kernel membrane sum, and its reverse-time backward.

Grid: one program per BLOCK neurons; the time loop runs inside the kernel with the membrane in
fp32 registers whatever the storage dtype. Offsets are int64. A program holds its neurons as a
[BLOCK / VEC, VEC] tile, VEC = 4 when the kernel touches an fp32 row and 8 otherwise, so that
every row shares one register layout (see _tile_offsets).

Compiled variants (which ones, and what recompiles: docs/kernel.md). T, NB (the bit-row length),
vth, decay, alpha are runtime values (`do_not_specialize`, or floats, which Triton does not
specialize). N is specialized by Triton's integer rule on purpose: with N % 16 == 0 it knows
every [T, N] row starts 16-byte aligned and the time loop loads and stores vectors of 64 or 128
bits per thread (`ld.global.v2/v4`); without it every access is scalar.
`python tools/compile_check.py` compiles every variant for sm_90 without a GPU.

Floating-point contraction is off in the forward, so that `decay * u + x` rounds exactly like
the PyTorch reference (a contracted FMA can flip a spike at a threshold tie), and on in the
backward, whose spikes come from the saved state (u >= vth on the stored u, or the stored bits)
with no arithmetic before the comparison.

Bytes per element (E = T * N), fp32 storage, exact state:
  forward  reads x (4), writes spikes (4) and the saved pre-reset membrane u in fp32 (4);
  backward reads grad-spikes (4) and u (4), writes grad-x (4); spikes are recomputed as u >= vth.
  With half-precision storage x, spikes, grad-spikes and grad-x are 2 bytes each; u stays fp32,
  since rounding it would change the recomputed spikes. Inference writes no u.
Compact state saves u rounded to bf16 (2) plus the emitted spikes as packed bits (1/8): the
spikes in the backward stay exact, the surrogate and reset-path gradients see a bf16 membrane.
The membrane mean: each program writes one fp32 partial sum, summed by torch in a fixed order
(deterministic); its gradient enters the backward as a scalar read from device memory.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from .backends import SAVE_CODES
from .layout import cdiv
from .params import SURROGATE_CODES, LIFParams

BLOCK = 1024  # neurons per program

# The codes of params.SURROGATE_CODES and backends.SAVE_CODES as the kernels' compile-time constants.
TANH = tl.constexpr(SURROGATE_CODES["tanh"])
RECT = tl.constexpr(SURROGATE_CODES["rect"])
DSPIKE = tl.constexpr(SURROGATE_CODES["dspike"])
ATAN = tl.constexpr(SURROGATE_CODES["atan"])
SAVE_EXACT = tl.constexpr(SAVE_CODES["exact"])
SAVE_COMPACT = tl.constexpr(SAVE_CODES["compact"])


_INTERPRETING = os.environ.get("TRITON_INTERPRET", "0") == "1"  # read by triton when it is imported, as here


def interpreting() -> bool:
    """True when triton runs kernels in its interpreter (TRITON_INTERPRET=1 before its import)."""
    return _INTERPRETING


@triton.jit
def _block_offsets(pid, BLOCK: tl.constexpr):
    """int64 offsets of program pid's neurons in row 0."""
    return pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)


@triton.jit
def _tile_offsets(pid, BLOCK: tl.constexpr, VEC: tl.constexpr):
    """The same offsets as a [BLOCK // VEC, VEC] tile: VEC consecutive neurons per row. The row
    length is what the compiler sees as contiguous, so it gives each thread VEC neurons of every
    row (x, spikes, u, gradients) whatever their dtype: one register layout for all of them,
    instead of 8 per thread for 16-bit rows and 4 for fp32 rows and a change of layout through
    shared memory at every timestep."""
    tile = tl.arange(0, BLOCK // VEC)[:, None] * VEC + tl.arange(0, VEC)[None, :]
    return pid.to(tl.int64) * BLOCK + tile


@triton.jit
def _row_start(t, N):
    """int64 offset of time row t in a [T, N] matrix."""
    return t.to(tl.int64) * N


@triton.jit
def _round_to_bf16(u):
    """fp32 -> bf16 with round-to-nearest-even done in integers, identical on GPU and in the
    interpreter (whose own fp32 -> bf16 store truncates). Every NaN becomes the quiet NaN 0x7FC0
    (torch's conversions give a quiet NaN too): the rounding addition would carry a NaN's mantissa into its
    exponent (NVIDIA's canonical NaN 0x7FFFFFFF would become 0x8000 = -0.0, a negative NaN +0.0)
    or truncate it to infinity (a signalling NaN with only low mantissa bits)."""
    bits = u.to(tl.uint32, bitcast=True)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    bits = tl.where(u != u, 0x7FC0, rounded)
    return bits.to(tl.uint16).to(tl.bfloat16, bitcast=True)


@triton.jit
def _pack_bits(o, BLOCK: tl.constexpr):
    """[BLOCK // VEC, VEC] 0/1 fp32 tile -> [BLOCK // 8] uint8, bit j of byte k = neuron 8k + j."""
    o = tl.reshape(o.to(tl.int32), (BLOCK // 8, 8))
    return tl.sum(o << tl.arange(0, 8)[None, :], axis=1).to(tl.uint8)


@triton.jit
def _unpack_bits(packed, BLOCK: tl.constexpr, VEC: tl.constexpr):
    """[BLOCK // 8] uint8 -> [BLOCK // VEC, VEC] 0/1 fp32 tile."""
    o = (packed.to(tl.int32)[:, None] >> tl.arange(0, 8)[None, :]) & 1
    return tl.reshape(o, (BLOCK // VEC, VEC)).to(tl.float32)


@triton.jit
def _sigmoid_slope(z):
    """sigmoid(z) sigmoid(-z) = e / (1 + e)^2 with e = exp(-|z|) in (0, 1]: one exponential, no
    overflow, 0 at z = +-inf."""
    e = tl.exp(-tl.abs(z))
    d = 1.0 + e
    return e / (d * d)


@triton.jit
def _surrogate_grad_times(go, u, vth, alpha, dspike_scale, SURROGATE: tl.constexpr):
    """go * d phi / du (see naive.asymptotic); 1 - tanh(y)^2 = 4 sigmoid(2y) sigmoid(-2y). Outside
    a window: docs/kernel.md, the non-finite rule."""
    if SURROGATE == TANH:
        return go * (2.0 * alpha * _sigmoid_slope(2.0 * alpha * (u - vth)))
    elif SURROGATE == ATAN:
        z = (1.5707963267948966 * alpha) * (u - vth)
        return go * ((0.5 * alpha) / (1.0 + z * z))
    elif SURROGATE == RECT:
        return tl.where(tl.abs(u - vth) < 0.5 * alpha, go * (1.0 / alpha), 0.0)
    else:
        x = u / (2.0 * vth)
        g = 4.0 * dspike_scale * _sigmoid_slope(2.0 * alpha * (x - 0.5))
        return tl.where((x >= 0.0) & (x <= 1.0), go * g, 0.0)


@triton.jit(do_not_specialize=["T", "NB"])
def _lif_fwd_kernel(x_ptr, s_ptr, u_ptr, bits_ptr, partial_ptr, T, N, NB, vth, decay,
                    HARD: tl.constexpr, SAVE: tl.constexpr, BLOCK: tl.constexpr):
    """SAVE: 0 nothing, 1 u in fp32 into u_ptr, 2 u in bf16 into u_ptr plus spike bits into
    bits_ptr ([T, NB] uint8, NB = ceil(N / 8))."""
    # 4 neurons per thread when an fp32 row is involved (128-bit access), else 8
    VEC: tl.constexpr = 4 if (x_ptr.dtype.element_ty.primitive_bitwidth == 32
                              or u_ptr.dtype.element_ty.primitive_bitwidth == 32) else 8
    pid = tl.program_id(0)
    offs = _tile_offsets(pid, BLOCK, VEC)
    mask = offs < N
    p_x = x_ptr + offs
    p_s = s_ptr + offs
    p_u = u_ptr + offs
    offs_b = _block_offsets(pid, BLOCK // 8)
    mask_b = offs_b < NB
    p_bits = bits_ptr + offs_b
    b_u = tl.zeros([BLOCK // VEC, VEC], dtype=tl.float32)
    b_o = tl.zeros([BLOCK // VEC, VEC], dtype=tl.float32)
    b_sum = tl.zeros([BLOCK // VEC, VEC], dtype=tl.float32)
    for _ in range(T):
        b_x = tl.load(p_x, mask=mask, other=0.0).to(tl.float32)
        if HARD:
            b_u = decay * b_u * (1.0 - b_o) + b_x
        else:
            b_u = decay * (b_u - vth * b_o) + b_x
        b_o = (b_u >= vth).to(tl.float32)
        tl.store(p_s, b_o.to(p_s.dtype.element_ty), mask=mask)
        if SAVE == SAVE_EXACT:
            tl.store(p_u, b_u, mask=mask)
        if SAVE == SAVE_COMPACT:
            tl.store(p_u, _round_to_bf16(b_u), mask=mask)
            tl.store(p_bits, _pack_bits(tl.where(mask, b_o, 0.0), BLOCK), mask=mask_b)
            p_bits += NB
        b_sum += tl.where(mask, b_u, 0.0)
        p_x += N
        p_s += N
        p_u += N
    tl.store(partial_ptr + pid, tl.sum(tl.sum(b_sum, axis=1), axis=0))


@triton.jit(do_not_specialize=["T", "NB"])
def _lif_bwd_kernel(gs_ptr, gm_ptr, u_ptr, bits_ptr, dx_ptr, dd_ptr, T, N, NB, vth, decay, alpha, dspike_scale,
                    inv_count, HARD: tl.constexpr, DETACH: tl.constexpr, SURROGATE: tl.constexpr,
                    HAS_GS: tl.constexpr, HAS_GM: tl.constexpr, COMPACT: tl.constexpr, DECAY_GRAD: tl.constexpr,
                    BLOCK: tl.constexpr):
    """Reverse-time pass; see fused_torch.bwd for the recurrence. COMPACT: u is bf16 and the
    spikes come from bits_ptr instead of being recomputed as u >= vth. DECAY_GRAD: writes the
    program's sum of dL/du(t+1) v(t) (v the membrane after reset) to dd_ptr[pid], for dL/d decay."""
    VEC: tl.constexpr = 4 if (gs_ptr.dtype.element_ty.primitive_bitwidth == 32
                              or u_ptr.dtype.element_ty.primitive_bitwidth == 32
                              or dx_ptr.dtype.element_ty.primitive_bitwidth == 32) else 8
    pid = tl.program_id(0)
    offs = _row_start(T - 1, N) + _tile_offsets(pid, BLOCK, VEC)
    mask = _tile_offsets(pid, BLOCK, VEC) < N
    p_gs = gs_ptr + offs
    p_u = u_ptr + offs
    p_dx = dx_ptr + offs
    offs_b = _block_offsets(pid, BLOCK // 8)
    mask_b = offs_b < NB
    p_bits = bits_ptr + _row_start(T - 1, NB) + offs_b
    c = 0.0
    if HAS_GM:
        c = tl.load(gm_ptr).to(tl.float32) * inv_count
    b_gnext = tl.zeros([BLOCK // VEC, VEC], dtype=tl.float32)
    b_dd = tl.zeros([BLOCK // VEC, VEC], dtype=tl.float32)
    # Software prefetch: the rows of step i + 1 (time t - 1) are loaded while step i computes, so
    # each step waits on no memory latency of its own (loaded where they are used, the loads of
    # u, the bits and grad-spikes made each step wait for them; compile_check's `pref` column).
    n_u = tl.load(p_u, mask=mask, other=0.0)
    n_bits = tl.zeros([BLOCK // 8], dtype=tl.uint8)
    if COMPACT:
        n_bits = tl.load(p_bits, mask=mask_b, other=0)
    n_gs = tl.zeros([BLOCK // VEC, VEC], dtype=gs_ptr.dtype.element_ty)
    if HAS_GS:
        n_gs = tl.load(p_gs, mask=mask, other=0.0)
    for i in range(T):
        b_u = n_u.to(tl.float32)
        b_packed = n_bits
        b_gs = n_gs.to(tl.float32)
        ahead = i + 1 < T  # no access before row 0
        p_u -= N
        p_bits -= NB
        p_gs -= N
        n_u = tl.load(p_u, mask=mask & ahead, other=0.0)
        if COMPACT:
            n_bits = tl.load(p_bits, mask=mask_b & ahead, other=0)
        if HAS_GS:
            n_gs = tl.load(p_gs, mask=mask & ahead, other=0.0)
        if COMPACT:
            b_o = _unpack_bits(b_packed, BLOCK, VEC)
        else:
            b_o = (b_u >= vth).to(tl.float32)
        if DECAY_GRAD:  # g(t + 1) v(t); no term out of t = T - 1 (0 * inf there would make a NaN)
            if HARD:
                b_v = b_u * (1.0 - b_o)
            else:
                b_v = b_u - vth * b_o
            b_dd += tl.where(mask & (i > 0), b_gnext * b_v, 0.0)
        b_go = tl.zeros([BLOCK // VEC, VEC], dtype=tl.float32)
        if HAS_GS:
            b_go = b_gs
        if not DETACH:
            if i > 0:  # no reset path out of t = T - 1 (0 * inf there would make a NaN)
                if HARD:
                    b_go += b_gnext * (-decay * b_u)
                else:
                    b_go += b_gnext * (-decay * vth)
        b_du = _surrogate_grad_times(b_go, b_u, vth, alpha, dspike_scale, SURROGATE)
        if not HAS_GS:  # no dL/do(t) without a reset path out of t: no term (not 0 * sg(NaN) = NaN)
            if DETACH:
                b_du = tl.zeros([BLOCK // VEC, VEC], dtype=tl.float32)
            else:
                b_du = tl.where(i > 0, b_du, 0.0)
        b_du += c
        if HARD:
            b_du += b_gnext * decay * (1.0 - b_o)
        else:
            b_du += b_gnext * decay
        tl.store(p_dx, b_du.to(p_dx.dtype.element_ty), mask=mask)
        b_gnext = b_du
        p_dx -= N
    if DECAY_GRAD:
        tl.store(dd_ptr + pid, tl.sum(tl.sum(b_dd, axis=1), axis=0))


def _launch_options(fp_fusion: bool) -> dict:
    """num_warps and FMA contraction: off in the forward (spikes must match the reference at
    threshold ties), on in the backward (its spikes come from the saved state, not arithmetic)."""
    if interpreting():
        return {}
    return {"num_warps": 4, "enable_fp_fusion": fp_fusion}


def fwd(x: torch.Tensor, out: torch.Tensor, p: LIFParams, save: str | None):
    """x, out: [T, N]. Writes spikes into out; returns (saved, u_mean 0-d fp32).

    save: None (inference), "exact" -> saved = (u fp32 [T, N],),
    "compact" -> saved = (u bf16 [T, N], spike bits uint8 [T, ceil(N / 8)]).
    """
    T, N = x.shape
    u = bits = out  # placeholders for the pointers a variant does not use
    if save is not None:
        u = torch.empty((T, N), dtype=torch.bfloat16 if save == "compact" else torch.float32, device=x.device)
    if save == "compact":
        bits = torch.empty((T, cdiv(N, 8)), dtype=torch.uint8, device=x.device)
    partials = torch.empty(cdiv(N, BLOCK), dtype=torch.float32, device=x.device)
    launch_fwd(x, out, u, bits, partials, p, save)
    saved = None if save is None else (u,) if save == "exact" else (u, bits)
    return saved, partials.sum().div_(T * N)


def launch_fwd(x, out, u, bits, partials, p: LIFParams, save: str | None) -> None:
    """The forward kernel alone on preallocated buffers (what `fwd` allocates): x, out [T, N];
    u [T, N] fp32 (save "exact") or bf16 ("compact"), else any tensor; bits [T, ceil(N / 8)]
    uint8 ("compact"), else any tensor; partials [ceil(N / BLOCK)] fp32, one membrane sum per
    program."""
    T, N = x.shape
    _lif_fwd_kernel[(cdiv(N, BLOCK),)](
        x, out, u, bits, partials, T, N, cdiv(N, 8), p.vth, p.decay,
        HARD=p.reset == "hard", SAVE=SAVE_CODES[save], BLOCK=BLOCK, **_launch_options(fp_fusion=False))


def bwd(gs, gm, saved: tuple, p: LIFParams, dx: torch.Tensor, decay_grad: bool = False):
    """gs: [T, N] or None; gm: 0-d or None; saved: what fwd returned; writes dx [T, N]. Without
    decay_grad the backward kernel allocates nothing, so it is also the kernel alone. Returns
    dL/d decay (0-d fp32: one partial sum per program, summed by torch in a fixed order) when
    decay_grad, else None."""
    u = saved[0]
    bits = saved[1] if len(saved) == 2 else u
    T, N = u.shape
    dspike_scale = p.dspike_scale if p.surrogate == "dspike" else 0.0
    # The decay gradient's accumulator and v(t) take registers of their own: half the neurons per
    # program keeps those variants within the register budget (tools/compile_check.py).
    compact = len(saved) == 2
    block = BLOCK // 2 if decay_grad else BLOCK
    programs = cdiv(N, block)
    dd = torch.empty(programs, dtype=torch.float32, device=u.device) if decay_grad else u
    _lif_bwd_kernel[(programs,)](
        u if gs is None else gs, u if gm is None else gm, u, bits, dx, dd, T, N, cdiv(N, 8),
        p.vth, p.decay, p.alpha, dspike_scale, 1.0 / (T * N),
        HARD=p.reset == "hard", DETACH=p.detach_reset, SURROGATE=SURROGATE_CODES[p.surrogate],
        HAS_GS=gs is not None, HAS_GM=gm is not None, COMPACT=compact, DECAY_GRAD=decay_grad, BLOCK=block,
        **_launch_options(fp_fusion=True))
    return dd.sum() if decay_grad else None
