"""Preflight of the GPU run: can this machine build and launch a Triton kernel and run torch on
its device? About ten seconds; one line of verdict.

    python -m bench.preflight --device cuda --json preflight.json

Checks, in order, stopping at the first failure with a one-line reason (exit 1):
  1. on CUDA, what Triton needs to build its launcher the first time a kernel runs: a C compiler
     (CC, or cc / gcc / clang on PATH) and Python.h of this interpreter;
  2. torch sees the device, and one torch op there gives the right sum;
  3. one tiny Triton kernel compiles (or, under TRITON_INTERPRET=1, is interpreted), runs on the
     device and writes the right values.
Writes what it found (versions, device name, compiler, Python.h, seconds) to --json, also on
failure, and prints `preflight ok ...` or `preflight FAILED: <reason>`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import sysconfig
import time
from pathlib import Path


def c_compiler() -> str | None:
    """The C compiler Triton would use to build its launcher: $CC, else cc, gcc or clang on PATH."""
    if os.environ.get("CC"):
        return shutil.which(os.environ["CC"])
    return next((path for name in ("cc", "gcc", "clang") if (path := shutil.which(name))), None)


def python_header() -> str | None:
    path = Path(sysconfig.get_paths()["include"]) / "Python.h"
    return str(path) if path.exists() else None


def _checks(device: str, info: dict) -> None:
    """Raise RuntimeError with the reason at the first check that fails; fill info on the way."""
    info["c_compiler"], info["python_h"] = c_compiler(), python_header()
    interpreting = os.environ.get("TRITON_INTERPRET", "0") == "1"
    info["triton_interpret"] = interpreting
    if device == "cuda" and interpreting:
        raise RuntimeError("TRITON_INTERPRET=1 is set: the GPU run compiles real kernels (unset it)")
    if device == "cuda" and info["c_compiler"] is None:
        raise RuntimeError("no C compiler ($CC, cc, gcc or clang on PATH): Triton cannot build its kernel launcher")
    if device == "cuda" and info["python_h"] is None:
        raise RuntimeError(f"no Python.h in {sysconfig.get_paths()['include']}: Triton cannot build its kernel "
                           f"launcher (install this Python's development headers)")
    import torch

    from .kernel_timing import sync

    info["torch"] = torch.__version__
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"torch {torch.__version__} sees no CUDA device "
                               f"(torch.version.cuda = {torch.version.cuda})")
        info["device_name"], info["cuda"] = torch.cuda.get_device_name(), torch.version.cuda
    else:
        info["device_name"] = "cpu"
    n = 1 << 20
    total = (torch.arange(n, device=device, dtype=torch.float64) * 2).sum().item()
    if total != n * (n - 1):
        raise RuntimeError(f"torch on {device}: 2 * sum(0..{n - 1}) gave {total}, expected {n * (n - 1)}")
    import triton
    import triton.language as tl

    info["triton"] = triton.__version__

    @triton.jit
    def axpy(x_ptr, y_ptr, n, a, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        tl.store(y_ptr + offs, a * tl.load(x_ptr + offs, mask=mask) + 1.0, mask=mask)

    x = torch.arange(1000, device=device, dtype=torch.float32)
    y = torch.full_like(x, float("nan"))
    start = time.perf_counter()
    try:
        axpy[(4,)](x, y, x.numel(), 3.0, BLOCK=256)
        sync(device)
    except Exception as error:  # a build or launch failure is the verdict, in one line
        lines = str(error).strip().splitlines()
        raise RuntimeError(f"Triton kernel failed to build or run: {type(error).__name__}: "
                           f"{lines[-1] if lines else ''}"[:400]) from error
    info["triton_first_kernel_s"] = time.perf_counter() - start
    if not torch.equal(y.cpu(), 3.0 * x.cpu() + 1.0):
        raise RuntimeError("Triton kernel ran but wrote wrong values (3 x + 1 expected)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.preflight", description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), required=True, help="cpu: the rehearsal (interpreter)")
    parser.add_argument("--json", type=Path, help="write what was found here")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    info: dict = {"device": args.device, "python": sys.version.split()[0]}
    try:
        _checks(args.device, info)
        verdict, code = "ok", 0
    except Exception as error:  # every failure ends in the one-line verdict below
        verdict, code = f"FAILED: {str(error).splitlines()[0] if str(error) else type(error).__name__}", 1
    info["seconds"], info["verdict"] = time.perf_counter() - start, verdict
    if args.json:
        args.json.write_text(json.dumps(info, indent=1))
    details = ", ".join(f"{k} {info[k]}" for k in ("device_name", "torch", "triton", "c_compiler") if k in info)
    print(f"preflight {verdict} ({info['seconds']:.1f} s; {details})" if code == 0 else f"preflight {verdict}",
          flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
