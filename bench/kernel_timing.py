"""Device time of one call, the way each device allows: the kernels alone on preallocated buffers
are timed beside `lif_scan` as a user calls it and a copy of the same bytes (test_kernel_time.py).

On CUDA: `triton.testing.do_bench` (CUDA events around each call, the L2 cache flushed by
writing a 256 MB buffer before each call, median). Elsewhere (the rehearsal on CPU, where the
Triton kernels run in the interpreter): the host clock around each call, a 32 MiB buffer written
before each call to flush the caches, median. Host time per call: the host clock around a call
after the device went idle, with no synchronization after it, so an asynchronous launch returns
as soon as the host is done (on CPU it is the whole call).
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Sequence

import torch

FLUSH_BYTES = 32 << 20


def sync(device: str | torch.device) -> None:
    """Wait for the work queued on device ("cuda", "cpu" or a torch.device), so that a host clock
    read next covers it: CUDA runs asynchronously, elsewhere a call returns when its work is done."""
    if getattr(device, "type", device) == "cuda":
        torch.cuda.synchronize()


def device_seconds(fn: Callable[[], object], device: str, grad_to_none: Sequence[torch.Tensor] = (),
                   rep_ms: float = 100, cpu_repeats: int = 5) -> float:
    """Median device time of fn() in seconds; tensors in grad_to_none get .grad = None before each
    call (untimed), so a timed backward does not accumulate into an old gradient."""
    if device == "cuda":
        import triton.testing

        return triton.testing.do_bench(fn, warmup=25, rep=rep_ms, grad_to_none=list(grad_to_none) or None,
                                       return_mode="median") * 1e-3
    flush = torch.empty(FLUSH_BYTES, dtype=torch.uint8)
    fn()
    times = []
    for _ in range(cpu_repeats):
        for t in grad_to_none:
            t.grad = None
        flush.fill_(len(times) & 0xFF)
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def host_seconds(fn: Callable[[], object], device: str, grad_to_none: Sequence[torch.Tensor] = (),
                 repeats: int = 50) -> float:
    """Median host time of one call of fn() in seconds: the device is idle before each call and
    nothing waits for it after, so on CUDA this is the host's share of the call alone."""
    fn()
    times = []
    for _ in range(repeats):
        for t in grad_to_none:
            t.grad = None
        sync(device)
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    sync(device)
    return statistics.median(times)


def bandwidth_fields(nbytes: float, kernel_s: float, e2e_s: float, copy_s: float) -> dict:
    """What the report shows for one case: nbytes the minimal bytes of the work (bench/roofline.py),
    the three times in seconds. A copy of the same bytes at copy_s sets the ceiling, so the
    fraction of the copy bandwidth reached is copy_s / time."""
    return {"kernel_s": kernel_s, "e2e_s": e2e_s, "copy_s": copy_s, "frac_copy_kernel": copy_s / kernel_s,
            "frac_copy_e2e": copy_s / e2e_s, "copy_gbps": nbytes / copy_s / 1e9, "kernel_gbps": nbytes / kernel_s / 1e9}
