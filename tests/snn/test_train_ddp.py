"""DistributedDataParallel on CPU (gloo, two processes): weights identical across ranks, and equal
to one process trained with the same global batch up to float summation order; and a failure on
one rank ends both promptly.

Tolerance: the two runs differ only in how per-sample gradients are summed (two half-batch means
averaged by the all-reduce vs one full-batch mean); after 12 SGD steps the weights agree to 7.5e-8
(measured), so we allow atol 1e-6 + rtol 1e-5. Restricting each rank's IM-Loss to its own half
batch instead of the global batch moves them by 2e-5, which this tolerance catches. The network has
no batch norm: DDP normalizes each rank's half batch with its own statistics, which a single
process with the whole batch cannot match. IM-Loss is on (weight 2): the trainer averages each
layer's mean membrane over ranks, so the term is that of the global batch.
"""

import io
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
import torch.multiprocessing as mp

from snn.train import Config, checkpoint, engine, main, run

from ..conftest import save_onto_a_filling_disk


def config(out) -> Config:
    # resnet19 without normalization learns on the synthetic set thanks to IM-Loss; 116 training
    # samples in global batches of 32 (the last one 20): 4 steps per epoch, 3 epochs.
    return Config(dataset="synthetic", model="resnet19", width=0.125, norm="none", T=2, epochs=3, batch_size=32,
                  im_lambda=2.0, progress=False, out=str(out))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, tmp: str) -> None:
    """One torchrun-like process: the environment torchrun sets, then snn.train.run."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world))
    results = run(config(os.path.join(tmp, "ddp")))
    torch.save({"model": results.model.state_dict(), "history": results.history}, os.path.join(tmp, f"rank{rank}.pt"))


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_two_processes_match_one(tmp_path, one_thread):
    mp.spawn(_rank, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    single = run(config(tmp_path / "single"))

    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for name, w in rank0["model"].items():
        assert torch.equal(w, rank1["model"][name]), f"ranks differ in {name}"
    saved = checkpoint.load(tmp_path / "ddp" / "last.pt")  # written by rank 0 alone
    assert len(saved["rng"]) == 2 and saved["epoch"] == 3
    for name, w in single.model.state_dict().items():
        torch.testing.assert_close(rank0["model"][name], w, rtol=1e-5, atol=1e-6, msg=lambda m: f"{name}: {m}")
        torch.testing.assert_close(saved["model"][name], w, rtol=1e-5, atol=1e-6)

    ddp, one = rank0["history"], single.history
    assert [r["train_loss"] for r in one][-1] < [r["train_loss"] for r in one][0]  # it trains
    for key in ("train_loss", "train_ce", "train_im", "train_acc", "val_acc", "test_acc"):
        assert [r[key] for r in ddp] == pytest.approx([r[key] for r in one], rel=1e-5, abs=1e-6), key
    rates = [k for k in one[-1] if k.startswith("rate/")]
    assert [ddp[-1][k] for k in rates] == pytest.approx([one[-1][k] for k in rates], abs=1e-6)


class _SharedLog(io.TextIOBase):
    """A rank's stderr: each write goes to the rank's own file and is appended to the file all ranks
    share (as on a terminal, where torchrun's ranks write), after `delay` seconds: a slow writer
    shows whether the order of the shared lines is kept by the ranks or left to chance."""

    def __init__(self, own: str, shared: str, delay: float):
        self.own, self.shared, self.delay = own, shared, delay

    def write(self, text: str) -> int:
        time.sleep(self.delay)
        for path in (self.own, self.shared):
            with open(path, "a") as f:
                f.write(text)
        return len(text)


def _failing_rank(rank: int, world: int, port: int, tmp: str, scenario: str) -> None:
    """`python -m snn.train` on one rank, with scenario's fault: 'full-disk': on rank 0 every
    torch.save to a file meets a disk that is full after 100 bytes (saves to memory, which
    torch.distributed uses to send objects, still work); 'rank-1-raises': rank 1's first evaluation
    raises while rank 0 waits in its collective. The failing rank writes to stderr half a second
    late."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world))
    failing = 0 if scenario == "full-disk" else 1
    if scenario == "full-disk" and rank == 0:
        torch.save = save_onto_a_filling_disk(room=100)
    if scenario == "rank-1-raises" and rank == 1:
        def broken(*args, **kwargs):
            raise ValueError("injected fault on rank 1")

        engine.evaluate = broken
    sys.stderr = _SharedLog(os.path.join(tmp, f"stderr{rank}.txt"), os.path.join(tmp, "stderr.txt"),
                            delay=0.5 if rank == failing else 0.0)
    code = main(["--dataset", "synthetic", "--width", "0.125", "--T", "2", "--epochs", "2", "--batch-size", "32",
                 "--no-progress", "--out", os.path.join(tmp, "run")])
    sys.exit(code)


@pytest.mark.parametrize("scenario", ["full-disk", "rank-1-raises"])
def test_a_failure_on_one_rank_ends_every_rank(tmp_path, one_thread, scenario):
    """One rank fails while the other goes on: both must exit with a non-zero code within the bound,
    each saying why in one line, and the failing rank's report comes first in the log both share
    although it writes half a second late. full-disk: rank 0 cannot write its checkpoint (ENOSPC;
    unhandled, rank 0 would wait in the teardown barrier and rank 1 in the next forward, forever):
    both exit 1, rank 0 prints one line naming the file. rank-1-raises: rank 1's own traceback, and
    rank 0 (its collective broken by rank 1 leaving) one line saying another process stopped."""
    context = mp.get_context("spawn")
    port = _free_port()
    ranks = [context.Process(target=_failing_rank, args=(r, 2, port, str(tmp_path), scenario)) for r in range(2)]
    for p in ranks:
        p.start()
    deadline = time.monotonic() + 120  # startup and one epoch take about 10-40 s on 2 busy cores
    for p in ranks:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    hung = [r for r, p in enumerate(ranks) if p.is_alive()]
    for p in ranks:
        if p.is_alive():
            p.kill()
            p.join()
    assert not hung, f"ranks {hung} still running after 120 s"
    assert [p.exitcode for p in ranks] == [1, 1]
    err0, err1 = ((tmp_path / f"stderr{r}.txt").read_text() for r in (0, 1))
    shared = (tmp_path / "stderr.txt").read_text()
    assert "Traceback" not in err0 and len(err0.strip().splitlines()) == 1, err0
    if scenario == "full-disk":
        assert "No space left on device" in err0 and f"cannot write {tmp_path / 'run'}" in err0
        assert err1.startswith("error (rank 1): another process of the run failed") and len(err1.splitlines()) == 1
        assert not list((tmp_path / "run").glob("*.pt")) and not list((tmp_path / "run").glob(".*.tmp"))
        assert shared == err0 + err1
    else:
        assert "another process of the run stopped" in err0
        assert err1.count("ValueError: injected fault on rank 1") == 1
        assert shared == err1 + err0


def _launch(rank: int, port: int, out, **env) -> subprocess.Popen:
    """`python -m snn.train` as a hand-launched rank of 2 (the variables torchrun would set)."""
    variables = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                 "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", **env}
    return subprocess.Popen([sys.executable, "-m", "snn.train", "--dataset", "synthetic", "--data-option",
                             "train_per_class=200", "--width", "0.125", "--T", "2", "--epochs", "50",
                             "--batch-size", "32", "--no-progress", "--out", str(out)],
                            env=variables, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_a_taken_master_port_stops_every_rank_with_one_line(tmp_path):
    """MASTER_PORT held by another program that accepts and never answers: rank 0 cannot listen, rank 1
    connects to the wrong program; both exit 2 with one line within the process group's timeout
    (SNN_DIST_TIMEOUT=5 s), instead of a traceback and a rank waiting for ever."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        ranks = [_launch(r, port, tmp_path / "run", SNN_DIST_TIMEOUT="5") for r in (0, 1)]
        try:
            errors = [p.communicate(timeout=120)[1] for p in ranks]
        finally:
            for p in ranks:
                p.kill()
                p.wait()
    for rank, (p, err) in enumerate(zip(ranks, errors)):
        assert p.returncode == 2, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert f"rank {rank} could not join the process group at 127.0.0.1:{port}" in err, err
    assert not (tmp_path / "run").exists()


def test_rank_0_killed_rank_1_says_why_it_stops(tmp_path):
    """kill -9 of rank 0 mid-run: rank 1 exits 1 within the bound with one line saying that another
    process of the run stopped (not a silent exit, which would leave the user no reason)."""
    port = _free_port()
    rank0, rank1 = (_launch(r, port, tmp_path / "run") for r in (0, 1))
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "run" / "last.pt").exists():
            assert rank0.poll() is None and rank1.poll() is None, (rank0.communicate(), rank1.communicate())
            assert time.monotonic() < deadline, "no checkpoint"
            time.sleep(0.01)
        rank0.kill()
        err = rank1.communicate(timeout=120)[1]
    finally:
        rank0.kill()
        rank1.kill()
    assert rank1.returncode == 1, err
    assert err.startswith("error (rank 1): another process of the run stopped") and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_while_joining_the_process_group_stops_at_once_with_one_line(tmp_path, signum):
    """A stop signal while rank 1 waits to join the process group (MASTER_PORT held by a program
    that accepts and never answers, so torch's store client waits inside C++ where no Python
    handler runs): exit 128 + N within seconds, not after the join timeout (600 s here), with one
    line, no traceback and no run folder. The signal is sent once the rank has connected, so it is
    known to be inside the join."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        squatter.settimeout(120)
        port = squatter.getsockname()[1]
        rank = _launch(1, port, tmp_path / "run", SNN_DIST_TIMEOUT="600")
        try:
            connection, _ = squatter.accept()
            sent = time.monotonic()
            rank.send_signal(signum)
            err = rank.communicate(timeout=60)[1]
            waited = time.monotonic() - sent
            connection.close()
        finally:
            rank.kill()
            rank.wait()
    assert rank.returncode == 128 + signum, err
    assert err == f"interrupted (rank 1): stopped on {signal.Signals(signum).name} while joining the process group; " \
                  f"nothing was written\n", err
    assert waited < 30
    assert not (tmp_path / "run").exists()
