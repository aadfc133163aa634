"""Test-wide set-up. The Triton interpreter must be switched on before anything imports triton,
so this runs first: on a machine without CUDA the kernels run interpreted on CPU tensors. A
Hypothesis profile named by HYPOTHESIS_PROFILE is loaded (tests/hypothesis_profiles.py)."""

import errno
import io
import os
import subprocess
from pathlib import Path

import pytest
import torch

from . import hypothesis_profiles

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

hypothesis_profiles.load()


@pytest.fixture
def tmpfs(tmp_path):
    """mount(options) -> a fresh folder with a tmpfs mounted on it with those mount options (e.g.
    "ro", "size=64k"), unmounted after the test. A real file system fault: the tests run as root,
    which ignores permission bits, so a read-only or full folder has to be a mount. Skips where
    mounting is not permitted."""
    mounted = []

    def mount(options: str) -> Path:
        folder = tmp_path / f"mnt{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> None:
    """Write into folder until its file system is full (ENOSPC)."""
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e


class _FillsUp(io.RawIOBase):
    """Writes through to file until `room` bytes are written, then fails every write with ENOSPC."""

    def __init__(self, file, room: int):
        self.file, self.room = file, room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.file.write(data)


def save_onto_a_filling_disk(room: int = 100):
    """A stand-in for torch.save: the real torch.save onto a file whose disk is full after `room`
    bytes, so the error is what torch really raises then (its zip writer: RuntimeError "unexpected
    pos", the ENOSPC OSError as its context). Saves to memory (io.BytesIO, as torch.distributed sends
    objects) are not affected."""
    real = torch.save

    def save(obj, f, *args, **kwargs):
        return real(obj, f if isinstance(f, io.BytesIO) else _FillsUp(f, room), *args, **kwargs)

    return save
