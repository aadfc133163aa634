#!/usr/bin/env bash
# The one prepared GPU run (issue 7): kernel tests on CUDA with the real compiler, the benchmark
# suite, and the report, written to $OUT (or ./gpu-check-out). Budget: about 8 minutes on an H200
# (CAP seconds per benchmark group). $OUT gets 8 files, the device tool's limit: run.log, four
# bench-*.json, and the report's csv, md and png.
#   bash bench/gpu_check.sh            # wheels for spikingjelly/loguru/tabulate may travel in .whl/
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-check-out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="/tmp/site:$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
else
    export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
fi
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, 'cuda', torch.version.cuda)"
    git rev-parse HEAD 2>/dev/null || echo "no git sha"
} | tee "$OUT/run.log"

# 1. correctness on CUDA (bf16/fp16, > 2^31 elements, no recompiles)
timeout 240 python3 -m pytest -q -x tests/kernels 2>&1 | tee -a "$OUT/run.log" | tail -5
# 2. benchmarks (CUDA runs the full shape set), one JSON per group under its own time cap so that
#    a slow group cannot take the others' results with it
for group in lif_scan memory training_step esg_vs_dspike; do
    timeout "${CAP:-100}" python3 -m pytest -q "bench/test_${group}.py" --benchmark-only \
        --benchmark-json "$OUT/bench-${group}.json" 2>&1 | tee -a "$OUT/run.log" | tail -2
done
# 3. report: CSV, markdown, plot
stem="$(python3 -c "import torch; print(torch.cuda.get_device_name().replace(' ', '_'))")-$(date +%Y-%m-%d)"
python3 bench/report.py "$OUT"/bench-*.json --out "$OUT" --name "$stem" > /dev/null; ls -la "$OUT"
