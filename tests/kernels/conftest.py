"""Kernel-test fixtures: NaN-poisoned allocations and the device the kernels run on."""

import pytest
import torch

from .lif_check import DEVICE

_ALLOCATORS = ("empty", "empty_like", "empty_strided")


@pytest.fixture(autouse=True)
def poison_empty(monkeypatch):
    """Fill every new floating tensor with NaN so that an element a kernel never writes shows up."""
    for name in _ALLOCATORS:
        real = getattr(torch, name)

        def poisoned(*args, _real=real, **kwargs):
            t = _real(*args, **kwargs)
            if t.is_floating_point():
                t.fill_(float("nan"))
            return t

        monkeypatch.setattr(torch, name, poisoned)


@pytest.fixture(scope="session")
def device() -> str:
    return DEVICE
