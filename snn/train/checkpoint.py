"""Atomic, safely loadable checkpoints that hold everything an exact resume needs.

A checkpoint is a dict of tensors and plain Python values (so `torch.load(weights_only=True)`
reads it): model, optimizer, LR scheduler and ESG state dicts, the Dspike temperature, the RNG
states of python / numpy / torch / CUDA of every rank, the training loader's generator state,
the number of completed epochs, the metrics history and the run's config.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch


def save(path: Path, state: dict) -> None:
    """Write state to path atomically: a temporary file in the same folder, then os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> dict:
    """A checkpoint written by save, read with torch.load(weights_only=True) onto the CPU."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)


def capture_rng() -> dict:
    """The RNG states of python, numpy (legacy global), torch CPU and every CUDA device."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    return {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict) -> None:
    """Inverse of capture_rng (CUDA states are restored when this machine has as many devices)."""
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
