"""Benchmark fixtures: the device, its copy bandwidth, the suite size."""

from __future__ import annotations

import platform

import pytest
import torch


def pytest_addoption(parser):
    parser.addoption("--bench-full", action="store_true",
                     help="run the full shape set on CPU too (it is the default on CUDA)")


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

    return measure(device)



def pytest_benchmark_update_machine_info(config, machine_info):
    """Versions every result row carries (bench/report.py reads them)."""
    import importlib.metadata
    import subprocess

    import triton

    machine_info["torch"] = torch.__version__
    machine_info["triton"] = triton.__version__
    machine_info["cuda_device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    machine_info["cuda_driver"] = None
    if torch.cuda.is_available():
        try:
            machine_info["cuda_driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            pass
    try:
        machine_info["spikingjelly"] = importlib.metadata.version("spikingjelly")
    except importlib.metadata.PackageNotFoundError:
        machine_info["spikingjelly"] = None
