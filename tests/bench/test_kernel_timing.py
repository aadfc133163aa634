"""bench/kernel_timing.py on CPU: the derived bandwidth fields, and the timers' bookkeeping."""

import pytest
import torch

from bench.kernel_timing import bandwidth_fields, device_seconds, host_seconds


def test_bandwidth_fields_from_hand_computed_values():
    # 12 MB of minimal bytes; the copy of them takes 3 ms, the kernel 4 ms, the call 6 ms.
    f = bandwidth_fields(12e6, kernel_s=4e-3, e2e_s=6e-3, copy_s=3e-3)
    assert f["frac_copy_kernel"] == pytest.approx(0.75) and f["frac_copy_e2e"] == pytest.approx(0.5)
    assert f["copy_gbps"] == pytest.approx(4.0) and f["kernel_gbps"] == pytest.approx(3.0)


def test_timers_clear_gradients_before_each_call():
    x = torch.ones(3, requires_grad=True)
    grads = []

    def step():
        grads.append(x.grad)
        (2 * x).sum().backward()

    for timer in (device_seconds, host_seconds):
        grads.clear()
        assert timer(step, "cpu", grad_to_none=[x]) > 0
        assert all(g is None for g in grads[1:])  # the untimed first call may find one
