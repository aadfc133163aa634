PYTHON ?= python3

.PHONY: install install-test run demo test bench

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

# The whole test suite on CPU (Triton kernels run under the interpreter).
test: install-test
	TRITON_INTERPRET=1 $(PYTHON) -m pytest -q tests bench --benchmark-disable

bench: install-test
	$(PYTHON) -m pytest bench/ --benchmark-only
