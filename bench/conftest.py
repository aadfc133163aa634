"""Benchmark fixtures: the device, its copy bandwidth, the suite size, and each result saved as
soon as it is measured (--bench-jsonl)."""

from __future__ import annotations

import os
import platform

import pytest
import torch

from . import results_log


def pytest_addoption(parser):
    parser.addoption("--bench-full", action="store_true",
                     help="run the full shape set on CPU too (it is the default on CUDA)")
    parser.addoption("--bench-tiny", action="store_true",
                     help="tiny shapes and models on any device (the GPU run's rehearsal on CPU); under "
                          "TRITON_INTERPRET=1 the Triton providers run interpreted")
    parser.addoption("--bench-jsonl", metavar="PATH",
                     help="append each benchmark's result to PATH as one JSON line when it is measured, "
                          "so that a run cut short keeps what it measured (bench/results_log.py)")


def pytest_configure(config):
    if config.getoption("--bench-tiny"):
        from . import lif_providers, shapes

        shapes.SIZE = "tiny"
        lif_providers.INTERPRETED_TRITON = os.environ.get("TRITON_INTERPRET", "0") == "1"


@pytest.fixture(scope="session")
def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(scope="session")
def device_name(device) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


@pytest.fixture(scope="session")
def copy_bandwidth(device, request):
    """Copy bandwidth in bytes/s of the device (CPU: at torch's thread count), measured once per
    run, so that fractions of it compare numbers taken under the same conditions; None with
    --benchmark-disable (nothing is timed)."""
    if request.config.getoption("benchmark_disable"):
        return None
    from .roofline import copy_bandwidth as measure

    return measure(device, nbytes=1 << 24 if request.config.getoption("--bench-tiny") else None)


@pytest.fixture(autouse=True)
def _save_each_result(request):
    """With --bench-jsonl, the result of every benchmark that timed something is appended to the
    file after its test (results_log.append), not only when pytest finishes."""
    path = request.config.getoption("--bench-jsonl")
    bench = request.getfixturevalue("benchmark") if path and "benchmark" in request.fixturenames else None
    yield
    if bench is not None and getattr(bench, "stats", None) is not None and bench.stats.stats.data:  # timed something
        results_log.append(path, request.node.name, request.node.nodeid, bench.stats.stats, dict(bench.extra_info))


def pytest_benchmark_update_machine_info(config, machine_info):
    """Versions every result row carries (bench/report.py reads them)."""
    machine_info.update(results_log.versions())
