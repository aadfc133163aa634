"""The run folder under misuse: two processes on one --out, SIGINT / SIGTERM, a best.pt deleted or
replaced before --resume, settings that pass the checks but can only fail once data or memory is
touched (they must still fail before the folder is made), and the mode of the run files."""

import dataclasses
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from snn.train import Config, checkpoint, engine, main, prepare, run

from .test_train_failures import argv, finished_run, one_line_error
from .test_train_resume import write_cifar10

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def spawn(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], env=ENV, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(condition, proc, what, seconds=120):
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"no {what}"
        time.sleep(0.01)


def holder(folder) -> subprocess.Popen:
    """Another process that holds folder's run lock until killed (it prints 'held' once it does)."""
    code = textwrap.dedent(f"""
        import time
        from snn.train import runlock
        with runlock.hold({str(folder)!r}):
            print("held", flush=True)
            time.sleep(600)
    """)
    proc = spawn("-c", code)
    assert proc.stdout.readline().strip() == "held", proc.communicate()
    return proc


# --- one process per run folder ----------------------------------------------------------------

@pytest.mark.parametrize("resume", [False, True])
@pytest.mark.parametrize("with_last", [False, True], ids=["before-its-first-epoch", "with-last.pt"])
def test_a_second_process_on_a_busy_run_folder_exits_2_naming_the_holder(tmp_path, capsys, resume, with_last):
    """While another process holds the folder (a run training there, before or after its first
    last.pt), a second run on the same --out (fresh, or --resume) exits 2 naming the holder's PID,
    not advice to --resume, and touches nothing: not config.json, not the holder's temporary files."""
    out = tmp_path / "run"
    out.mkdir()
    temporary = out / ".last.pt.abc123.tmp"  # the holder's write in progress
    temporary.write_bytes(b"\0" * 100)
    if with_last:
        (out / "last.pt").write_bytes(b"the holder's checkpoint")
    proc = holder(out)
    try:
        capsys.readouterr()
        assert main(argv(out, *(["--resume"] if resume else []))) == 2
        one_line_error(capsys.readouterr().err, f"PID {proc.pid}", str(out), "in use")
        assert temporary.exists() and not (out / "config.json").exists()
    finally:
        proc.kill()
        proc.wait()
    (out / "last.pt").unlink(missing_ok=True)
    assert main(argv(out, "--epochs", "1")) == 0  # the lock went with its process
    assert not temporary.exists()


LONG = ["-m", "snn.train", "--dataset", "synthetic", "--data-option", "train_per_class=200", "--width", "0.125",
        "--T", "2", "--batch-size", "32", "--no-progress"]  # 25 steps per epoch, about 0.5 s


def test_resume_while_the_run_is_alive_is_refused_and_leaves_its_files_alone(tmp_path):
    """A real run training in --out, and --resume started beside it: the second exits 2 at once and
    the first finishes with files that all come from it."""
    out = tmp_path / "run"
    first, second = spawn(*LONG, "--out", str(out), "--epochs", "100"), None
    try:
        wait_for(lambda: (out / "config.json").exists(), first, "run folder")
        second = spawn(*LONG, "--out", str(out), "--epochs", "100", "--resume")
        err = second.communicate(timeout=120)[1]
        assert first.poll() is None, "the first run ended before the second started"
        assert second.returncode == 2, err
        one_line_error(err, f"PID {first.pid}")
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=120) == 143, first.communicate()
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.kill()
                proc.wait()
    saved = checkpoint.load(out / "last.pt")  # the first run's, with its own history
    assert len((out / "metrics.csv").read_text().splitlines()) == 1 + saved["epoch"]


# --- signals -------------------------------------------------------------------------------------

def small_cifar(tmp_path, epochs=3, **extra) -> Config:
    """CIFAR-10 files with random crops and flips drawn from torch's RNG: resuming needs the RNG
    states, the data order and the partial epoch exactly."""
    root = tmp_path / "data"
    if not root.exists():
        write_cifar10(root)
    fields = dict(dataset="cifar10", data_options={"verify": False}, width=0.125, T=2, batch_size=32,
                  epochs=epochs, progress=False, data_root=str(root), out=str(tmp_path / "run"))
    return Config(**{**fields, **extra})


