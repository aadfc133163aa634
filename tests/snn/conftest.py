"""snn-test fixtures."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_cpu_thread():
    """Tiny tensors gain nothing from intra-op threads, and on a CPU shared with other jobs the
    spinning OpenMP workers made these tests 5-40x slower; run each test on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
