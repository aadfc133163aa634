"""Stop signals as schedulers and terminals send them: to the whole process group with data-loader
workers, SIGHUP, a second signal while a checkpoint is being written, and a signal during the last
epoch's writes. Each ends in the documented stop: exit 128 + N, one line, a loadable last.pt."""

import io
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from snn.train import checkpoint, main

from .test_train_failures import argv
from .test_train_runfolder import ENV, REPO

# About 250 steps per epoch (a few seconds): a signal shortly after last.pt appears lands mid-epoch 2.
LONG_WITH_WORKERS = ["-m", "snn.train", "--dataset", "synthetic", "--data-option", "train_per_class=2000",
                     "--width", "0.125", "--T", "2", "--batch-size", "32", "--no-progress", "--workers", "2",
                     "--epochs", "4"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_to_the_process_group_with_loader_workers_saves_the_partial_epoch(tmp_path, sig):
    """The signal reaches the main process and both loader workers at once (killpg, as `timeout`, a
    scheduler or a closed terminal send it): exit 128 + N with one line, and a last.pt holding the
    partial epoch, which --resume accepts."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, *LONG_WITH_WORKERS, "--out", str(out)], env=ENV, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "last.pt").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint"
            time.sleep(0.01)
        time.sleep(0.5)  # into epoch 2, whose workers are running
        os.killpg(proc.pid, sig)
        err = proc.communicate(timeout=120)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 128 + sig, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"interrupted: stopped on {signal.Signals(sig).name} at step "), err
    saved = checkpoint.load(out / "last.pt")
    assert saved["epoch"] == 1 and 0 < saved["partial"]["step"] < saved["partial"]["steps"]


class SignallingFile(io.RawIOBase):
    """A file torch.save writes through, which sends this process `signals` (one per write call,
    from the second on): signals that arrive while torch's C++ writer is busy."""

    def __init__(self, f, signals):
        self.f, self.signals, self.calls = f, list(signals), 0

    def writable(self):
        return True

    def write(self, data):
        self.calls += 1
        if self.calls >= 2 and self.signals:
            os.kill(os.getpid(), self.signals.pop(0))
        return self.f.write(data)


def signals_during_save(monkeypatch, epoch: int, signals):
    """checkpoint.save's torch.save gets `signals` while it writes the first checkpoint of `epoch`
    (1-based: last.pt, written before best.pt)."""
    real, done = torch.save, []

    def save(obj, f, *args, **kwargs):
        if obj.get("epoch") == epoch and not done:
            done.append(True)
            f = SignallingFile(f, signals)
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", save)


def test_a_second_signal_during_a_checkpoint_write_completes_the_write(tmp_path, monkeypatch, capsys):
    """Two SIGTERMs while epoch 1's last.pt is written: the write completes, the run stops after
    epoch 1 (exit 143, one line), and last.pt is whole with no temporary file beside it."""
    out = tmp_path / "run"
    signals_during_save(monkeypatch, 1, [signal.SIGTERM, signal.SIGTERM])
    assert main(argv(out, "--epochs", "3")) == 143
    err = capsys.readouterr().err
    assert err.startswith("interrupted: stopped on SIGTERM after epoch 1/3") and len(err.splitlines()) == 1, err
    assert checkpoint.load(out / "last.pt")["epoch"] == 1
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("signals", [[signal.SIGTERM], [signal.SIGHUP, signal.SIGTERM]], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_during_the_last_epochs_writes_is_not_ignored(tmp_path, monkeypatch, capsys, signals):
    """A stop signal while the last epoch's last.pt is written: exit 128 + N of the first signal after
    the write (never 0), one line saying --resume writes the results; --resume then finishes."""
    out = tmp_path / "run"
    signals_during_save(monkeypatch, 2, signals)  # last.pt of epoch 2 of 2
    assert main(argv(out)) == 128 + signals[0]
    err = capsys.readouterr().err
    assert err.startswith(f"interrupted: stopped on {signals[0].name} after the last epoch"), err
    assert len(err.splitlines()) == 1 and "--resume" in err
    assert checkpoint.load(out / "last.pt")["epoch"] == 2 and not (out / "results.json").exists()
    monkeypatch.undo()
    assert main(argv(out, "--resume")) == 0 and (out / "results.json").is_file()


LEAKED_LOADER = """
import torch
from torch.utils.data import TensorDataset
from snn.data import make_loader
loader = make_loader(TensorDataset(torch.zeros(64, 3), torch.zeros(64, dtype=torch.long)), 4, train=True, workers=2)
iterator = iter(loader)
next(iterator)
KEPT = (loader, iterator)  # alive at interpreter exit, as after an error that holds the frame
print("leaving", flush=True)
"""


def test_a_process_still_holding_a_loader_with_workers_exits():
    """Interpreter exit ends the workers of a loader that is still referenced (multiprocessing
    sends them SIGTERM and joins them): workers that ignored SIGTERM would hang the exit forever."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", LEAKED_LOADER], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "leaving" in done.stdout, done.stderr[-2000:]


_WAIT_IN_C = """
import ctypes, sys, time
from snn.train.stop import Signals

class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

def slow_report(error):
    time.sleep(1.0)  # slower than C code that reacts to an interrupted system call
    print(f"reported: {error}", file=sys.stderr, flush=True)

libc = ctypes.CDLL(None, use_errno=True)
with Signals() as signals:
    with signals.at_once("in the wait", slow_report):
        print("waiting", flush=True)
        if libc.nanosleep(ctypes.byref(Timespec(60, 0)), None) != 0:
            print(f"the wait was interrupted: errno {ctypes.get_errno()}", file=sys.stderr, flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_inside_at_once_does_not_interrupt_the_main_threads_wait(signum):
    """Signals.at_once around a wait in C code (nanosleep through ctypes, as torch's store client
    waits while joining the process group): the signal is reported once and the process exits
    128 + N, and the wait itself is never interrupted, so C code that reports an interrupted system
    call (torch logs a warning with a C++ stack) has nothing to say, however slow the report."""
    child = subprocess.Popen([sys.executable, "-c", _WAIT_IN_C], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert child.stdout.readline() == "waiting\n"
        child.send_signal(signum)
        err = child.communicate(timeout=60)[1]
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 128 + signum, err
    assert err == f"reported: stopped on {signal.Signals(signum).name} in the wait\n", err
