"""The run folder's lock (snn.train.runlock) checked with the operating system's own view: a
separate flock on the lock file (a new open file description conflicts with the holder's, in this
process too) says whether the lock is held, a real second process holds it, the lock file names
the process holding it now, never an earlier holder, and data-loader workers forked while it is
held (which share the lock file) do not keep it after their parent let it go or was killed."""

import fcntl
import os
import signal
import socket

import pytest
import torch
from torch.utils.data import TensorDataset

from snn.data import make_loader
from snn.train import runlock
from snn.train.runlock import RunFolderBusy

from .test_train_runfolder import LONG, holder, spawn, wait_for


def held_by_someone(folder) -> bool:
    """Whether an exclusive flock on folder's lock file is refused (asked through a file of our own)."""
    with open(folder / runlock.LOCK, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def test_the_lock_is_held_for_the_whole_block_and_released_after(tmp_path):
    """Inside the with-block (after the holder's PID is written) the OS refuses another exclusive
    flock; after the block, also one left by an exception, it grants it."""
    folder = tmp_path / "run"
    with runlock.hold(folder):
        assert runlock.holds(folder) and held_by_someone(folder)
        (folder / "last.pt").write_bytes(b"")  # the run writes its files
        assert held_by_someone(folder)
    assert not runlock.holds(folder) and not held_by_someone(folder)
    with pytest.raises(KeyError):
        with runlock.hold(folder):
            raise KeyError("the run failed")
    assert not runlock.holds(folder) and not held_by_someone(folder)


def test_a_folder_taken_again_under_another_name_is_reentrant(tmp_path):
    """reproduce/ holds a row's folder and snn.train.run takes it again; the second name may be a
    symbolic link to it or a relative path: the same folder, so the same lock, taken again without
    RunFolderBusy, and still held after the inner block ends."""
    real = tmp_path / "runs" / "row"
    os.symlink(tmp_path / "runs", tmp_path / "link")
    with runlock.hold(real):
        with runlock.hold(tmp_path / "link" / "row"):
            assert held_by_someone(real)
        assert runlock.holds(real) and held_by_someone(real)
        cwd = os.getcwd()
        os.chdir(tmp_path)
        try:
            with runlock.hold(os.path.join("runs", "row")):
                assert held_by_someone(real)
        finally:
            os.chdir(cwd)
        assert held_by_someone(real)
    assert not held_by_someone(real)


def test_the_lock_file_names_the_current_holder_not_an_earlier_one(tmp_path):
    """A lock file left by earlier holders (their PIDs and hosts): once a new process holds the folder,
    the file holds exactly that process's PID (Popen.pid) and this host (socket.gethostname), and a
    refused second holder names it."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / runlock.LOCK).write_text("4000001 old-host\n4000002 older-host\n")
    proc = holder(folder)
    try:
        host = socket.gethostname()
        assert (folder / runlock.LOCK).read_text() == f"{proc.pid} {host}\n"
        with pytest.raises(RunFolderBusy, match=f"in use by PID {proc.pid} on {host} "):
            with runlock.hold(folder):
                pass
    finally:
        proc.kill()
        proc.wait()
    with runlock.hold(folder):  # its lock went with it
        assert (folder / runlock.LOCK).read_text() == f"{os.getpid()} {host}\n"


def test_loader_workers_forked_while_the_lock_is_held_do_not_keep_it(tmp_path):
    """A loader with 2 persistent workers, forked inside the block and still referenced after it:
    the workers share the lock file with their parent, yet the folder is free once the block ends."""
    folder = tmp_path / "run"
    data = TensorDataset(torch.zeros(16, 3), torch.zeros(16, dtype=torch.long))
    with runlock.hold(folder):
        loader = make_loader(data, 4, train=True, workers=2)
        assert len(list(loader)) == 4
    assert not held_by_someone(folder)
    with runlock.hold(folder):
        assert len(list(loader)) == 4  # the workers are alive
    assert not held_by_someone(folder)


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"),
                    reason="needs Linux's /proc children list")
def test_a_run_killed_with_sigkill_frees_its_folder_while_its_workers_live_on(tmp_path):
    """`python -m snn.train --workers 2` killed with SIGKILL while its workers load batches: the
    workers (in process groups of their own) outlive it for a few seconds, until their watchdog sees
    the parent gone; the folder is free for --resume at once, as a lock never outlives its process."""
    out = tmp_path / "run"
    proc = spawn(*LONG, "--workers", "2", "--epochs", "4", "--out", str(out))
    try:
        wait_for(lambda: len(children(proc.pid)) >= 2, proc, "loader workers")
        workers = children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert any(alive(w) for w in workers), "the workers ended with their parent: nothing checked"
        assert not held_by_someone(out)
    finally:
        proc.kill()
        proc.wait()


def test_a_run_found_under_this_process_own_lock_is_a_run_to_resume(tmp_path):
    """take_folder re-checks the folder under the lock it now holds: a last.pt that appeared there
    (another run wrote it between the checks and ended) is RunExists advising --resume, not a busy
    folder naming this process."""
    import contextlib

    from snn.train import Config, runfolder

    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"another run's checkpoint")
    with contextlib.ExitStack() as held:
        with pytest.raises(runfolder.RunExists, match="pass --resume"):
            runfolder.take_folder(held, out, Config(dataset="synthetic", out=str(out)))
