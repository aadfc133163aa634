"""Atomic, integrity-checked, safely loadable checkpoints that hold everything an exact resume needs.

A checkpoint is a dict of tensors and plain Python values (so `torch.load(weights_only=True)`
reads it): model, optimizer, LR scheduler and ESG state dicts, the Dspike temperature, the RNG
states of python / numpy / torch / CUDA of every rank, the training loader's generator state,
the number of completed epochs, the metrics history and the run's config. `save` adds the
SHA-256 digest of all of it (key DIGEST) and `load` refuses a file whose contents no longer
match it, so a damaged checkpoint is never trained on.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import numpy as np
import torch

from .. import exits
from ..files import WriteError, partial_writes, write_atomic  # noqa: F401  (write_atomic, WriteError: re-exported)

DIGEST = "sha256"  # the key save() adds: hex SHA-256 of every other entry (see digest)


class CheckpointError(Exception):
    """A checkpoint cannot be used: unreadable, damaged, or not a snn.train checkpoint. The message
    names the file, what is wrong and what to do."""

    exit_code = exits.USAGE


def digest(state) -> str:
    """Hex SHA-256 over a nested structure of dicts, lists, tuples, tensors and plain values.

    Tensors contribute their dtype, shape and raw bytes; other values their type and repr (exact
    for ints, floats, strings, None); dict keys in their order. Entries under DIGEST are skipped."""
    h = hashlib.sha256()

    def walk(value) -> None:
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            h.update(f"tensor {t.dtype} {tuple(t.shape)};".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, dict):
            h.update(f"dict {len(value)};".encode())
            for k, v in value.items():
                if k != DIGEST:
                    walk(k)
                    walk(v)
        elif isinstance(value, (list, tuple)):
            h.update(f"{type(value).__name__} {len(value)};".encode())
            for v in value:
                walk(v)
        else:
            h.update(f"{type(value).__name__} {value!r};".encode())

    walk(state)
    return h.hexdigest()


def save(path: Path, state: dict) -> str:
    """Write state plus its digest (key DIGEST) to path atomically (see write_atomic); -> the digest."""
    stored = digest(state)
    write_atomic(path, lambda f: torch.save({**state, DIGEST: stored}, f))
    return stored


def remove_partial_writes(folder: Path, names) -> list[Path]:
    """Delete the temporary files `.<name>.*.tmp` that an interrupted write_atomic of one of names
    (file names in folder) left behind; -> the files removed."""
    stale = partial_writes(folder, names)
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def load(path: Path, keys: tuple[str, ...] = ()) -> dict:
    """A checkpoint written by save, read with torch.load(weights_only=True) onto the CPU, its digest
    verified; keys: entries it must hold.

    Raises CheckpointError (naming the file, the fault and what to do) when it cannot be read, is not
    a dict, lacks the digest or one of keys, or its contents do not match the digest."""
    path = Path(path)
    advice = f"delete {path} (or restore a good copy) and run again"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load reports a damaged file as EOFError, RuntimeError, UnpicklingError, ...
        reason = f"{type(e).__name__}: {e}".splitlines()[0]
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or damaged?): {reason}; "
                              f"{advice}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a checkpoint: it holds a {type(state).__name__}, not a dict; {advice}")
    stored = state.pop(DIGEST, None)
    if stored is None:
        raise CheckpointError(f"{path} has no integrity digest ({DIGEST!r}), so it was not written by "
                              f"snn.train.checkpoint.save; {advice}")
    if digest(state) != stored:
        raise CheckpointError(f"{path} is damaged: its contents do not match the SHA-256 digest stored when it was "
                              f"written; {advice}")
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(f"{path} is not a snn.train checkpoint: it lacks {missing}; {advice}")
    return state


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
