"""Benchmark results written one by one, as they are measured.

pytest-benchmark writes its JSON only when pytest finishes: a run stopped by a time cap leaves
nothing. With `--bench-jsonl PATH` (bench/conftest.py) each benchmark's statistics and
`extra_info` are appended to PATH as one JSON line right after its test, flushed to disk, so a
cut run keeps every result measured before the cut; bench/report.py reads these files. Each
line also carries the versions and the device (`versions()`), so a line stands on its own.

Fault injection for the rehearsal of the GPU run (bench/gpu_run.py): with BENCH_STALL_AFTER=k
set, the process stops making progress (sleeps) after writing its k-th line, as a group that
runs past its time cap would, so that the cap, the partial file and the report built from it
are exercised on every CI run.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

STATS = ("min", "max", "mean", "median", "q1", "q3", "iqr", "rounds")
STALL_ENV = "BENCH_STALL_AFTER"
_written: dict[str, int] = {}


@functools.lru_cache(maxsize=None)
def versions() -> dict:
    """torch, triton, CUDA device and driver, spikingjelly, python, git commit (None when unknown)."""
    import importlib.metadata

    import torch

    info = {"torch": torch.__version__, "python": sys.version.split()[0], "cuda_device": None, "cuda_driver": None}
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name()
        try:
            info["cuda_driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                                 capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            pass
    try:
        info["spikingjelly"] = importlib.metadata.version("spikingjelly")
    except importlib.metadata.PackageNotFoundError:
        info["spikingjelly"] = None
    info["git_sha"] = os.environ.get("BENCH_GIT_SHA") or _git_sha()
    return info


def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def append(path: str | os.PathLike, name: str, nodeid: str, stats, extra_info: dict) -> None:
    """Append one benchmark's result to path as a JSON line and flush it to disk.

    stats: pytest-benchmark's Stats (times in seconds); extra_info: what bench/record.py stored.
    """
    row = {"name": name, "nodeid": nodeid, "stats": {k: getattr(stats, k) for k in STATS},
           "extra_info": extra_info, "machine_info": versions(),
           "datetime": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with open(path, "a") as f:
        f.write(json.dumps(row, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())
    key = os.fspath(path)
    _written[key] = _written.get(key, 0) + 1
    stall_after = os.environ.get(STALL_ENV)
    if stall_after and _written[key] >= int(stall_after):
        print(f"{STALL_ENV}={stall_after}: stalling after {_written[key]} results (rehearsal of a group cut by "
              f"its time cap)", flush=True)
        while True:
            time.sleep(60)
