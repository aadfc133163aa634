"""Build the native kernel of the `cpu` backend in place, where a C++ compiler exists.

    python -m bench.build_cpu

The GPU run's copy of the repository carries no kernels/lif/_lif_cpu*.so (build outputs are
git-ignored, and one built here is for another Python), so the run builds it: `python setup.py
build_ext --inplace` with this interpreter's setuptools (no build isolation: nothing can be
downloaded there). Prints one line and exits 0 when the kernel is importable afterwards, or when
no C++ compiler exists (then the cpu backend's test cases skip, with that reason); exit 1 when a
compiler exists and the build fails (its log is printed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "kernels" / "lif" / "_lif_cpu.cpp"
_PROBE = "from kernels.lif import fused_cpu; print(fused_cpu.VARIANT or '')"


def cxx_compiler() -> str | None:
    """$CXX, else c++, g++ or clang++ on PATH (what setuptools' build_ext would call)."""
    if os.environ.get("CXX"):
        return shutil.which(os.environ["CXX"].split()[0])
    return next((path for name in ("c++", "g++", "clang++") if (path := shutil.which(name))), None)


def loaded_variant() -> str:
    """The kernel variant a fresh process loads ('' when none is built for this Python)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=REPO, env=env, capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else ""


def built_after_source() -> bool:
    built = list(SOURCE.parent.glob("_lif_cpu*.so"))
    return bool(built) and min(p.stat().st_mtime for p in built) >= SOURCE.stat().st_mtime


def main() -> int:
    if built_after_source() and (variant := loaded_variant()):
        print(f"cpu kernel: already built ({variant})", flush=True)
        return 0
    compiler = cxx_compiler()
    if compiler is None:
        print("cpu kernel: skipped, no C++ compiler ($CXX, c++, g++ or clang++ on PATH): the cpu backend's test "
              "cases skip and its benchmarks are not run", flush=True)
        return 0
    out = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=REPO, capture_output=True,
                         text=True)
    variant = loaded_variant()
    if out.returncode == 0 and variant:
        print(f"cpu kernel: built with {compiler} ({variant})", flush=True)
        return 0
    print(out.stdout[-3000:] + out.stderr[-3000:])
    print(f"cpu kernel: build FAILED with {compiler} (exit {out.returncode}, variant loaded: {variant or 'none'})",
          flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
