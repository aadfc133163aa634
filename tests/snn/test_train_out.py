"""--out on file systems that refuse it (a symbolic-link loop, a full file system, a lock the file
system refuses), and --init-from runs resumed after their source checkpoint is gone, replaced or
named another way: one line and exit 2 without a run folder, or a resume from what the run holds."""

import errno
import os

import pytest
import torch

from snn import LIF
from snn.train import checkpoint, main, run, runlock

from ..conftest import fill
from .test_train_failures import argv, one_line_error
from .test_train_init_from import tiny


def test_out_through_a_symbolic_link_loop_exits_2(tmp_path, capsys):
    loop = tmp_path / "loop"
    os.symlink(loop, loop)
    assert main(argv(loop / "run")) == 2
    one_line_error(capsys.readouterr().err, str(loop), "--out")
    assert os.path.islink(loop) and not (tmp_path / "run").exists()


def test_out_on_a_full_file_system_exits_2_without_a_run_folder(tmpfs, capsys):
    """A real full file system (a 64 KiB tmpfs, filled): the lock file cannot be written."""
    full = tmpfs("size=64k")
    fill(full)
    assert main(argv(full / "runs" / "run")) == 2
    one_line_error(capsys.readouterr().err, str(full / "runs" / "run"), "No space left on device")
    assert sorted(p.name for p in full.iterdir()) == ["filler"]


def test_a_lock_the_file_system_refuses_exits_2_without_a_run_folder(tmp_path, monkeypatch, capsys):
    """ENOLCK, as on NFS without a lock daemon (injected: no such file system here)."""
    def refused(f, how):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(runlock.fcntl, "flock", refused)
    assert main(argv(tmp_path / "new" / "run")) == 2
    one_line_error(capsys.readouterr().err, str(tmp_path / "new" / "run"), os.strerror(errno.ENOLCK))
    assert not (tmp_path / "new").exists()


def resumable_init_from_run(tmp_path):
    """A finished source run, and a run started from its last.pt (absolute path) that a signal
    would have stopped: here it finished its one epoch, so --resume only writes its results."""
    run(tiny(tmp_path / "source", seed=1))
    source = tmp_path / "source" / "last.pt"
    run(tiny(tmp_path / "further", seed=2, init_from=str(source)))
    return source, checkpoint.load(tmp_path / "further" / "last.pt")["model"]


@pytest.mark.parametrize("source_is", ["deleted", "replaced"])
def test_a_run_started_with_init_from_resumes_without_its_source(tmp_path, source_is):
    source, weights = resumable_init_from_run(tmp_path)
    if source_is == "deleted":
        source.unlink()
    else:  # another run's checkpoint in its place, of a network this run's weights do not fit
        run(tiny(tmp_path / "other", seed=3, width=0.25))
        os.replace(tmp_path / "other" / "last.pt", source)
    resumed = run(tiny(tmp_path / "further", seed=2, init_from=str(source), resume=True))
    for name, value in weights.items():  # its own weights, not the source's
        assert torch.equal(resumed.model.state_dict()[name], value), name


def test_init_from_named_relative_or_absolute_is_the_same_setting(tmp_path, monkeypatch):
    source, weights = resumable_init_from_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    resumed = run(tiny(tmp_path / "further", seed=2, init_from=os.path.join("source", "last.pt"), resume=True))
    for name, value in weights.items():
        assert torch.equal(resumed.model.state_dict()[name], value), name


def test_a_parameter_assigned_to_a_lif_setting_is_refused_naming_it():
    lif = LIF()
    with pytest.raises(TypeError, match=r"^vth must be a real number"):
        lif.vth = torch.nn.Parameter(torch.tensor(0.5))
    assert lif.vth == 0.5 and "vth" not in dict(lif.named_parameters())


def test_a_checkpoint_that_does_not_fit_exits_1_with_one_line(tmpfs, capsys):
    """A real file system with room for the run folder's first files but not for last.pt (an empty
    64 KiB tmpfs): torch.save's zip writer reports the ENOSPC as RuntimeError "unexpected pos", and
    the run still ends with the one line naming the file and the cause, exit 1, no temporary file."""
    small = tmpfs("size=64k")
    assert main(argv(small / "run", "--epochs", "1")) == 1
    one_line_error(capsys.readouterr().err, f"cannot write {small / 'run' / 'last.pt'}", "No space left on device")
    assert not list((small / "run").glob(".*.tmp")) and not (small / "run" / "last.pt").exists()
