"""Builds the native kernel of the `cpu` LIF backend (kernels/lif/_lif_cpu.cpp); the rest of the
package metadata is in pyproject.toml.

The kernel is plain C++17 with the standard library only (no Python or torch headers; the
package calls it through ctypes), so the isolated build environment needs setuptools and a C++
compiler, nothing else. It is compiled without floating-point contraction (-ffp-contract=off):
the forward must round exactly like kernels/lif/naive.py. The extension is optional: where it
cannot be compiled the install still succeeds and lif_scan(backend='auto') uses the `torch`
backend.
"""

from setuptools import Extension, setup

FLAGS = ["-O3", "-g0", "-std=c++17", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-pthread"]

setup(ext_modules=[Extension("kernels.lif._lif_cpu", ["kernels/lif/_lif_cpu.cpp"], language="c++",
                             extra_compile_args=FLAGS, extra_link_args=["-pthread"], optional=True)])
