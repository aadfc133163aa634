"""Fused CPU path: the LIF scan and its reverse-time backward as in-place torch ops.

Neurons are processed in chunks small enough for one time step's buffers to stay in cache, and
every op writes into a preallocated buffer, so a step costs a handful of passes over a chunk.
State is fp32 (fp64 for fp64 input). Spikes and u agree bit for bit with `naive.py`: every
rounding step is the same (a multiplication by 1 - o(t-1), a 0/1 value, is exact, so fusing it
into one addcmul changes nothing). The forward computes 1 - o(t) as 1[u(t) < vth], which only
differs for a NaN membrane, where the product with u(t) is NaN either way; the backward, where it
multiplies a gradient, uses 1 - o(t) itself (1 for a NaN membrane, which never fires). Float 0/1
masks are used throughout because bool masks take CPU paths several times slower; the windowed
surrogates select with an integer all-ones/zero mask (see _select) for the same reason.
"""

from __future__ import annotations

import math

import torch

from .layout import cdiv
from .params import LIFParams, compute_dtype

CHUNK = 1 << 18  # neurons per chunk (a multiple of 8 for the bit packing); measured best on 2 cores
TANH_BLOCK = 1 << 21  # elements of the backward's tanh per call (8 MiB in fp32): few calls, bounded memory
_BIT_SHIFTS = torch.arange(8, dtype=torch.uint8)
_SAME_WIDTH_INT = {torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float32: torch.int32,
                   torch.float64: torch.int64}


def pack_bits(o: torch.Tensor) -> torch.Tensor:
    """[n] bool -> [ceil(n / 8)] uint8, bit j of byte k = element 8k + j (as the Triton kernel)."""
    n = o.numel()
    padded = torch.zeros(cdiv(n, 8) * 8, dtype=torch.uint8, device=o.device)
    padded[:n] = o
    return (padded.view(-1, 8) << _BIT_SHIFTS.to(o.device)).sum(1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, n: int) -> torch.Tensor:
    """[ceil(n / 8)] uint8 -> [n] bool."""
    return ((packed[:, None] >> _BIT_SHIFTS.to(packed.device)) & 1).view(-1)[:n].bool()


