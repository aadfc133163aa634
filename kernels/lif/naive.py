"""Ground truth: the LIF scan as a plain PyTorch time loop, differentiated by autograd.

Every fused backend is tested against this file. It computes in fp32 whatever the input dtype,
and it never writes a derivative by hand: the spike's surrogate gradient comes from autograd
through the asymptotic function `phi` (the straight-through form `o + phi(u) - phi(u).detach()`,
whose forward value is then set to `o` exactly: `phi - phi` is 0 for a finite `phi` but NaN for
a NaN membrane, which must not fire).
"""

from __future__ import annotations

import math

import torch

from .params import LIFParams, compute_dtype


def asymptotic(u: torch.Tensor, p: LIFParams) -> torch.Tensor:
    """phi(u), whose derivative is the surrogate gradient of the spike `1[u >= vth]`.

    tanh: 0.5 tanh(alpha (u - vth)) + 0.5 (paper eq. 13-14).
    rect: linear ramp of slope 1/alpha on |u - vth| < alpha/2 (strict), a step outside.
    dspike: (tanh(b (x - 1/2)) + tanh(b/2)) / (2 tanh(b/2)) with x = u / (2 vth) on 0 <= x <= 1, a
    step outside (Li et al. 2021: the soft step's midpoint x = 1/2 is the firing point u = vth).
    atan: arctan(pi/2 alpha (u - vth)) / pi + 1/2, SpikingJelly's surrogate.ATan(alpha) (its
    derivative alpha/2 / (1 + (pi/2 alpha (u - vth))^2) peaks at alpha / 2 at the threshold).
    Autograd through the outer where passes exactly 0 to the ramp outside the window, also for a
    NaN or infinite upstream gradient (the non-finite rule, docs/kernel.md). rect's linear ramp keeps that
    0; dspike's tanh ramp would turn it into 0 * NaN at a NaN membrane, so it is evaluated on x
    moved into the window where x lies outside (the double-where form).
    """
    if p.surrogate == "tanh":
        return 0.5 * torch.tanh(p.alpha * (u - p.vth)) + 0.5
    if p.surrogate == "atan":
        return torch.atan((math.pi / 2 * p.alpha) * (u - p.vth)) / math.pi + 0.5
    step = (u >= p.vth).to(u.dtype)
    if p.surrogate == "rect":
        inside = (u - p.vth).abs() < p.alpha / 2
        return torch.where(inside, (u - p.vth) / p.alpha + 0.5, step)
    b = p.alpha
    x = u / (2 * p.vth)
    inside = (x >= 0) & (x <= 1)
    x_in = torch.where(inside, x, 0.5)
    ramp = (torch.tanh(b * (x_in - 0.5)) + math.tanh(b / 2)) / (2 * math.tanh(b / 2))
    return torch.where(inside, ramp, step)


def lif_scan_naive(x: torch.Tensor, p: LIFParams, decay: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """x: [T, ...] float -> (spikes [T, ...] in x.dtype, u_mean 0-d fp32; fp64 for fp64 x).

    decay: a learnable 0-d decay tensor used in place of p.decay (autograd then gives its
    gradient), or None.

    Hard reset: u(t) = decay * u(t-1) * (1 - o(t-1)) + x(t).
    Soft reset: u(t) = decay * (u(t-1) - vth * o(t-1)) + x(t).
    o(t) = 1[u(t) >= vth], u(0) = o(0) = 0; u_mean averages the pre-reset u over all elements.
    A NaN membrane never fires (o = 0); it still makes u_mean NaN.
    """
    xf = x.to(compute_dtype(x.dtype))
    leak = p.decay if decay is None else decay.to(xf.dtype)
    u_prev = torch.zeros_like(xf[0])
    o_prev = torch.zeros_like(xf[0])
    spikes, membranes = [], []
    for x_t in xf:
        o_reset = o_prev.detach() if p.detach_reset else o_prev
        if p.reset == "hard":
            u = leak * u_prev * (1 - o_reset) + x_t
        else:
            u = leak * (u_prev - p.vth * o_reset) + x_t
        step = (u >= p.vth).to(u.dtype)  # 0 for a NaN membrane: NaN >= vth is false
        phi = asymptotic(u, p)
        o = step + (phi - phi.detach())  # autograd: d o / du = d phi / du
        with torch.no_grad():
            o.copy_(step)  # forward value: the step, also where phi(NaN) made o NaN
        spikes.append(o)
        membranes.append(u)
        u_prev, o_prev = u, o
    return torch.stack(spikes).to(x.dtype), torch.stack(membranes).mean()
