"""One process at a time in a run folder: an OS lock held for the run's whole life.

`hold(folder)` creates the folder, opens `<folder>/.lock` and takes an exclusive `fcntl.flock`
on it, then writes the holder's PID and host into it. The OS drops the lock when the process
ends, however it ends (kill -9 included), so a lock is never stale. A second process asking for
the same folder gets RunFolderBusy naming the holder, or, with wait=True, waits for it. Within
one process the lock is re-entrant (reproduce/ holds a row's folder around snn.train.run, which
takes it again).

flock is advisory and local: it keeps out processes that ask for it (every snn.train run does) on
one machine; on network file systems whose flock is not shared between hosts (some NFS set-ups)
it does not keep out a process on another host. A forked child (a data loader's worker) closes its
copy of the lock file at once, so the lock never outlives the process that took it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path
from typing import Callable, Optional

from .config import ConfigError

LOCK = ".lock"
_held: dict[Path, list] = {}  # resolved folder -> [open lock file, depth] of the locks this process holds


class RunFolderBusy(ConfigError):
    """Another process holds the run folder's lock."""


def holder(folder) -> str:
    """'PID <pid> on <host>' as written by the lock's holder, or 'another process' when unreadable."""
    try:
        text = (Path(folder) / LOCK).read_text().split()
    except OSError:
        text = []
    return f"PID {text[0]} on {text[1]}" if len(text) >= 2 else "another process"


def holds(folder) -> bool:
    """Whether this process holds folder's lock."""
    return Path(folder).resolve() in _held


def busy(folder) -> Optional[RunFolderBusy]:
    """RunFolderBusy naming the holder when another process holds folder's lock now, else None
    (no lock file, one nobody holds, or this process's own). Takes the lock shared for an instant."""
    if holds(folder):
        return None
    try:
        with open(Path(folder) / LOCK) as f:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _busy(folder)
    except OSError:  # no lock file (yet): nobody holds it
        pass
    return None


def _busy(folder) -> RunFolderBusy:
    return RunFolderBusy(f"{folder} is in use by {holder(folder)} (a training run holds its lock); wait for it to "
                         f"end or stop it, or choose another --out")


@contextlib.contextmanager
def hold(folder, wait: bool = False, on_wait: Optional[Callable[[str], None]] = None):
    """Hold folder's lock for the with-block (creating folder). wait: block until the holder ends,
    calling on_wait(holder) once first; else raise RunFolderBusy naming the holder's PID.
    Raises ConfigError when the folder or its lock file cannot be created."""
    folder = Path(folder)
    try:
        key = folder.resolve()
    except (OSError, RuntimeError) as e:  # pathlib reports a symbolic-link loop as RuntimeError
        raise ConfigError(f"cannot use the run folder {folder}: {e}; choose another --out") from None
    if key in _held:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    created = _missing(folder)
    f = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        f = open(folder / LOCK, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise _busy(folder) from None
            if on_wait is not None:
                on_wait(holder(folder))
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()} {socket.gethostname()}\n")
        f.flush()
    except BaseException as e:
        if f is not None:
            with contextlib.suppress(OSError):  # its buffered PID may not fit either (ENOSPC): closed anyway
                f.close()
        if not isinstance(e, OSError):  # RunFolderBusy, a signal: the folder is another run's or kept
            raise
        # read-only, full (ENOSPC), a lock the file system refuses (ENOLCK: NFS without a lock daemon)
        _remove_created(folder, created)
        raise ConfigError(f"cannot create the run folder {folder} and its lock {LOCK}: {e.strerror or e}; choose "
                          f"another --out") from None
    _held[key] = [f, 1]
    try:
        yield
    finally:
        del _held[key]
        f.close()  # releases the lock


def _close_in_child() -> None:
    """After a fork (a data loader's worker processes): the child closes its copies of the lock
    files. flock belongs to the open file, which a forked child shares, so without this a worker
    that outlives the run's release (persistent workers of a loader still referenced, workers still
    running after their parent was killed) would keep the folder locked. Only closed, never
    unlocked: an unlock would release the parent's lock too."""
    for f, _ in _held.values():
        with contextlib.suppress(OSError):
            f.close()
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)


def _missing(folder: Path) -> list[Path]:
    """folder and those of its parents that do not exist yet, deepest first."""
    return [p for p in (folder, *folder.parents) if not os.path.lexists(p)]


def _remove_created(folder: Path, created: list[Path]) -> None:
    """Undo what a failed hold() made: the lock file in a folder it created, then those folders
    (deepest first), so that a refused run leaves no run folder behind."""
    if not created:
        return
    with contextlib.suppress(OSError):
        (folder / LOCK).unlink(missing_ok=True)
    for p in created:
        with contextlib.suppress(OSError):
            p.rmdir()