def fwd(x: torch.Tensor, out: torch.Tensor, p: LIFParams, save: str | None):
    """x, out: [T, N]. Writes spikes into out; returns (saved, u_mean 0-d).

    save: None (inference), "exact" -> saved = (u [T, N] in the compute dtype,),
    "compact" -> saved = (u bf16 [T, N], spike bits uint8 [T, ceil(N / 8)]).
    """
    T, N = x.shape
    dtype = compute_dtype(x.dtype)
    device = x.device
    u_all = torch.empty((T, N), dtype=dtype, device=device) if save == "exact" else None
    if save == "compact":
        u_half = torch.empty((T, N), dtype=torch.bfloat16, device=device)
        bits = torch.empty((T, cdiv(N, 8)), dtype=torch.uint8, device=device)
    sums = torch.empty(T, cdiv(N, CHUNK), dtype=dtype, device=device)
    n0 = min(N, CHUNK)
    scratch = torch.empty(2, n0, dtype=dtype, device=device) if u_all is None else None
    keep = torch.empty(n0, dtype=dtype, device=device)  # 1 - o(t-1), hard reset
    # Half-precision storage: x and the spikes go through fp32 buffers (mixed-dtype ops are slow on CPU).
    mixed = x.dtype != dtype
    x_buf = torch.empty(n0, dtype=dtype, device=device) if mixed else None
    o_buf = torch.empty(2, n0, dtype=dtype, device=device) if mixed else None
    for c, a in enumerate(range(0, N, CHUNK)):
        b = min(a + CHUNK, N)
        n = b - a
        u_prev = None
        for t in range(T):
            u = scratch[t % 2, :n] if u_all is None else u_all[t, a:b]
            x_t = x_buf[:n].copy_(x[t, a:b]) if mixed else x[t, a:b]
            o, o_prev = (o_buf[t % 2, :n], o_buf[(t + 1) % 2, :n]) if mixed else (out[t, a:b], out[t - 1, a:b])
            if u_prev is None:
                u.copy_(x_t)  # u(0) = x(0): the decay term of the zero state is exactly 0
            elif p.reset == "hard":
                torch.addcmul(x_t, u_prev, keep[:n], value=p.decay, out=u)  # x + (decay u) (1 - o)
            else:
                torch.sub(u_prev, o_prev, alpha=p.vth, out=u).mul_(p.decay).add_(x_t)
            torch.ge(u, p.vth, out=o)
            if mixed:
                out[t, a:b].copy_(o)
            if p.reset == "hard":
                torch.lt(u, p.vth, out=keep[:n])
            torch.sum(u, dim=0, out=sums[t, c])
            if save == "compact":
                u_half[t, a:b].copy_(u)
                bits[t, a // 8:cdiv(b, 8)].copy_(pack_bits(o.bool()))
            u_prev = u
    u_mean = sums.sum() / (T * N)
    if save == "compact":
        return (u_half, bits), u_mean
    return (None if save is None else (u_all,)), u_mean


def _select(values: torch.Tensor, mask: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """out <- values where mask is -1 (all bits set), exactly +0 where it is 0, also for NaN or
    infinite values (a product with a 0/1 window would give NaN there). mask: the same-width
    integer view of a scratch buffer; a bitwise AND runs at the speed of a multiplication on CPU,
    where torch.where with a bool mask is several times slower."""
    int_dtype = _SAME_WIDTH_INT[values.dtype]
    return torch.bitwise_and(values.view(int_dtype), mask, out=out.view(int_dtype)).view(values.dtype)


def _tanh_square(u: torch.Tensor, p: LIFParams, out: torch.Tensor) -> torch.Tensor:
    """out <- the tanh^2 term of the tanh and dspike surrogate derivatives at u (elementwise)."""
    if p.surrogate == "tanh":
        return torch.sub(u, p.vth, out=out).mul_(p.alpha).tanh_().square_()
    return torch.div(u, 2 * p.vth, out=out).sub_(0.5).mul_(p.alpha).tanh_().square_()


def _surrogate_grad_times(G: torch.Tensor, u: torch.Tensor, p: LIFParams, out: torch.Tensor,
                          tmp: torch.Tensor, window: torch.Tensor, tanh_sq: torch.Tensor | None = None
                          ) -> torch.Tensor:
    """out <- G * d phi/du (u) (see naive.asymptotic), and exactly 0 outside the window of rect
    and dspike (a select, which a NaN membrane is never inside); tmp and window are scratch.
    tanh_sq: _tanh_square(u) already computed (tanh and dspike), or None to compute it here."""
    if p.surrogate == "tanh":  # G (1 - tanh^2) alpha / 2; aten's tanh_backward is slower on CPU
        tmp = _tanh_square(u, p, tmp) if tanh_sq is None else tanh_sq
        return torch.addcmul(G, G, tmp, value=-1, out=out).mul_(0.5 * p.alpha)
    if p.surrogate == "atan":  # G (alpha / 2) / (1 + (pi/2 alpha (u - vth))^2)
        torch.sub(u, p.vth, out=tmp).mul_(math.pi / 2 * p.alpha).square_().add_(1)
        return torch.div(G, tmp, out=out).mul_(0.5 * p.alpha)
    mask = window.view(_SAME_WIDTH_INT[window.dtype])
    if p.surrogate == "rect":
        torch.lt(torch.sub(u, p.vth, out=tmp).abs_(), p.alpha / 2, out=mask).neg_()
        return _select(G, mask, out).mul_(1 / p.alpha)
    torch.div(u, 2 * p.vth, out=tmp)
    torch.ge(tmp, 0, out=mask).mul_(tmp <= 1).neg_()
    tmp = _tanh_square(u, p, tmp) if tanh_sq is None else tanh_sq
    torch.addcmul(G, G, tmp, value=-1, out=out)
    return _select(out, mask, out).mul_(p.dspike_scale)


def surrogate_grad(u: torch.Tensor, p: LIFParams) -> torch.Tensor:
    """d phi / du at u, the surrogate derivative of the spike (same formulas as the backward)."""
    return _surrogate_grad_times(torch.ones_like(u), u, p, torch.empty_like(u), torch.empty_like(u),
                                 torch.empty_like(u))


def bwd(gs, gm, saved: tuple, p: LIFParams, dx: torch.Tensor, decay_grad: bool = False):
    """Reverse-time pass. gs: [T, N] or None; gm: 0-d or None; saved: what fwd returned; writes
    dx = dL/dx [T, N]. The recurrence g(t), G(t) and its non-finite rule: docs/kernel.md.
    Returns dL/d decay (0-d, compute dtype) when decay_grad: the sum of g(t + 1) v(t), v(t) the
    membrane after reset, per chunk and step, added in a fixed order; else None."""
    u_all = saved[0]
    bits = saved[1] if len(saved) == 2 else None
    T, N = u_all.shape
    dtype = compute_dtype(dx.dtype)
    device = u_all.device
    c = None if gm is None else gm.to(dtype) / (T * N)
    zero = torch.zeros((), dtype=dtype, device=device)
    n0 = min(N, CHUNK)
    buffers = torch.empty(8, n0, dtype=dtype, device=device)
    direct = dx.dtype == dtype  # fp32 dx: accumulate straight into it, else in a ping-pong buffer
    decay_sums = torch.zeros(T, cdiv(N, CHUNK), dtype=dtype, device=device) if decay_grad else None
    # tanh (tanh, dspike) runs on up to `steps` time steps at once: aten's transcendental ops split
    # work across threads from 2048 elements on, so one call per step of a small chunk pays a
    # thread fork/join per step, which costs up to a scheduler time slice when another process
    # holds a core (n = 8192, T = 500, 2 threads, loaded 2-core machine: backward 2.5 s against 0.07 s).
    # Blocks of TANH_BLOCK elements make that a few fork/joins per block; the values are the same.
    # On one thread there is no fork/join, and the block's extra pass through memory made the
    # backward slower (n = 65536, T = 500: 0.39 s against 0.25 s), so one thread keeps the per-step tanh.
    blocked = p.surrogate in ("tanh", "dspike") and T > 1 and torch.get_num_threads() > 1
    steps = max(1, TANH_BLOCK // n0) if blocked else 0
    tanh_block = torch.empty(min(steps, T), n0, dtype=dtype, device=device) if steps > 1 else None
    for c_index, a in enumerate(range(0, N, CHUNK)):
        b = min(a + CHUNK, N)
        n = b - a
        G, keep, tmp, window, u_buf, g_buf, spare, gs_buf = buffers[:, :n]
        g_next = None
        lo = T  # first step of the block of tanh_block (the steps lo .. lo + len - 1)
        for t in range(T - 1, -1, -1):
            tanh_sq = None
            if tanh_block is not None:
                if t < lo:  # the next block down: steps max(0, t - steps + 1) .. t
                    lo = max(0, t - steps + 1)
                    block = tanh_block[:t + 1 - lo, :n]
                    _tanh_square(block.copy_(u_all[lo:t + 1, a:b]), p, block)
                tanh_sq = tanh_block[t - lo, :n]
            u = u_all[t, a:b]
            needs_keep = p.reset == "hard" or decay_grad  # 1 - o(t): 1 for a NaN membrane
            if bits is None:
                if needs_keep:
                    torch.ge(u, p.vth, out=keep).neg_().add_(1)
            else:
                if needs_keep:
                    keep.copy_(unpack_bits(bits[t, a // 8:cdiv(b, 8)], n)).neg_().add_(1)
                u = u_buf.copy_(u)
            if decay_grad and g_next is not None:  # dL/d decay += g(t + 1) v(t), v(t) = du(t + 1)/d decay
                if p.reset == "hard":
                    torch.mul(u, keep, out=tmp)
                else:  # u - vth o(t), as the forward's soft reset rounds it; o(t) = 1 - keep
                    torch.sub(u, tmp.copy_(keep).neg_().add_(1), alpha=p.vth, out=tmp)
                torch.sum(tmp.mul_(g_next), dim=0, out=decay_sums[t, c_index])
            if gs is None:
                gs_t = zero
            else:  # half-precision upstream gradients are upcast once (mixed-dtype ops are slow on CPU)
                gs_t = gs[t, a:b] if gs.dtype == dtype else gs_buf.copy_(gs[t, a:b])
            reset_path = g_next is not None and not p.detach_reset  # o(t) reaches u(t + 1)
            g = dx[t, a:b] if direct else g_buf
            if gs is None and not reset_path:  # no dL/do(t) at all: no term, not 0 * sg(NaN) = NaN
                g.zero_()
            else:
                if not reset_path:
                    G.copy_(gs_t)
                elif p.reset == "hard":
                    torch.addcmul(gs_t, g_next, u, value=-p.decay, out=G)
                else:
                    torch.add(gs_t, g_next, alpha=-p.decay * p.vth, out=G)
                _surrogate_grad_times(G, u, p, g, tmp, window, tanh_sq)
            if g_next is not None:
                if p.reset == "hard":
                    g.addcmul_(g_next, keep, value=p.decay)
                else:
                    g.add_(g_next, alpha=p.decay)
            if c is not None:
                g.add_(c)
            if not direct:
                dx[t, a:b].copy_(g)
                g_buf, spare = spare, g_buf
            g_next = g
    return None if decay_sums is None else decay_sums.sum()
