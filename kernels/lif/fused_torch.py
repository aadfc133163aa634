"""Fused CPU path: the LIF scan and its reverse-time backward as in-place torch ops.

Neurons are processed in chunks small enough for the membrane state and the temporaries of
one time step to stay in cache, and every op writes into preallocated buffers. State is fp32
(fp64 for fp64 input). Arithmetic follows `naive.py` op for op, so spikes and u agree bit for
bit with the reference on the same device.
"""

from __future__ import annotations

import torch

from .params import LIFParams

CHUNK = 1 << 18  # neurons per chunk (a multiple of 8 for the bit packing); measured best on 2 cores


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def pack_bits(o: torch.Tensor) -> torch.Tensor:
    """[n] bool -> [ceil(n / 8)] uint8, bit j of byte k = element 8k + j (as the Triton kernel)."""
    n = o.numel()
    padded = torch.zeros(_cdiv(n, 8) * 8, dtype=torch.uint8, device=o.device)
    padded[:n] = o
    return (padded.view(-1, 8) << _BIT_SHIFTS.to(o.device)).sum(1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, n: int) -> torch.Tensor:
    """[ceil(n / 8)] uint8 -> [n] bool."""
    return ((packed[:, None] >> _BIT_SHIFTS.to(packed.device)) & 1).view(-1)[:n].bool()


_BIT_SHIFTS = torch.arange(8, dtype=torch.uint8)


def fwd(x: torch.Tensor, out: torch.Tensor, p: LIFParams, save: str | None):
    """x, out: [T, N]. Writes spikes into out; returns (saved, u_mean 0-d).

    save: None (inference), "exact" -> saved = (u [T, N] in the compute dtype,),
    "compact" -> saved = (u bf16 [T, N], spike bits uint8 [T, ceil(N / 8)]).
    """
    T, N = x.shape
    dtype = _compute_dtype(x.dtype)
    u_all = torch.empty((T, N), dtype=dtype, device=x.device) if save == "exact" else None
    if save == "compact":
        u_half = torch.empty((T, N), dtype=torch.bfloat16, device=x.device)
        bits = torch.empty((T, _cdiv(N, 8)), dtype=torch.uint8, device=x.device)
    sums = torch.empty(T, _cdiv(N, CHUNK), dtype=dtype, device=x.device)
    n0 = min(N, CHUNK)
    zeros = torch.zeros(n0, dtype=dtype, device=x.device)
    o = torch.empty(n0, dtype=torch.bool, device=x.device)
    reset = torch.empty(n0, dtype=dtype, device=x.device)  # 1 - o(t-1) (hard) or vth * o(t-1) (soft)
    scratch = None if u_all is not None else torch.empty(2, n0, dtype=dtype, device=x.device)
    for c, a in enumerate(range(0, N, CHUNK)):
        b = min(a + CHUNK, N)
        n = b - a
        u_prev = zeros[:n]
        for t in range(T):
            u = scratch[t % 2, :n] if u_all is None else u_all[t, a:b]
            if t == 0:
                u.copy_(x[0, a:b])  # u(0) = x(0): the decay term of a zero state is exactly 0
            elif p.reset == "hard":
                torch.mul(u_prev, p.decay, out=u).mul_(reset[:n]).add_(x[t, a:b])
            else:
                torch.sub(u_prev, reset[:n], out=u).mul_(p.decay).add_(x[t, a:b])
            torch.ge(u, p.vth, out=o[:n])
            out[t, a:b].copy_(o[:n])
            if save == "compact":
                u_half[t, a:b].copy_(u)
                bits[t, a // 8:_cdiv(b, 8)].copy_(pack_bits(o[:n]))
            if p.reset == "hard":
                reset[:n].copy_(o[:n]).neg_().add_(1)
            else:
                reset[:n].copy_(o[:n]).mul_(p.vth)
            torch.sum(u, dim=0, out=sums[t, c])
            u_prev = u
    u_mean = sums.sum() / (T * N)
    saved = {None: None, "exact": (u_all,), "compact": (u_half, bits) if save == "compact" else None}[save]
    return saved, u_mean


def _surrogate_grad(u: torch.Tensor, p: LIFParams, out: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """out <- d phi / du at u (see naive.asymptotic); mask is a bool scratch buffer."""
    if p.surrogate == "tanh":
        torch.sub(u, p.vth, out=out).mul_(p.alpha).tanh_()
        return out.square_().neg_().add_(1).mul_(0.5 * p.alpha)
    if p.surrogate == "rect":
        torch.lt(torch.sub(u, p.vth, out=out).abs_(), p.alpha / 2, out=mask)
        return out.copy_(mask).mul_(1 / p.alpha)
    torch.div(u, p.vth, out=out)
    torch.logical_and(out >= 0, out <= 1, out=mask)
    out.sub_(0.5).mul_(p.alpha).tanh_().square_().neg_().add_(1).mul_(p.dspike_scale)
    return out.mul_(mask)


def bwd(gs, gm, saved: tuple, p: LIFParams, dx: torch.Tensor) -> None:
    """Reverse-time pass. gs: [T, N] or None; gm: 0-d or None; saved: what fwd returned; writes dx.

    With g(t) = dL/du(t) and G(t) = dL/do(t) along all paths:
      G(t) = gs(t) + g(t+1) * du(t+1)/do(t)   (-decay * u(t) hard, -decay * vth soft; 0 if detached)
      g(t) = G(t) * sg(u(t)) + gm / (T N) + g(t+1) * decay * (1 - o(t) if hard else 1)
    and dL/dx(t) = g(t).
    """
    u_all = saved[0]
    bits = saved[1] if len(saved) == 2 else None
    T, N = u_all.shape
    dtype = _compute_dtype(dx.dtype)
    c = None if gm is None else gm.to(dtype) / (T * N)
    n0 = min(N, CHUNK)
    buffers = torch.empty(4, n0, dtype=dtype, device=u_all.device)
    spare_u = torch.empty(n0, dtype=dtype, device=u_all.device) if bits is not None else None
    mask = torch.empty(n0, dtype=torch.bool, device=u_all.device)
    spiked = torch.empty(n0, dtype=torch.bool, device=u_all.device)
    direct = dx.dtype == dtype  # fp32 dx: accumulate straight into it, else in a ping-pong buffer
    for a in range(0, N, CHUNK):
        b = min(a + CHUNK, N)
        n = b - a
        G, spare, sg, keep = buffers[:, :n]
        g_next = None
        for t in range(T - 1, -1, -1):
            u = u_all[t, a:b]
            if bits is None:
                o = torch.ge(u, p.vth, out=spiked[:n])
            else:
                o = unpack_bits(bits[t, a // 8:_cdiv(b, 8)], n)
                u = spare_u[:n].copy_(u)
            if gs is None:
                G.zero_()
            else:
                G.copy_(gs[t, a:b])
            if g_next is not None and not p.detach_reset:
                if p.reset == "hard":
                    G.addcmul_(g_next, u, value=-p.decay)
                else:
                    G.add_(g_next, alpha=-p.decay * p.vth)
            g = dx[t, a:b] if direct else G
            torch.mul(G, _surrogate_grad(u, p, sg, mask[:n]), out=g)
            if c is not None:
                g.add_(c)
            if g_next is not None:
                if p.reset == "hard":
                    keep.copy_(o).neg_().add_(1)
                    g.addcmul_(g_next, keep, value=p.decay)
                else:
                    g.add_(g_next, alpha=p.decay)
            if not direct:
                dx[t, a:b].copy_(g)
                G, spare = spare, G
            g_next = g
