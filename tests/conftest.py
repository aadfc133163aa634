"""Test-wide set-up. The Triton interpreter must be switched on before anything imports triton,
so this runs first: on a machine without CUDA the kernels run interpreted on CPU tensors. A
Hypothesis profile named by HYPOTHESIS_PROFILE is loaded (tests/hypothesis_profiles.py)."""

import errno
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
