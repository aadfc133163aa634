"""The run folder: what it holds, how a run takes it, checks it and resumes from it.

A run folder (--out) holds config.json (the settings), last.pt (the checkpoint after the last
finished epoch, or mid-epoch after a signal: key "partial"), best.pt (the checkpoint of the best
validation epoch, when there is a validation split), metrics.csv / metrics.jsonl (one row per
epoch), spike_rates.csv (per epoch and LIF layer) and, after the last epoch, results.json and
spike_rates.png. Guarantees:
- every file is written atomically (checkpoint.write_atomic): a kill leaves the old file or the
  new one, never a torn one; the temporary files of interrupted writes are removed on open;
- one process at a time (runlock): a second run or --resume of a live run is refused;
- a folder holding last.pt is only continued with --resume, and only with the settings it was
  trained with (Config.identity); the other settings are refused naming the fields that differ;
- last.pt records best.pt's epoch and weight digest; on resume best.pt is checked against it,
  and rebuilt from last.pt when a kill fell between the two writes of the same epoch;
- the folder's path and file names fit the file system's NAME_MAX / PATH_MAX (checked before
  anything is built or written).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from torch import nn

from .. import exits
from . import checkpoint, metrics, runlock
from .config import Config, ConfigError
from .distributed import Context
from .state import CHECKPOINT_KEYS, PartialEpoch, Training

RUN_FILES = ("config.json", "last.pt", "best.pt", "metrics.csv", "metrics.jsonl", "results.json",
             "spike_rates.csv", "spike_rates.png")  # written atomically

def check_resumable(saved: dict, cfg: Config, path: Path) -> None:
    """Refuse to resume a checkpoint trained with other settings, naming the fields that differ.

    A run trained for other epochs cannot be resumed either: its cosine LR period and ESG's N are
    its epochs, so the message points to --init-from, which starts a new run from its weights."""
    mine = cfg.identity()
    differ = [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in mine.items() if not _same(k, saved.get(k, None), v)]
    if differ:
        further = (f". To train it further, start a new run from its weights: --init-from {path} --epochs N "
                   f"--out NEW_FOLDER" if any(d.startswith("epochs:") for d in differ) else "")
        raise ConfigError(f"cannot resume {path}: it was trained with other settings ({'; '.join(differ)}); "
                          f"use the same settings or another --out{further}")


def _same(key: str, saved, mine) -> bool:
    """Whether a setting recorded in a checkpoint equals this run's. --init-from is a path: the same
    file named relative or absolute (from the same working folder) is the same setting."""
    if key == "init_from" and saved is not None and mine is not None:
        return os.path.abspath(saved) == os.path.abspath(mine)
    return saved == mine


def init_weights(model: nn.Module, path: Path) -> None:
    """Load the model weights of the snn.train checkpoint at path into model (--init-from).

    Raises checkpoint.CheckpointError for a missing, unreadable or damaged file, ConfigError when
    its weights do not fit this model (naming the missing, unexpected or mis-shaped entries)."""
    if not path.is_file():
        raise ConfigError(f"--init-from {path}: no such file; give the last.pt or best.pt of an earlier run")
    weights = checkpoint.load(path, keys=("model",))["model"]
    mine = model.state_dict()
    missing, unexpected = sorted(set(mine) - set(weights)), sorted(set(weights) - set(mine))
    shapes = [f"{k} {tuple(weights[k].shape)} vs {tuple(mine[k].shape)}" for k in sorted(set(mine) & set(weights))
              if weights[k].shape != mine[k].shape]
    if missing or unexpected or shapes:
        parts = [f"{what}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}" for what, keys in
                 (("missing", missing), ("unexpected", unexpected), ("other shapes (checkpoint vs model)", shapes))
                 if keys]
        raise ConfigError(f"--init-from {path}: its weights do not fit this model ({'; '.join(parts)}); use the "
                          f"checkpoint's --model, --width, --norm, --bias and dataset")
    model.load_state_dict(weights)


class RunExists(FileExistsError):
    """The run folder holds a run (last.pt) and the settings do not resume it."""

    exit_code = exits.USAGE


@dataclass
class Resumed:
    """What resume restored besides the Training: the history, the best.pt record and an
    interrupted epoch's progress."""

    history: list[dict] = field(default_factory=list)
    best: Optional[dict] = None  # {"epoch", "model_digest"} of best.pt, see state.best_record
    partial: Optional[PartialEpoch] = None


def check_best(state: dict, path: Path, ctx: Context) -> None:
    """Check that best.pt (beside path) holds the weights last.pt's record names; rebuild it from
    last.pt when the record names last.pt's own epoch (a kill fell between the two writes), else
    raise CheckpointError saying what is wrong. Only rank 0 reads or writes it."""
    record = state.get("best")
    if record is None or not ctx.main:
        return
    best_path = path.parent / "best.pt"
    problem = None
    if not best_path.exists():
        problem = "is missing"
    else:
        try:
            best = checkpoint.load(best_path, keys=("epoch", "model"))
        except checkpoint.CheckpointError as e:
            problem = f"cannot be used ({e})"
        else:
            if best["epoch"] != record["epoch"] or checkpoint.digest(best["model"]) != record["model_digest"]:
                problem = (f"holds epoch {best['epoch']} with other weights than this run's best epoch "
                           f"{record['epoch']} (replaced or from another run)")
    if problem is None:
        return
    if record["epoch"] == state["epoch"] and state.get("partial") is None:  # due right after last.pt: same weights
        checkpoint.save(best_path, state)
        log(ctx, f"rebuilt {best_path} from {path} (epoch {state['epoch']}): it {problem}")
        return
    raise checkpoint.CheckpointError(
        f"{best_path} {problem}: {path} records the best validation epoch {record['epoch']} there, and its weights "
        f"cannot be rebuilt; restore the original {best_path.name}, or start a new run in another --out")


