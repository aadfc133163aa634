"""Group: the Triton kernels alone beside `lif_scan` as a user calls it, and the host time.

For each case and mode (forward, backward, forward+backward; training state saved in fp32):
  kernel_s     the forward and/or backward kernel alone, launched on preallocated buffers
               (`fused_triton.launch_fwd`, `fused_triton.bwd`): no allocation, no Python of lif_scan
  e2e_s        lif_scan(backend="triton") and/or its backward as a user calls them
  copy_s       a device-to-device copy of the same number of bytes (lif_min_bytes: half read,
               half written), timed the same way in the same run
  frac_copy_kernel / frac_copy_e2e  copy_s / kernel_s and copy_s / e2e_s: the fraction of the
               copy bandwidth each reaches on the minimal-bytes model (bench/roofline.py)
  host_us      host time of one such call (bench/kernel_timing.host_seconds)
All device times: bench/kernel_timing.device_seconds (CUDA events, L2 flushed, median). The
benchmark's own timer runs the kernel alone (synchronized) for pytest-benchmark's statistics.

`test_host_time_stubbed`: lif_scan's host time around the launches with the launches stubbed
out (bench/host_time.py), on this machine's CPU.

CUDA: T=4, N=2^22 in fp32 and bf16, and T=10, N=2^23 fp32. --bench-tiny: T=2, N=1024 fp32 (on
CPU under TRITON_INTERPRET=1 for the rehearsal). Elsewhere the group is skipped (the kernels
are timed on CUDA only).
"""

from __future__ import annotations

import pytest
import torch

from kernels import lif_scan
from kernels.lif.layout import cdiv
from kernels.lif.params import LIFParams

from . import lif_providers
from .kernel_timing import bandwidth_fields, device_seconds, host_seconds, sync
from .record import record
from .roofline import lif_min_bytes
from .shapes import tiny

PARAMS = LIFParams(vth=0.5, decay=0.25, surrogate="tanh", alpha=1.0)
CUDA_CASES = [(4, 1 << 22, torch.float32), (4, 1 << 22, torch.bfloat16), (10, 1 << 23, torch.float32)]
TINY_CASES = [(2, 1024, torch.float32)]
MODES = ("fwd", "bwd", "fwdbwd")


def pytest_generate_tests(metafunc):
    if "kcase" in metafunc.fixturenames:
        cases = TINY_CASES if tiny() else CUDA_CASES
        metafunc.parametrize("kcase", cases, ids=[f"T{T}-N{N}-{str(d).replace('torch.', '')}" for T, N, d in cases])


def _skip_unless_timed(device):
    reason = lif_providers.PROVIDERS["triton"].unavailable(device, torch.float32)
    if reason:
        pytest.skip(reason)


class _Buffers:
    """Everything the kernels read and write, allocated once: x, upstream gradients, spikes,
    the fp32 membrane, the membrane partial sums, dx."""

    def __init__(self, T, N, dtype, device):
        from kernels.lif import fused_triton

        g = torch.Generator(device=device).manual_seed(0)
        self.x = (0.6 * torch.randn(T, N, generator=g, device=device) + 0.3).to(dtype)
        self.gs = (1e-3 * torch.randn(T, N, generator=g, device=device)).to(dtype)
        self.gm = torch.tensor(2.0, device=device)
        self.out = torch.empty_like(self.x)
        self.u = torch.empty((T, N), dtype=torch.float32, device=device)
        self.partials = torch.empty(cdiv(N, fused_triton.BLOCK), dtype=torch.float32, device=device)
        self.dx = torch.empty_like(self.x)
        self.T, self.N = T, N

    def fwd_kernel(self):
        from kernels.lif import fused_triton

        fused_triton.launch_fwd(self.x, self.out, self.u, self.out, self.partials, PARAMS, "exact")

    def bwd_kernel(self):
        from kernels.lif import fused_triton

        fused_triton.bwd(self.gs, self.gm, (self.u,), PARAMS, self.dx)


