"""Builds the native kernel of the `cpu` LIF backend (kernels/lif/_lif_cpu.cpp); the rest of the
package metadata is in pyproject.toml.

The kernel is plain C++17 with the standard library only (no Python or torch headers; the
package calls it through ctypes), so the isolated build environment needs setuptools and a C++
compiler, nothing else. It is built for the baseline ISA and, on x86-64, once more for AVX2
(chosen at run time). It is compiled without floating-point contraction (-ffp-contract=off):
the forward must round exactly like kernels/lif/naive.py. The extension is optional: where it
cannot be compiled the install still succeeds and lif_scan(backend='auto') uses the `torch`
backend.
"""

import platform

from setuptools import Extension, setup

FLAGS = ["-O3", "-g0", "-std=c++17", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-pthread"]


def kernel(name: str, extra_flags: list[str]) -> Extension:
    return Extension(f"kernels.lif.{name}", ["kernels/lif/_lif_cpu.cpp"], language="c++",
                     extra_compile_args=FLAGS + extra_flags, extra_link_args=["-pthread"], optional=True)


# The baseline build runs on any processor; on x86-64 a second build for AVX2 (8-wide vectors)
# is picked at run time where the processor has it (kernels/lif/fused_cpu.py, VARIANTS).
extensions = [kernel("_lif_cpu", [])]
if platform.machine().lower() in ("x86_64", "amd64"):
    extensions.append(kernel("_lif_cpu_avx2", ["-mavx2", "-mfma"]))

setup(ext_modules=extensions)
