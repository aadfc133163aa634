"""The units and counts between a timer and the numbers the report prints, on stand-in clocks:
the copy floor counts its bytes twice (read and written), CUDA's milliseconds become seconds,
the CPU timer takes the median of its repeats after an untimed first call, record() divides
the minimal bytes by the median, and the kernel table prints milliseconds. Every expected value
is worked out by hand from the stand-in times below."""

from __future__ import annotations

import re
import types

import pytest

from bench import kernel_timing, report, roofline
from bench.record import record


def test_cpu_copy_bandwidth_counts_read_and_write(monkeypatch):
    """1 MiB copied in a (stand-in) 10 ms: 2 MiB moved, so 2 * 2^20 / 0.01 = 209 715 200 B/s; the
    repeats are passed on."""
    seen = {}

    def fake_median(fn, repeats):
        fn()
        seen["repeats"] = repeats
        return 0.01

    monkeypatch.setattr(roofline, "median_seconds", fake_median)
    assert roofline.copy_bandwidth("cpu", nbytes=1 << 20, repeats=7) == pytest.approx(2 * (1 << 20) / 0.01)
    assert seen["repeats"] == 7


def test_cuda_device_seconds_converts_milliseconds(monkeypatch):
    """triton.testing.do_bench answers in milliseconds: 4 ms is 0.004 s; the median is asked for and
    the gradients to clear are handed over."""
    import triton.testing

    asked = {}

    def fake_do_bench(fn, warmup, rep, grad_to_none, return_mode):
        asked.update(rep=rep, grad_to_none=grad_to_none, return_mode=return_mode)
        return 4.0

    monkeypatch.setattr(triton.testing, "do_bench", fake_do_bench)
    x = object()
    assert kernel_timing.device_seconds(lambda: None, "cuda", grad_to_none=[x], rep_ms=50) == pytest.approx(0.004)
    assert asked == {"rep": 50, "grad_to_none": [x], "return_mode": "median"}


class _Clock:
    """A clock that each call of the timed function advances by the next of `durations`."""

    def __init__(self, durations):
        self.now, self.durations, self.calls = 0.0, list(durations), 0

    def perf_counter(self):
        return self.now

    def call(self):
        self.now += self.durations[self.calls]
        self.calls += 1


@pytest.mark.parametrize("timer", ["device_seconds", "host_seconds"])
def test_cpu_timers_take_the_median_of_the_repeats_after_an_untimed_call(monkeypatch, timer):
    """First call (untimed) 1 s, then 1, 2, 9, 8, 7 ms: the median of the five repeats is 7 ms (of
    the first four it would be 5 ms, with the first call in it 7.5 ms)."""
    clock = _Clock([1.0, 0.001, 0.002, 0.009, 0.008, 0.007])
    monkeypatch.setattr(kernel_timing, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    kwargs = {"cpu_repeats": 5} if timer == "device_seconds" else {"repeats": 5}
    assert getattr(kernel_timing, timer)(clock.call, "cpu", **kwargs) == pytest.approx(0.007)
    assert clock.calls == 6


class _Benchmark:
    def __init__(self, median):
        self.stats = types.SimpleNamespace(stats=types.SimpleNamespace(median=median))
        self.extra_info = {}


def test_record_divides_the_minimal_bytes_by_the_median():
    """24 MB in a 2 ms median: 12 GB/s; against a 20 GB/s copy that is 0.6 of the copy bandwidth."""
    bench = _Benchmark(median=0.002)
    record(bench, min_bytes=24e6, copy_bandwidth=20e9, mode="fwd")
    info = bench.extra_info
    assert info["gbps"] == pytest.approx(12.0) and info["copy_gbps"] == pytest.approx(20.0)
    assert info["frac_copy_bw"] == pytest.approx(0.6) and info["min_bytes"] == 24e6 and info["mode"] == "fwd"


def test_kernel_table_prints_milliseconds():
    """Kernel 4 ms, lif_scan 6 ms, the copy 3 ms (stored in seconds): the table shows 4, 6 and 3 ms
    and the fractions of the copy bandwidth 3/4 and 3/6."""
    row = {"kernel": "lif_kernel", "provider": "triton", "mode": "fwd", "T": 4, "N": 1024, "dtype": "float32",
           "shape": "T4-N1024-float32", "device": "test", "kernel_s": 0.004, "e2e_s": 0.006, "copy_s": 0.003,
           "frac_copy_kernel": 0.75, "frac_copy_e2e": 0.5, "host_us": 20.0, "median_s": 0.004}
    text = report.kernel_table(report._frame([row]))
    assert "kernel alone (ms)" in text
    assert re.search(r"\|\s*4\s*\|\s*6\s*\|\s*3\s*\|\s*0\.75\s*\|\s*0\.5\s*\|\s*20\s*\|", text), text
