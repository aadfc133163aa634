"""The LIF layers of Open Neuromorphic's "SNN library benchmarks" (one Linear(n, n) and one LIF
layer, batch 16, T = 500), ours and the other libraries', all set to one dynamics (DYNAMICS):

    u(t) = decay * u(t-1) * (1 - o(t-1)) + x(t),  o(t) = 1[u(t) >= vth]  (hard reset to 0),

decay 0.9, vth 1.0, the reset detached from the graph, and one surrogate gradient: ours 'tanh'
with alpha 2, d o / du = alpha / 2 (1 - tanh^2(alpha (u - vth))) = 2 alpha s (1 - s) with
s = sigmoid(2 alpha (u - vth)). The mapping per library (docs/performance.md repeats it):

- SpikingJelly 2.0, `functional.lif_multi_step` (LIFNode's multi-step op, torch backend):
  tau = 1 / (1 - decay), decay_input=False, v_reset=0, detach_reset=True,
  surrogate.Sigmoid(alpha=2 alpha) (its derivative is alpha_sj s (1 - s) with s = sigmoid(alpha_sj y)).
- snnTorch 1.0, `Leaky` stepped over T: beta = decay, threshold = vth, reset_mechanism='zero'
  (snnTorch always detaches the reset), spike_grad=surrogate.sigmoid(slope=2 alpha).
  It fires on u > vth (strictly): spikes differ from ours only where u(t) == vth exactly.
- Norse 1.1, `LIFBoxCell` stepped over T (the box model is this LIF without a synaptic current):
  dt * tau_mem_inv = 1 - decay, v_th = vth, v_reset = 0, method='tanh' with alpha = alpha (its
  derivative 1 - tanh^2(alpha y) equals ours at alpha = 2), a reset that detaches the spike, and
  the input scaled by 1 / (1 - decay) (Norse integrates v + dt tau_mem_inv (x - v)). It fires on
  u > vth, and its rounding differs from ours (scaled input, a different update order), so a few
  spikes near the threshold may flip: the check records how many.
- Sinabs and Rockpool: skipped with the reason (Sinabs pulls `samna`, whose PyPI package is a
  stub that downloads a binary when imported; Rockpool is not installed here).

Each layer maps x [T, B, n] -> spikes [T, B, n] with autograd through it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from kernels import lif_scan

DECAY, VTH, ALPHA = 0.9, 1.0, 2.0
DYNAMICS = dict(vth=VTH, decay=DECAY, surrogate="tanh", alpha=ALPHA, reset="hard", detach_reset=True)


@dataclass(frozen=True)
class Peer:
    name: str
    build: Callable[[int], Callable[[torch.Tensor], torch.Tensor]]  # n -> LIF layer on [T, B, n]
    unavailable: Callable[[str], Optional[str]]  # device -> reason or None
    version: Callable[[], str]


def _ours(backend: str):
    def build(n):
        return lambda x: lif_scan(x, backend=backend, **DYNAMICS)[0]
    return build


def _ours_unavailable(backend: str):
    def reason(device):
        if backend == "cpu":
            from kernels.lif import fused_cpu

            if device != "cpu":
                return "the native cpu backend runs on CPU tensors only"
            return None if fused_cpu.available() else "the native cpu kernel is not built"
        if backend == "triton" and device != "cuda":
            return "Triton kernels are timed on CUDA only"
        return None
    return reason


def _missing(module: str, hint: str):
    def reason(device):
        return None if importlib.util.find_spec(module) is not None else f"{module} is not installed ({hint})"
    return reason


def _version(module: str):
    def version():
        try:
            from importlib.metadata import version as v

            return v(module)
        except Exception:  # noqa: BLE001 - a version string is informative only
            return "?"
    return version


def _spikingjelly(n):
    from spikingjelly.activation_based import functional, surrogate

    sg = surrogate.Sigmoid(alpha=2.0 * ALPHA)

    def layer(x):
        v0 = torch.zeros_like(x[0])
        return functional.lif_multi_step(x, v0, 1.0 / (1.0 - DECAY), False, VTH, 0.0, sg, True, False)[0]
    return layer


def _snntorch(n):
    import snntorch
    from snntorch import surrogate

    lif = snntorch.Leaky(beta=DECAY, threshold=VTH, reset_mechanism="zero",
                         spike_grad=surrogate.sigmoid(slope=2.0 * ALPHA))

    def layer(x):
        mem = torch.zeros_like(x[0])
        out = []
        for x_t in x.unbind(0):
            spk, mem = lif(x_t, mem)
            out.append(spk)
        return torch.stack(out)
    return layer


def _detached_reset(z, v, v_reset, v_th):
    z = z.detach()
    return (1 - z) * v + z * v_reset


def _norse(n):
    from norse.torch import LIFBoxCell, LIFBoxParameters

    dt = 1e-3
    p = LIFBoxParameters(tau_mem_inv=torch.as_tensor((1.0 - DECAY) / dt), v_th=torch.as_tensor(VTH),
                         v_reset=torch.as_tensor(0.0), method="tanh", alpha=ALPHA, reset_method=_detached_reset)
    cell = LIFBoxCell(p, dt=dt)
    scale = 1.0 / (1.0 - DECAY)

    def layer(x):
        state = None
        out = []
        for x_t in (x * scale).unbind(0):
            z, state = cell(x_t, state)
            out.append(z)
        return torch.stack(out)
    return layer


def _not_here(reason: str):
    def unavailable(device):
        return reason
    return unavailable


def _no_layer(n):
    raise NotImplementedError("no layer: this library is not installed where the group was written")


# Sinabs depends on samna, whose PyPI package is a stub that downloads a binary when it is
# imported; Rockpool was not installed either. Neither has a layer here: one written without the
# library to run it against could not be checked, so both rows are skipped with these reasons.
SINABS_REASON = ("sinabs is not installed: it depends on samna, whose PyPI package is a stub that downloads a "
                 "binary when imported")
ROCKPOOL_REASON = "rockpool is not installed in this environment"


PEERS = {
    "cpu": Peer("cpu", _ours("cpu"), _ours_unavailable("cpu"), _version("imloss-snn")),
    "torch": Peer("torch", _ours("torch"), _ours_unavailable("torch"), _version("imloss-snn")),
    "triton": Peer("triton", _ours("triton"), _ours_unavailable("triton"), _version("imloss-snn")),
    "naive": Peer("naive", _ours("naive"), _ours_unavailable("naive"), _version("imloss-snn")),
    "spikingjelly": Peer("spikingjelly", _spikingjelly, _missing("spikingjelly", "pip install spikingjelly==2.0.0"),
                         _version("spikingjelly")),
    "snntorch": Peer("snntorch", _snntorch, _missing("snntorch", "pip install snntorch==1.0.0"),
                     _version("snntorch")),
    "norse": Peer("norse", _norse, _missing("norse", "pip install norse==1.1.0"), _version("norse")),
    "sinabs": Peer("sinabs", _no_layer, _not_here(SINABS_REASON), _version("sinabs")),
    "rockpool": Peer("rockpool", _no_layer, _not_here(ROCKPOOL_REASON), _version("rockpool")),
}


def reference(device: str) -> Peer:
    """The layer every peer's spikes are checked against: ours, the native kernel on CPU, Triton on CUDA."""
    return PEERS["triton" if device == "cuda" else ("cpu" if PEERS["cpu"].unavailable(device) is None else "torch")]


def compare(peer: Peer, x: torch.Tensor) -> dict:
    """Spikes and the gradient of spikes.sum() (the published loss) of `peer` against the reference
    on x [T, B, n]: the fraction of spikes that differ, the first step with a difference (-1: none)
    and dx's relative L2 error."""
    def run(p):
        xr = x.detach().requires_grad_()
        s = p.build(x.shape[-1])(xr)
        s.sum().backward()
        return s.detach(), xr.grad

    s, dx = run(peer)
    rs, rdx = run(reference(x.device.type))
    diff = s != rs
    steps = diff.flatten(1).any(1).nonzero()
    return {"spike_mismatch": diff.float().mean().item(),
            "first_mismatch_step": int(steps[0]) if len(steps) else -1,
            "dx_rel_err": ((dx.double() - rdx.double()).norm() / rdx.double().norm().clamp_min(1e-30)).item()}
