#!/usr/bin/env bash
# The one prepared GPU run (H200 image: Python 3.12, torch 2.11, triton 3.6; no network): the
# kernel tests on CUDA with the real compiler, the benchmark groups (results saved test by test),
# SpikingJelly 2.0's own implementations and the report, all into $OUT (or ./gpu-check-out),
# within 8 minutes. The steps, their caps and what lands in $OUT: bench/gpu_run.py and
# docs/gpu-run.md. `make gpu-rehearsal` runs the same steps on CPU in CI.
#   bash bench/gpu_check.sh      # wheels for spikingjelly/loguru may travel in .whl/
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-check-out}"
mkdir -p "$OUT"
unset TRITON_INTERPRET
export PYTHONUNBUFFERED=1
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
if ls .whl/*.whl >/dev/null 2>&1; then
    # no build isolation, no index: the wheels alone, beside the image's packages
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="$PYTHONPATH:/tmp/site" \
        || echo "gpu_check: installing .whl/*.whl failed; SpikingJelly's rows will be skipped" | tee -a "$OUT/run.log"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee -a "$OUT/run.log"
exec python3 -m bench.gpu_run --out "$OUT" "$@"