def _check_kernels_against_lif_scan(b: _Buffers) -> None:
    """The kernels alone on the buffers compute what lif_scan computes (spikes, u_mean, dx)."""
    x = b.x.detach().clone().requires_grad_()
    spikes, u_mean = lif_scan(x, backend="triton")
    torch.autograd.backward([spikes, u_mean], [b.gs, b.gm])
    b.fwd_kernel()
    b.bwd_kernel()
    assert torch.equal(b.out, spikes), "forward kernel alone: spikes differ from lif_scan's"
    assert torch.equal(b.partials.sum() / (b.T * b.N), u_mean), "forward kernel alone: u_mean differs"
    assert torch.equal(b.dx, x.grad), "backward kernel alone: dx differs from lif_scan's"


@pytest.mark.parametrize("mode", MODES)
def test_kernel_alone_vs_lif_scan(benchmark, kcase, mode, device, device_name):
    _skip_unless_timed(device)
    T, N, dtype = kcase
    b = _Buffers(T, N, dtype, device)
    _check_kernels_against_lif_scan(b)
    kernel = {"fwd": b.fwd_kernel, "bwd": b.bwd_kernel, "fwdbwd": lambda: (b.fwd_kernel(), b.bwd_kernel())}[mode]

    x = b.x.detach().clone().requires_grad_()
    held = {}

    def e2e_fwd():
        held["out"] = lif_scan(x, backend="triton")  # a training forward: the state is saved

    def e2e_bwd():
        torch.autograd.backward(list(held["out"]), [b.gs, b.gm], retain_graph=True)

    def e2e_fwdbwd():
        spikes, u_mean = lif_scan(x, backend="triton")
        torch.autograd.backward([spikes, u_mean], [b.gs, b.gm])

    e2e_fwd()
    e2e = {"fwd": e2e_fwd, "bwd": e2e_bwd, "fwdbwd": e2e_fwdbwd}[mode]
    nbytes = lif_min_bytes(T, N, dtype, mode)
    src = torch.empty(int(nbytes) // 2, dtype=torch.uint8, device=device)
    src.fill_(1)
    dst = torch.empty_like(src)

    kernel_s = device_seconds(kernel, device)
    e2e_s = device_seconds(e2e, device, grad_to_none=[x])
    copy_s = device_seconds(lambda: dst.copy_(src), device)
    host_s = host_seconds(e2e, device, grad_to_none=[x])
    benchmark.pedantic(lambda: (kernel(), sync(device)), rounds=20 if device == "cuda" else 3, warmup_rounds=2,
                       iterations=1)
    record(benchmark, kernel="lif_kernel", provider="triton", mode=mode, T=T, N=N, dtype=dtype,
           shape=f"T{T}-N{N}-{str(dtype).replace('torch.', '')}", device=device_name, min_bytes=nbytes,
           host_us=host_s * 1e6, **bandwidth_fields(nbytes, kernel_s, e2e_s, copy_s))


def test_host_time_stubbed(benchmark, device_name):
    """lif_scan's host time around the Triton launches, launches stubbed out (bench/host_time.py)."""
    from .host_time import measure

    result = {}
    benchmark.pedantic(lambda: result.update(measure(calls=200 if tiny() else 2000, warmup=20 if tiny() else 200)),
                       rounds=1, iterations=1)
    for phase in ("fwd_pre_us", "fwd_post_us", "bwd_pre_us", "bwd_post_us"):
        assert result[phase] > 0, result
    record(benchmark, kernel="host_time", provider="triton", mode="fwdbwd", T=result["T"], N=result["N"],
           dtype=torch.float32, shape=f"T{result['T']}-N{result['N']}-stubbed-launch", device=device_name,
           **{k: v for k, v in result.items() if k.endswith("_us") or k in ("calls", "threads")})
