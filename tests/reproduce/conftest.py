"""reproduce-test fixtures."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_cpu_thread():
    """One intra-op thread: the tiny networks gain nothing from more, and on a shared CPU the
    spinning OpenMP workers slow every test down."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_args(tmp_path):
    """The flags of a tiny run writing into tmp_path: results in out/, runs in runs/."""
    return ["--budget", "tiny", "--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs")]
