"""Host time of one `lif_scan(backend="triton")` call, with the Triton launches stubbed out.

What the host spends around the kernels, apart from the launch itself: the Python of lif_scan,
the custom ops' dispatch, autograd, allocations and the small torch ops (the membrane mean's
final sum). Each kernel's `run` (what `kernel[grid](...)` calls) is replaced by a stub that
records the time, so the four intervals are

  fwd_pre    lif_scan called               -> forward kernel launched
  fwd_post   forward kernel launched       -> lif_scan returned
  bwd_pre    torch.autograd.backward called -> backward kernel launched
  bwd_post   backward kernel launched      -> backward returned

(microseconds, median over `calls` training calls: forward with the state saved, then backward
with a spike gradient and the mean's gradient). Triton's own launch path (argument binding,
cache lookup, the driver call) is not in them. It runs on CPU tensors in a process without
TRITON_INTERPRET (so the kernels are Triton's JIT functions, never run) and with the device
check of `lif_scan` told that the interpreter is on, so that CPU tensors pass it; that check
still runs. On a GPU machine this is the host time of that machine's CPU.

    python -m bench.host_time              # prints one JSON object
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASES = ("fwd_pre", "fwd_post", "bwd_pre", "bwd_post")


def _measure(T: int, N: int, calls: int, warmup: int) -> dict:
    """In this process (TRITON_INTERPRET unset): the median of each phase in microseconds."""
    import torch

    from kernels import lif_scan
    from kernels.lif import fused_triton

    if fused_triton.interpreting():
        raise RuntimeError("host_time measures Triton's JIT path: run it without TRITON_INTERPRET=1")
    stamps: list[int] = []

    def stub(*args, grid, warmup, **kwargs):
        stamps.append(time.perf_counter_ns())

    for kernel in (fused_triton._lif_fwd_kernel, fused_triton._lif_bwd_kernel):
        kernel.run = stub
    fused_triton.interpreting = lambda: True  # CPU tensors pass lif_scan's device check

    x = (0.6 * torch.randn(T, N) + 0.3).requires_grad_()
    grad_spikes, grad_mean = torch.randn(T, N), torch.tensor(2.0)
    samples = {phase: [] for phase in PHASES}
    for i in range(warmup + calls):
        x.grad = None
        stamps.clear()
        t0 = time.perf_counter_ns()
        spikes, u_mean = lif_scan(x, backend="triton")
        t1 = time.perf_counter_ns()
        torch.autograd.backward([spikes, u_mean], [grad_spikes, grad_mean])
        t2 = time.perf_counter_ns()
        if len(stamps) != 2:
            raise RuntimeError(f"expected one forward and one backward launch, saw {len(stamps)}")
        if i >= warmup:
            for phase, ns in zip(PHASES, (stamps[0] - t0, t1 - stamps[0], stamps[1] - t1, t2 - stamps[1])):
                samples[phase].append(ns / 1e3)
    result = {f"{phase}_us": statistics.median(v) for phase, v in samples.items()}
    result["total_us"] = sum(result[f"{phase}_us"] for phase in PHASES)
    # before both launches and after the forward's
    result["issue_us"] = result["fwd_pre_us"] + result["fwd_post_us"] + result["bwd_pre_us"]
    result.update(T=T, N=N, calls=calls, torch=torch.__version__, threads=torch.get_num_threads())
    return result


def measure(T: int = 4, N: int = 4096, calls: int = 2000, warmup: int = 200, timeout: float = 120) -> dict:
    """Run `_measure` in a fresh process without TRITON_INTERPRET; returns its JSON result."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out = subprocess.run([sys.executable, "-m", "bench.host_time", "--in-process", "--T", str(T), "--N", str(N),
                          "--calls", str(calls), "--warmup", str(warmup)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"bench.host_time failed (exit {out.returncode}): {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.host_time", description=__doc__.split("\n")[0])
    parser.add_argument("--T", type=int, default=4)
    parser.add_argument("--N", type=int, default=4096)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--in-process", action="store_true", help="measure here (TRITON_INTERPRET must be unset)")
    args = parser.parse_args(argv)
    if min(args.T, args.N, args.calls) < 1 or args.warmup < 0:
        parser.error("--T, --N and --calls must be >= 1, --warmup >= 0")
    if args.in_process:
        print(json.dumps(_measure(args.T, args.N, args.calls, args.warmup)))
    else:
        print(json.dumps(measure(args.T, args.N, args.calls, args.warmup)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
