"""Atomic file writes, the one helper every writer of the project uses (run files, checkpoints,
results tables, caches, reproduce's records).

`write_atomic(path, data)` writes to a temporary file `.<name>.<random>.tmp` beside path, fsyncs it
and renames it onto path, so a reader (or a kill at any instant) sees the old file or the new one,
never a part. The file gets the mode an ordinary `open(path, "w")` would give (0666 minus the
umask: 0644 under the default umask 022), not mkstemp's owner-only 0600.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Union

from . import exits

Data = Union[bytes, str, Callable]  # bytes, text (UTF-8), or write(binary file) -> None


class WriteError(OSError):
    """Writing a file failed (full disk, no permission, ...); the file it would have replaced is
    untouched. The message names the file and the reason."""

    exit_code = exits.FAILED


def default_mode() -> int:
    """0o666 minus the process umask: the mode open() gives a new file."""
    mask = os.umask(0)  # the only way to read the umask; set it straight back
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path, data: Data, *, fsync: bool = True) -> None:
    """Write data (bytes, str as UTF-8, or a callable write(binary file)) to path atomically.

    The parent folder is created when missing. On any failure the temporary file is removed and
    path keeps its previous contents. Raises WriteError naming the file when the file system
    refuses (full disk, permissions), also when a callable's writer reports it as another exception
    with the OSError as its cause or context (torch.save's zip writer raises RuntimeError "unexpected
    pos" after a write failed with ENOSPC); other exceptions of a callable pass through unchanged.
    fsync: flush the data to the disk before the rename (what survives a power cut)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise WriteError(f"cannot write {path}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), default_mode())
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        refusal = _os_error_in_chain(e)
        if refusal is not None:
            raise WriteError(f"cannot write {path}: {refusal.strerror or refusal}; the previous {path.name} (if any) "
                             f"is unchanged") from e
        raise


def _os_error_in_chain(error: BaseException):
    """The first OSError (not a WriteError) among error and its causes / contexts, or None."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError) and not isinstance(error, WriteError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def partial_writes(folder, names) -> list[Path]:
    """The temporary files `.<name>.*.tmp` that an interrupted write_atomic of one of names (file
    names in folder) left behind, sorted."""
    return sorted(p for name in names for p in Path(folder).glob(f".{name}.*.tmp") if p.is_file())


class FolderError(OSError):
    """An output folder (--out, --runs, $OUT) cannot be created or used: it is a file or lies under
    one, sits on a read-only or full file system, loops through symbolic links, or holds a folder
    where a file of ours belongs. The message names the flag, the path and the reason; a setting
    the user fixes, so the exit code is exits.USAGE."""

    exit_code = exits.USAGE


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return str(error)  # pathlib reports a symbolic-link loop as RuntimeError before Python 3.13


def make_folder(folder, flag: str = "--out", files: tuple[str, ...] = (), keep: bool = True) -> Path:
    """Create folder (and its parents) and check that a file can be created in it and that none of
    files (names the caller writes there) is a folder; -> the folder.

    keep=False: only check; the folders this call created are removed again (for a folder that
    is written only if the run needs it). Raises FolderError naming flag, the path and the
    reason. The probe file is unlinked at once."""
    folder = Path(folder)
    created = []  # the folders this call makes, innermost last
    try:
        folder.resolve()  # a symbolic-link loop fails here rather than in the first write
        missing = folder
        while not missing.exists() and missing != missing.parent:
            created.insert(0, missing)
            missing = missing.parent
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except (OSError, RuntimeError) as e:
        raise FolderError(f"cannot use {flag} {folder}: {_reason(e)}; choose another {flag}") from None
    finally:
        if not keep:
            for made in reversed(created):
                if made.is_dir():
                    made.rmdir()
    for name in files:
        if (folder / name).is_dir():
            raise FolderError(f"cannot use {flag} {folder}: {folder / name} is a folder where a file belongs; "
                              f"remove it or choose another {flag}")
    return folder
