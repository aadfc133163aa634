"""SpikingJelly 2.0's own CUDA implementations of the LIF scan, each timed on its own.

SpikingJelly chooses between a native CUDA kernel ("cuda": present only when built from source
with SJ_BUILD_NATIVE_CUDA=1 and nvcc; the PyPI wheel has none), Triton ("triton") and a Torch
reference ("torch") by device and execution profile, unless the environment variable
SJ_LIF_CUDA_IMPLEMENTATION forces one (read when spikingjelly is imported). So each setting
(auto, cuda, triton, torch) runs in its own process, which records what SpikingJelly reports
(`functional.neuron_implementation("lif", device)`), the selection lines of its log (a per-call
fallback to the reference is logged there), a check against our `naive` reference, and the
forward+backward time of the IM job of bench/lif_providers.py (`triton.testing.do_bench`,
median and 20/80 % quantiles in ms).

    python bench/sj_implementations.py --out sj-implementations.json   # needs CUDA and spikingjelly
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from snn.exits import one_line_errors
from snn.files import write_atomic  # the repository is on PYTHONPATH (bench/gpu_check.sh) or installed

SETTINGS = ("auto", "cuda", "triton", "torch")
SHAPES = ((4, 1 << 20, "float32"), (4, 1 << 20, "bfloat16"), (4, 1 << 22, "float32"),
          (10, 128 * 16 * 32 * 32, "float32"))  # (T, N, dtype)
REPO = Path(__file__).resolve().parents[1]


def measure(setting: str) -> dict:
    """In this process (SJ_LIF_CUDA_IMPLEMENTATION already set): the selection and one row per shape."""
    import torch
    import triton
    from spikingjelly.activation_based import functional
    from spikingjelly.logger import logger

    from bench.lif_providers import PROVIDERS, check_against_naive, run_step
    from kernels.lif.params import LIFParams

    log: list[str] = []
    logger.add(lambda message: log.append(str(message).strip()), level="INFO",
               filter=lambda record: "implementation" in record["message"] or "unavailable" in record["message"])
    device = torch.device("cuda")
    result = {"setting": setting, "device": torch.cuda.get_device_name(), "rows": []}
    try:
        result["selected"] = functional.neuron_implementation("lif", device)
    except RuntimeError as error:  # a forced implementation that is not there
        result["error"] = str(error)
        return result
    p = LIFParams(vth=0.5, decay=0.25, surrogate="tanh", alpha=1.0)
    provider = PROVIDERS["spikingjelly"]
    for T, N, dtype_name in SHAPES:
        dtype = getattr(torch, dtype_name)
        g = torch.Generator(device="cuda").manual_seed(0)
        x = (0.6 * torch.randn(T, N, generator=g, device="cuda") + 0.3).to(dtype)
        gs = (1e-3 * torch.randn(T, N, generator=g, device="cuda")).to(dtype)
        gm = torch.tensor(2.0, device="cuda")
        row = {"T": T, "N": N, "dtype": dtype_name}
        try:
            check_against_naive(provider, x, p, gs)
            row["ms_median"], row["ms_q20"], row["ms_q80"] = triton.testing.do_bench(
                lambda x=x, gs=gs: run_step(provider, x, p, gs, gm), warmup=25, rep=100, quantiles=[0.5, 0.2, 0.8])
        except (AssertionError, RuntimeError) as error:
            row["error"] = str(error).splitlines()[0]
        result["rows"].append(row)
        del x, gs
        torch.cuda.empty_cache()
    result["log"] = sorted(set(log))
    return result


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the results")
    parser.add_argument("--timeout", type=float, default=45.0, help="seconds per setting")
    parser.add_argument("--one", choices=SETTINGS, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    if args.one:
        write_atomic(args.out, json.dumps(measure(args.one)))
        return 0
    results = []
    for setting in SETTINGS:
        env = dict(os.environ, SJ_LIF_CUDA_IMPLEMENTATION=setting)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        with tempfile.NamedTemporaryFile(suffix=".json") as child_out:
            try:
                done = subprocess.run([sys.executable, __file__, "--out", child_out.name, "--one", setting], env=env,
                                      cwd=REPO, capture_output=True, text=True, timeout=args.timeout)
                failed = done.returncode != 0
                results.append({"setting": setting, "error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
                               if failed else json.loads(Path(child_out.name).read_text()))
            except subprocess.TimeoutExpired:
                results.append({"setting": setting, "error": f"timed out after {args.timeout:.0f} s"})
        write_atomic(args.out, json.dumps(results, indent=1))  # after each setting: a cut run keeps the others
    for r in results:
        chosen = r.get("selected", {}).get("implementation", "-")
        print(f"SJ_LIF_CUDA_IMPLEMENTATION={r['setting']}: implementation={chosen} {r.get('error', '')}")
        for row in r.get("rows", []):
            timing = f"{row['ms_median']:.3f} ms" if "ms_median" in row else row.get("error", "")
            print(f"    T={row['T']} N={row['N']} {row['dtype']}: {timing}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