def resume(training: Training, cfg: Config, ctx: Context, path: Path) -> Resumed:
    """Load path (when it exists) into training and the RNGs, after checking best.pt against it.

    Raises checkpoint.CheckpointError for a file that is unreadable, damaged or not a checkpoint,
    or a best.pt that is not the one last.pt records (see check_best)."""
    if not path.exists():
        log(ctx, f"nothing to resume in {path.parent} (no {path.name}); starting from scratch")
        return Resumed()
    state = checkpoint.load(path, keys=CHECKPOINT_KEYS)
    check_resumable(state["config"], cfg, path)
    check_best(state, path, ctx)
    training.load(state)
    rng = state["rng"]
    if len(rng) != ctx.world:
        log(ctx, f"note: {path} was written by {len(rng)} processes, this run has {ctx.world}; the data order "
                  f"and random streams differ from an uninterrupted run")
    checkpoint.restore_rng(rng[ctx.rank] if len(rng) == ctx.world else rng[0])
    partial = None if state.get("partial") is None else PartialEpoch.from_state(state["partial"])
    if partial is not None and training.selector is not None:
        training.selector.cost = partial.dspike
    where = f"epoch {state['epoch']}/{cfg.epochs}" if partial is None else \
        f"step {partial.step}/{partial.steps} of epoch {state['epoch'] + 1}/{cfg.epochs}"
    log(ctx, f"resumed {path} after {where}")
    return Resumed(list(state["history"]), state.get("best"), partial)


LONGEST_RUN_FILE = len(".spike_rates.csv.12345678.tmp")  # a temporary file of write_atomic, the longest name


def check_path_length(out: Path, existing: Path) -> None:
    """ConfigError when a folder name of out, or the path of a run file in it, is longer than the
    file system takes (NAME_MAX, PATH_MAX of the deepest existing folder)."""
    name_max, path_max = (os.pathconf(existing, k) for k in ("PC_NAME_MAX", "PC_PATH_MAX"))
    for part in out.absolute().parts:
        if len(os.fsencode(part)) > name_max:
            raise ConfigError(f"cannot use --out {out}: the name {part[:40]}... has {len(os.fsencode(part))} bytes, "
                              f"more than the {name_max} this file system allows; choose a shorter --out")
    longest = len(os.fsencode(out.absolute())) + 1 + LONGEST_RUN_FILE
    if longest >= path_max:
        raise ConfigError(f"cannot use --out {out}: its files' paths would have {longest} bytes, more than the "
                          f"{path_max - 1} this system allows; choose a shorter --out")


def _exists(path: Path) -> bool:
    """path.exists(), False for a name the file system cannot even look up (too long)."""
    try:
        return path.exists()
    except OSError:
        return False


def _refuse_a_run_without_resume(out: Path, cfg: Config) -> None:
    """RunExists when out holds a run (last.pt) and cfg does not resume it; RunFolderBusy naming the
    holder instead when another process trains that run now (--resume would be refused too)."""
    if (out / "last.pt").exists() and not cfg.resume:
        in_use = runlock.busy(out)
        if in_use is not None:
            raise in_use
        raise RunExists(f"{out / 'last.pt'} exists: pass --resume to continue that run, or choose another --out")


def check_out(out: Path, cfg: Config) -> None:
    """Before anything is built: refuse an --out that holds a run without --resume, or that cannot
    be a folder (ConfigError; RunExists for the former)."""
    try:
        out.resolve()
    except (OSError, RuntimeError) as e:  # a symbolic-link loop (RuntimeError before Python 3.13)
        raise ConfigError(f"cannot use --out {out}: {e}; choose another --out") from None
    existing = next(p for p in (out, *out.parents) if _exists(p))
    check_path_length(out, existing)
    _refuse_a_run_without_resume(out, cfg)
    if not existing.is_dir():
        raise ConfigError(f"cannot use --out {out}: {existing} is a file, not a folder; choose another --out")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot use --out {out}: {existing} is not writable; choose another --out")


def open_out(out: Path, cfg: Config, history: list[dict]) -> None:
    """In the run folder, whose lock this process holds: remove the temporary files of writes a
    kill interrupted, write config.json, and rebuild the metrics files from the checkpoint's history."""
    for stale in checkpoint.remove_partial_writes(out, RUN_FILES):
        print(f"removed {stale}, left by an interrupted write", flush=True)
    config_text = json.dumps(cfg.to_dict(), indent=2) + "\n"
    checkpoint.write_atomic(out / "config.json", lambda f: f.write(config_text.encode()))
    if history:
        metrics.write(out, history)


def take_folder(held: contextlib.ExitStack, out: Path, cfg: Config) -> None:
    """Hold out's lock until the run ends (created now, after every setting was checked), and check
    again, under the lock, that it holds no run unless resuming (another process may have
    started one since check_out)."""
    held.enter_context(runlock.hold(out))
    _refuse_a_run_without_resume(out, cfg)


def log(ctx: Context, message: str) -> None:
    """Print message on rank 0 only."""
    if ctx.main:
        print(message, flush=True)
