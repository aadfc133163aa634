PYTHON ?= python3

.PHONY: install install-test run test bench

install:
	$(PYTHON) -m pip install -e .

install-test:
	$(PYTHON) -m pip install -e '.[test]'

# The main job on an embedded default: no download, no GPU needed.
run: install
	$(PYTHON) -m kernels.demo

# The whole test suite on CPU (Triton kernels run under the interpreter).
test: install-test
	TRITON_INTERPRET=1 $(PYTHON) -m pytest -q tests bench --benchmark-disable

bench: install-test
	$(PYTHON) -m pytest bench/ --benchmark-only