def test_a_signal_mid_epoch_saves_a_checkpoint_that_resumes_bitwise(tmp_path, monkeypatch):
    """A stop requested after step 3 of epoch 2 (of 6 steps): last.pt holds the partial epoch, and
    --resume ends with the same weights, momentum and metrics as an uninterrupted run."""
    whole = run(small_cifar(tmp_path / "whole"))
    calls = []
    real = engine.train_epoch

    def signalled_after_step_3_of_epoch_2(*args):
        *rest, plan = args
        epoch = plan.epoch

        def stop_now():
            calls.append(epoch)
            return signal.SIGTERM if epoch == 1 and calls.count(1) == 3 else plan.stop()

        return real(*rest, dataclasses.replace(plan, stop=stop_now))

    monkeypatch.setattr(engine, "train_epoch", signalled_after_step_3_of_epoch_2)
    from snn.train.stop import Interrupted

    with pytest.raises(Interrupted) as stopped:
        run(small_cifar(tmp_path / "cut"))
    assert stopped.value.exit_code == 143 and "step 3/6 of epoch 2/3" in str(stopped.value)
    last = tmp_path / "cut" / "run" / "last.pt"
    saved = checkpoint.load(last)
    assert saved["epoch"] == 1 and saved["partial"]["step"] == 3
    monkeypatch.setattr(engine, "train_epoch", real)

    resumed = run(small_cifar(tmp_path / "cut", resume=True))
    a, b = checkpoint.load(tmp_path / "whole" / "run" / "last.pt"), checkpoint.load(last)
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    for i, (sa, sb) in enumerate(zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values())):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"]), i
    assert "partial" not in b
    exact = ["lr", "K", "train_loss", "train_ce", "train_im", "train_acc", "val_acc", "test_acc", "images_per_s"]
    for ra, rb in zip(whole.history, resumed.history):
        assert [ra[k] for k in exact[:-1]] == [rb[k] for k in exact[:-1]]


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_stop_with_one_line_and_a_resumable_checkpoint(tmp_path, sig, code):
    """A real signal to `python -m snn.train` while it trains: exit 130 (SIGINT) / 143 (SIGTERM), one
    line on stderr and no traceback, and a last.pt that --resume continues (SIGTERM: checked)."""
    out = tmp_path / "run"
    args = [*LONG, "--out", str(out), "--epochs", "6"]
    proc = spawn(*args)
    wait_for(lambda: (out / "last.pt").exists(), proc, "checkpoint")
    proc.send_signal(sig)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"interrupted: stopped on {signal.Signals(sig).name}"), err
    assert str(out / "last.pt") in lines[0] and "--resume" in lines[0]
    assert 1 <= checkpoint.load(out / "last.pt")["epoch"] < 6
    if sig == signal.SIGTERM:
        resumed = subprocess.run([sys.executable, *args, "--resume"], env=ENV, cwd=REPO, capture_output=True,
                                 text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        assert checkpoint.load(out / "last.pt")["epoch"] == 6


def test_a_signal_before_training_exits_at_once_with_one_line(tmp_path, monkeypatch, capsys):
    """SIGINT while the data is being built: nothing to save, stop at once (exit 130, one line), and
    the handlers in place before the run come back (whatever they were: pytest started in the
    background inherits SIGINT ignored)."""
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    real = prepare.build_data

    def interrupted_build(cfg, ctx):
        os.kill(os.getpid(), signal.SIGINT)
        return real(cfg, ctx)

    monkeypatch.setattr(prepare, "build_data", interrupted_build)
    assert main(argv(tmp_path / "run")) == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted: stopped on SIGINT before training began") and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()
    assert {s: signal.getsignal(s) for s in before} == before  # handlers restored


# --- best.pt against the run's history ----------------------------------------------------------

def best_at_epoch_1(monkeypatch):
    """Validation accuracies 0.6, 0.5, 0.4, ...: best.pt is epoch 1's."""
    val = iter([0.6 - 0.1 * i for i in range(10)])

    def scripted(model, loader, s, ctx, rates=False):
        return (0.5, {}) if rates else (next(val), {})

    monkeypatch.setattr(engine, "evaluate", scripted)


@pytest.mark.parametrize("damage", ["deleted", "replaced by another run's", "replaced by a later epoch's"])
def test_resume_refuses_a_best_checkpoint_that_is_not_this_runs(tmp_path, monkeypatch, capsys, damage):
    """best.pt deleted, or replaced (another run's, or this run's last.pt copied over it), before
    --resume: exit 2 naming best.pt, instead of a results.json that names weights that are not there."""
    best_at_epoch_1(monkeypatch)
    out = finished_run(tmp_path, epochs=2)
    best = out / "best.pt"
    if damage == "deleted":
        best.unlink()
    elif damage == "replaced by another run's":
        other = tmp_path / "other"
        assert main(argv(other, "--epochs", "1", "--seed", "1")) == 0
        best.write_bytes((other / "best.pt").read_bytes())
    else:
        best.write_bytes((out / "last.pt").read_bytes())
    (out / "results.json").unlink()
    capsys.readouterr()
    assert main(argv(out, "--epochs", "2", "--resume")) == 2
    one_line_error(capsys.readouterr().err, str(best), "epoch 1", "restore")
    assert not (out / "results.json").exists()


def test_a_kill_between_last_and_best_is_repaired_on_resume(tmp_path, capsys):
    """A kill after last.pt recorded a new best but before best.pt was written: the best epoch is
    last.pt's own, so resume rebuilds best.pt from it."""
    out = finished_run(tmp_path, epochs=1)
    (out / "best.pt").unlink()
    assert main(argv(out, "--epochs", "1", "--resume")) == 0
    assert f"rebuilt {out / 'best.pt'}" in capsys.readouterr().out
    last, best = checkpoint.load(out / "last.pt"), checkpoint.load(out / "best.pt")
    assert best["epoch"] == 1 and all(torch.equal(last["model"][k], best["model"][k]) for k in last["model"])


def test_a_missing_best_checkpoint_is_not_rebuilt_from_a_stopped_epoch(tmp_path, monkeypatch, capsys):
    """Epoch 1 is the best; a signal stops epoch 2 after its first step, and best.pt is then deleted.
    last.pt still names epoch 1 as best.pt's (its own finished epochs), but holds the weights of the
    middle of epoch 2 (they differ from the deleted best.pt's): --resume must refuse (exit 2 naming
    best.pt) and write no best.pt, rather than rebuild it from those weights."""
    best_at_epoch_1(monkeypatch)
    real, polls = engine.train_epoch, []

    def stopped_after_step_1_of_epoch_2(*args):
        *rest, plan = args

        def stop():
            polls.append(plan.epoch)
            return signal.SIGTERM if plan.epoch == 1 else plan.stop()

        return real(*rest, dataclasses.replace(plan, stop=stop))

    monkeypatch.setattr(engine, "train_epoch", stopped_after_step_1_of_epoch_2)
    out = tmp_path / "run"
    assert main(argv(out)) == 143
    monkeypatch.setattr(engine, "train_epoch", real)
    last, best = checkpoint.load(out / "last.pt"), checkpoint.load(out / "best.pt")
    assert last["epoch"] == 1 and last["partial"]["step"] == 1 and last["best"]["epoch"] == best["epoch"] == 1
    assert any(not torch.equal(last["model"][k], best["model"][k]) for k in best["model"])
    (out / "best.pt").unlink()
    capsys.readouterr()
    assert main(argv(out, "--resume")) == 2
    one_line_error(capsys.readouterr().err, str(out / "best.pt"), "epoch 1", "restore")
    assert not (out / "best.pt").exists()


# --- settings that pass the checks but fail on the data or in memory ------------------------------

@pytest.mark.parametrize("extra, fragments", [
    (["--val-fraction", "0.99"], ["training split", "no samples", "--val-fraction"]),
    (["--seed", str(2**32)], ["seed", "4294967295"]),
    (["--input-size", "3000", "--dataset", "digits"], ["memory", "--input-size"]),  # 65 GB of resized digits
])
def test_settings_that_fail_past_the_checks_exit_2_without_a_run_folder(tmp_path, capsys, extra, fragments):
    """Each of these passes the argument checks and would then raise (ZeroDivisionError, numpy's
    seed bound, an allocation failure) with a traceback: it must exit 2 with one line and leave no
    run folder."""
    out = tmp_path / "run"
    try:
        code = main(argv(out, *extra))
    except SystemExit as e:  # argparse's exit for a value Config rejects (after its usage lines)
        code = e.code
    assert code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(("error: ", "python -m snn.train: error: ")) and all(f in last for f in fragments), last
    assert not out.exists()


def test_a_first_batch_that_does_not_fit_exits_2_without_a_run_folder(tmp_path, monkeypatch, capsys):
    """One sample fits, the first batch of 32 does not (a network whose forward fails to allocate
    beyond 4 samples, as a GPU too small for the batch would): exit 2 before the run folder."""
    real = prepare.build_model

    def small_memory(cfg, info):
        model = real(cfg, info)
        forward = model.forward

        def limited(x, T):
            if x.shape[0] > 4:
                raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {x.shape[0] * 2} GiB")
            return forward(x, T=T)

        model.forward = limited
        return model

    monkeypatch.setattr(prepare, "build_model", small_memory)
    assert main(argv(tmp_path / "run")) == 2
    one_line_error(capsys.readouterr().err, "first training batch (32 x (3, 8, 8)", "memory", "--batch-size")
    assert not (tmp_path / "run").exists()


def test_a_run_folder_name_too_long_for_the_file_system_exits_2(tmp_path, capsys):
    out = tmp_path / ("r" * 300)
    assert main(argv(out)) == 2
    one_line_error(capsys.readouterr().err, "255", "shorter --out")


# --- file modes ----------------------------------------------------------------------------------

def test_run_files_get_the_mode_of_the_umask(tmp_path):
    """Under umask 022 every run file is 0644: the atomic writes go through mkstemp, whose 0600 must
    not leak into the run files."""
    previous = os.umask(0o022)
    try:
        out = finished_run(tmp_path, epochs=1)
    finally:
        os.umask(previous)
    for name in ("config.json", "last.pt", "best.pt", "metrics.csv", "metrics.jsonl", "results.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name

