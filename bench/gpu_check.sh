#!/usr/bin/env bash
# The one prepared GPU run: the kernel tests on CUDA with the real compiler, the benchmark groups,
# SpikingJelly 2.0's own CUDA implementations timed one by one, and the report, all into $OUT
# (or ./gpu-check-out). It fits 8 minutes on an H200; each step has its own cap (seconds):
#   tests 120, benchmark groups 100 + 30 + 50 + 40, SpikingJelly 90 (25 per setting), report.
# $OUT holds at most 8 files (the device tool's limit): run.log, bench-json.tar.gz (the groups'
# raw pytest-benchmark JSON), sj-implementations.json, and the report's csv, md and png.
#   bash bench/gpu_check.sh      # wheels for spikingjelly/loguru/tabulate may travel in .whl/
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-check-out}"
mkdir -p "$OUT"
RAW="$(mktemp -d)"
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
} 2>&1 | tee "$OUT/run.log"

# 1. correctness on CUDA with the real compiler (bf16/fp16, > 2^31 elements, no recompiles)
echo "== tests/kernels" | tee -a "$OUT/run.log"
timeout 120 python3 -m pytest -q -x tests/kernels 2>&1 | tee -a "$OUT/run.log" | tail -5
# 2. benchmarks (CUDA runs the full shape set), one JSON per group under its own cap so that a
#    slow group cannot take the others' results with it
for group_cap in lif_scan:100 memory:30 training_step:50 esg_vs_dspike:40; do
    group="${group_cap%%:*}"
    echo "== bench/test_${group}.py (cap ${group_cap##*:} s)" | tee -a "$OUT/run.log"
    timeout "${group_cap##*:}" python3 -m pytest -q "bench/test_${group}.py" --benchmark-only \
        --benchmark-json "$RAW/bench-${group}.json" 2>&1 | tee -a "$OUT/run.log" | tail -2
done
tar -czf "$OUT/bench-json.tar.gz" -C "$RAW" . 2>&1 | tee -a "$OUT/run.log"
# 3. SpikingJelly's implementations (auto, native cuda, triton, torch), each in its own process
echo "== SpikingJelly implementations" | tee -a "$OUT/run.log"
timeout 90 python3 bench/sj_implementations.py --out "$OUT/sj-implementations.json" --timeout 25 2>&1 | tee -a "$OUT/run.log"
# 4. report: CSV, markdown, plot
stem="$(python3 -c "import torch; print(torch.cuda.get_device_name().replace(' ', '_'))")-$(date +%Y-%m-%d)"
python3 bench/report.py "$RAW"/bench-*.json --out "$OUT" --name "$stem" 2>&1 | tail -3 | tee -a "$OUT/run.log"
ls -la "$OUT" | tee -a "$OUT/run.log"
