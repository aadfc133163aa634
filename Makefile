PYTHON ?= python3

.PHONY: install install-test run demo lint test gpu-compile-check bench gpu-rehearsal

install:
	$(PYTHON) -m pip install -e .

install-test:
	$(PYTHON) -m pip install -e '.[test]'

# The main job on an embedded default: the paper's Table 2 at smoke scale (no download, no GPU
# needed; the paper's recipe with --budget paper when a GPU and the datasets are there).
run: install
	$(PYTHON) reproduce/table2.py

# The kernel demo: every LIF backend timed and checked against the reference.
demo: install
	$(PYTHON) -m kernels.demo

# ruff over the whole tree with pyproject.toml's rules (bugs such as undefined or unused names,
# lines over 120 columns).
lint: install-test
	$(PYTHON) -m ruff check .

# The lint first, then the whole test suite on CPU (Triton kernels run under the interpreter).
test: install-test lint
	TRITON_INTERPRET=1 $(PYTHON) -m pytest -q tests bench --benchmark-disable

# Every Triton kernel variant compiled ahead of time for sm_90 (Hopper) with the installed Triton
# and with Triton 3.6.0 (a venv built once in .cache/): fails on a compile error, a spill, registers
# over budget or scalar time-loop access. No GPU needed (tools/compile_check.py).
gpu-compile-check: install
	env -u TRITON_INTERPRET $(PYTHON) tools/compile_check.py
	env -u TRITON_INTERPRET $(PYTHON) tools/compile_check.py --triton 3.6.0

bench: install-test
	$(PYTHON) -m pytest bench/ --benchmark-only

# The GPU run (bench/gpu_check.sh -> python -m bench.gpu_run) rehearsed on CPU: the same steps
# under the Triton interpreter with tiny sizes and one benchmark group stalled on purpose until
# its time cap kills it; fails when a step ends otherwise than the real run needs or the output
# folder holds what the GPU machine would not bring back (more than 8 files, a file over 16 MiB,
# over 64 MiB in all, more than 2 folders down, other characters in a name: docs/gpu-run.md).
gpu-rehearsal: install-test
	rm -rf .cache/gpu-rehearsal
	TRITON_INTERPRET=1 $(PYTHON) -m bench.gpu_run --rehearsal --out .cache/gpu-rehearsal
