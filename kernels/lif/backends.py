"""The fused backends by name and the contract each one implements: adding a backend is one entry
in `FUSED_BACKENDS` plus its module.

A fused backend is a module with two functions on time-major matrices:

  fwd(x [T, N], out [T, N], p, save) -> (saved or None, u_mean 0-d)
      writes the spikes into `out`; save is None (inference: nothing kept), "exact" or
      "compact"; u_mean in the compute dtype (params.compute_dtype).
  bwd(grad_spikes [T, N] or None, grad_mean 0-d or None, saved, p, dx [T, N], decay_grad)
      -> dL/d decay 0-d in the compute dtype when decay_grad, else None
      one reverse-time pass writing dL/dx into `dx`; with decay_grad it also reduces
      dL/d decay = sum over t >= 1 and all neurons of dL/du(t) * v(t - 1), v the membrane after
      reset (hard: u (1 - o), soft: u - vth o), in a fixed order (deterministic).

x, out, grad_spikes and dx are views of dense memory with row stride N (dispatch.py makes them);
p is a validated `params.LIFParams`. Saved for backward, per element (`saved_state`):
  "exact":   (u,): the pre-reset membrane in the compute dtype, [T, N] (4 bytes; 8 for fp64).
             The spikes are recomputed as u >= vth, bit for bit those the forward emitted.
  "compact": (u, bits): u rounded to bf16 [T, N] (2 bytes) plus the emitted spikes as packed
             bits [T, ceil(N / 8)] uint8 (bit j of byte k = neuron 8k + j). Spikes stay exact;
             the surrogate and reset-path gradients see the bf16 membrane.

Each registry entry declares the device types and dtypes the backend runs on, its input check
(called by `lif_scan` before dispatch, with the error a user sees) and its place in the `auto`
choice; `lif_scan`, `snn.LIF` and the tests derive their backend lists from it. Modules are
imported on first use, so an optional dependency (triton) is loaded only by the backend that
needs it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import torch

from .layout import cdiv
from .params import compute_dtype

ALL_FLOATS = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
SAVED_STATES = ("none", "exact", "compact")  # what the forward keeps: nothing (inference), or a format above
SAVE_CODES = {None: 0, "exact": 1, "compact": 2}  # the `save` argument as the native kernels take it


def saved_state(T: int, N: int, dtype: torch.dtype, state: str):
    """(u shape, u dtype, bits shape) of the state a forward with `state` keeps for x [T, N] of
    dtype; a shape (0,) stands for a part that format does not have."""
    if state == "exact":
        return (T, N), compute_dtype(dtype), (0,)
    if state == "compact":
        return (T, N), torch.bfloat16, (T, cdiv(N, 8))
    return (0,), compute_dtype(dtype), (0,)


@dataclass(frozen=True)
class Backend:
    """One fused backend.

    module: dotted path of the module with `fwd` / `bwd` (the contract above).
    devices: the device types it computes on (meta tensors always pass: the op's fake
        implementation gives their shapes); None for any device.
    dtypes: the input dtypes it accepts.
    check: raises a ValueError / TypeError / RuntimeError naming what is wrong with x and what
        is accepted, or None when `devices` and `dtypes` say everything.
    auto: its rank in `backend='auto'` (lowest first): auto takes the first backend whose devices
        and dtypes admit x and that is `available`; None when auto never picks it.
    available: whether it can run on this installation (e.g. a native kernel was built); None
        for always.
    """
    module: str
    devices: tuple[str, ...] | None
    dtypes: tuple[torch.dtype, ...]
    check: Callable[[torch.Tensor], None] | None = None
    auto: int | None = None
    available: Callable[[], bool] | None = None

    def admits(self, x: torch.Tensor) -> bool:
        """True when x's device type and dtype are ones this backend runs on."""
        return (self.devices is None or x.device.type in self.devices) and x.dtype in self.dtypes


TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _check_triton(x: torch.Tensor) -> None:
    from . import fused_triton  # imported here: triton is optional off Linux

    if x.device.type not in ("cuda", "meta") and not fused_triton.interpreting():
        raise ValueError(f"backend='triton' needs a CUDA tensor, or TRITON_INTERPRET=1 set before triton is "
                         f"imported to run on CPU tensors; got a tensor on {x.device}")
    if x.dtype not in TRITON_DTYPES:
        raise TypeError(f"backend='triton' supports float32, float16 and bfloat16, got {x.dtype}; "
                        f"use backend='torch' for float64")


def _check_cpu(x: torch.Tensor) -> None:
    from . import fused_cpu

    if x.device.type != "meta":  # meta tensors only need the op's fake implementation
        fused_cpu.require(x)


def _cpu_available() -> bool:
    from . import fused_cpu

    return fused_cpu.available()


FUSED_BACKENDS: dict[str, Backend] = {
    "torch": Backend("kernels.lif.fused_torch", devices=None, dtypes=ALL_FLOATS, auto=2),
    "cpu": Backend("kernels.lif.fused_cpu", devices=("cpu",), dtypes=ALL_FLOATS, check=_check_cpu, auto=1,
                   available=_cpu_available),
    "triton": Backend("kernels.lif.fused_triton", devices=("cuda",), dtypes=TRITON_DTYPES, check=_check_triton,
                      auto=0),
}
BACKENDS = ("auto", "naive", *FUSED_BACKENDS)  # every name lif_scan's `backend` takes
AUTO_ORDER: tuple[tuple[str, Backend], ...] = tuple(sorted(
    ((name, b) for name, b in FUSED_BACKENDS.items() if b.auto is not None), key=lambda item: item[1].auto))


def runnable(x: torch.Tensor) -> list[str]:
    """The fused backends that run x here: its device type and dtype admitted, and available on
    this installation; in registry order."""
    return [name for name, b in FUSED_BACKENDS.items() if b.admits(x) and (b.available is None or b.available())]


def auto_backend(x: torch.Tensor) -> str:
    """The backend `backend='auto'` runs x on: the first of AUTO_ORDER that admits x and is available."""
    for name, b in AUTO_ORDER:
        if b.admits(x) and (b.available is None or b.available()):
            return name
    raise ValueError(f"no fused backend runs a {x.dtype} tensor on {x.device}; registered: {sorted(FUSED_BACKENDS)}")


def backend_module(name: str) -> ModuleType:
    """The module registered as fused backend `name`; ValueError naming the registered ones."""
    if name not in FUSED_BACKENDS:
        raise ValueError(f"unknown fused backend {name!r}; registered: {sorted(FUSED_BACKENDS)}")
    return importlib.import_module(FUSED_BACKENDS[name].module)
