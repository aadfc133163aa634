"""The fused backends by name: adding one is one line in `FUSED_BACKENDS`.

Each entry maps a backend name (the `backend=` argument of `lif_scan`) to the dotted path of a
module with the `fwd` / `bwd` functions documented in `function.py`. Modules are imported on
first use, so an optional dependency (triton) is loaded only by the backend that needs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

FUSED_BACKENDS: dict[str, str] = {
    "torch": "kernels.lif.fused_torch",
    "cpu": "kernels.lif.fused_cpu",
    "triton": "kernels.lif.fused_triton",
}


def backend_module(name: str) -> ModuleType:
    """The module registered as fused backend `name`; ValueError naming the registered ones."""
    if name not in FUSED_BACKENDS:
        raise ValueError(f"unknown fused backend {name!r}; registered: {sorted(FUSED_BACKENDS)}")
    return importlib.import_module(FUSED_BACKENDS[name])
