"""What the training engine does when things go wrong: damaged or unreadable checkpoints, a write
that fails halfway, files left by a kill, settings that cannot run, divergence without IM-Loss,
and channels_last on CPU. Each failure exits with its documented code and one line naming the
fault; nothing damaged is trained on or written."""

import math
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from snn import models
from snn.dspike import first_conv
from snn.train import Config, ConfigError, WriteError, checkpoint, engine, main, prepare, run
from snn.train.loop import model_input

from ..conftest import save_onto_a_filling_disk

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def argv(out, *extra) -> list[str]:
    """A sub-second run on the synthetic set (4 classes, 3x8x8), 2 epochs."""
    return ["--dataset", "synthetic", "--width", "0.125", "--T", "2", "--epochs", "2", "--batch-size", "32",
            "--no-progress", "--out", str(out), *extra]


def one_line_error(err: str, *fragments: str) -> None:
    """err is exactly one line 'error: ...' holding every fragment, and no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, err)


def finished_run(tmp_path, epochs=2):
    """The out folder of a finished synthetic run."""
    out = tmp_path / "run"
    assert main(argv(out, "--epochs", str(epochs))) == 0
    return out


# --- checkpoints -------------------------------------------------------------------------------

def test_flipped_bytes_in_a_weight_are_refused(tmp_path, capsys):
    """16 bytes flipped inside a stored weight tensor: resuming must refuse the file (exit 2)."""
    out = finished_run(tmp_path, epochs=1)
    path = out / "last.pt"
    saved = checkpoint.load(path)["model"]
    name = next(k for k, t in saved.items() if t.dim() == 4)  # the first conv's weights [16, 3, 3, 3]
    weight = saved[name]
    raw = bytearray(path.read_bytes())
    data = weight.numpy().tobytes()
    at = raw.find(data)  # torch.save stores each tensor's bytes uncompressed in its zip archive
    assert at > 0 and raw.find(data, at + 1) < 0
    raw[at + 32: at + 48] = bytes(b ^ 0xFF for b in raw[at + 32: at + 48])
    path.write_bytes(bytes(raw))
    damaged = torch.load(path, weights_only=True)["model"][name]  # torch itself reads it
    assert not torch.equal(damaged, weight)
    capsys.readouterr()
    assert main(argv(out, "--resume")) == 2
    one_line_error(capsys.readouterr().err, str(path), "damaged", "SHA-256", "delete")


@pytest.mark.parametrize("content", ["truncated", "empty", "text", "bare-dict", "saved-dict"])
def test_unreadable_checkpoints_exit_2_naming_the_file(tmp_path, capsys, content):
    out = tmp_path / "run"
    if content == "truncated":
        out = finished_run(tmp_path, epochs=1)
        whole = (out / "last.pt").read_bytes()
        (out / "last.pt").write_bytes(whole[: len(whole) // 2])
    else:
        out.mkdir()
        path = out / "last.pt"
        if content == "empty":
            path.write_bytes(b"")
        elif content == "text":
            path.write_text("this is not a checkpoint\n")
        elif content == "bare-dict":
            torch.save({}, path)  # no digest
        else:
            checkpoint.save(path, {})  # a digest, but none of a run's entries
    capsys.readouterr()
    assert main(argv(out, "--resume")) == 2
    expected = {"truncated": "not a readable checkpoint", "empty": "not a readable checkpoint",
                "text": "not a readable checkpoint", "bare-dict": "no integrity digest",
                "saved-dict": "lacks ['config', 'epoch'"}[content]
    one_line_error(capsys.readouterr().err, str(out / "last.pt"), expected, "delete")


def test_save_failing_halfway_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """A disk that fills up in the middle of torch.save: the error names the file, the previous
    checkpoint still loads with its own contents, and no temporary file is left."""
    path = tmp_path / "last.pt"
    checkpoint.save(path, {"epoch": 1, "w": torch.arange(1000.0)})
    real_save = torch.save
    monkeypatch.setattr(torch, "save", save_onto_a_filling_disk(room=4096))
    with pytest.raises(WriteError, match=r"cannot write .*last\.pt: No space left on device"):
        checkpoint.save(path, {"epoch": 2, "w": torch.zeros(1000)})
    monkeypatch.setattr(torch, "save", real_save)
    kept = checkpoint.load(path)
    assert kept["epoch"] == 1 and torch.equal(kept["w"], torch.arange(1000.0))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_stale_temporary_files_are_removed_at_start_and_resume(tmp_path, capsys):
    """Full-size `.last.pt.*.tmp` files left by a kill during a write disappear when the run in that
    folder starts again or resumes; nothing else in the folder is touched."""
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / ".last.pt.k1ll3d.tmp").write_bytes(b"\x00" * 10_000)
    (fresh / "notes.txt").write_text("mine\n")
    (fresh / ".notes.txt.k1ll3d.tmp").write_text("not written by the trainer\n")
    assert main(argv(fresh, "--epochs", "1")) == 0
    assert sorted(p.name for p in fresh.glob(".*")) == [".lock", ".notes.txt.k1ll3d.tmp"]  # .lock: the run lock
    assert (fresh / "notes.txt").read_text() == "mine\n"

    out = finished_run(tmp_path, epochs=1)
    stale = [out / ".last.pt.a1b2c3.tmp", out / ".best.pt.d4e5f6.tmp", out / ".metrics.csv.g7h8.tmp"]
    for p in stale:
        p.write_bytes((out / "last.pt").read_bytes())
    assert main(argv(out, "--epochs", "1", "--resume")) == 0
    assert not any(p.exists() for p in stale)
    assert f"removed {stale[0]}" in capsys.readouterr().out


def test_metrics_are_rebuilt_from_the_checkpoint(tmp_path):
    """A kill after the last epoch's last.pt but before its metrics rows: resuming the finished run
    rewrites metrics.csv / metrics.jsonl with every epoch the checkpoint holds."""
    out = finished_run(tmp_path, epochs=2)
    history = checkpoint.load(out / "last.pt")["history"]
    assert len(history) == 2
    pd.DataFrame(history[:1]).to_csv(out / "metrics.csv", index=False)  # the files as of epoch 1
    (out / "metrics.jsonl").write_text((out / "metrics.jsonl").read_text().splitlines()[0] + "\n")
    assert main(argv(out, "--resume")) == 0
    table = pd.read_csv(out / "metrics.csv")
    assert list(table["epoch"]) == [1, 2]
    assert list(table["test_acc"]) == [row["test_acc"] for row in history]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


# --- settings that cannot run -----------------------------------------------------------------

@pytest.mark.parametrize("extra, fragment", [
    (["--data-option", "foo=1"], "unknown option(s) ['foo']"),
    (["--input-size", "2"], "input_size must be >= 4"),
    (["--device", "cuda"], "no usable CUDA device"),
    (["--channels-last", "--device", "cpu"], "--channels-last is refused on CPU"),
])
def test_settings_that_cannot_run_exit_2_without_a_run_folder(tmp_path, capsys, extra, fragment):
    if "cuda" in extra and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "run"
    assert main(argv(out, *extra)) == 2
    one_line_error(capsys.readouterr().err, fragment)
    assert not out.exists()


def test_unwritable_out_exits_2(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(argv(blocker / "run")) == 2
    one_line_error(capsys.readouterr().err, f"cannot use --out {blocker / 'run'}", "is a file")
    assert blocker.read_text() == ""


@pytest.mark.skipif(torch.cuda.is_available(), reason="the Triton backend runs on this machine's GPU")
def test_triton_backend_without_gpu_exits_2_before_the_run_folder(tmp_path):
    """Without CUDA and without the interpreter, backend triton fails in the first forward: that
    forward is run on one test sample before the run folder is created."""
    env = {k: v for k, v in ENV.items() if k != "TRITON_INTERPRET"}
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "snn.train", *argv(out, "--backend", "triton")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    one_line_error(proc.stderr, "backend='triton' needs a CUDA tensor")
    assert not out.exists()


# --- divergence ---------------------------------------------------------------------------------

def test_divergence_without_im_loss_exits_3_with_finite_checkpoints(tmp_path, capsys):
    """lr 1e6 without IM-Loss: the weights overflow while the cross-entropy stays finite (a NaN
    membrane gives 0 spikes). The run must stop with exit 3, and every checkpoint it kept must hold
    only finite values."""
    out = tmp_path / "run"
    assert main(argv(out, "--epochs", "3", "--im-lambda", "0", "--lr", "1e6")) == 3
    one_line_error(capsys.readouterr().err, "non-finite", "training stopped before")
    for name in ("last.pt", "best.pt"):
        if (out / name).exists():
            state = checkpoint.load(out / name)
            for key, t in state["model"].items():
                if t.is_floating_point():
                    assert torch.isfinite(t).all(), (name, key)


def test_nan_weight_is_caught_by_the_gradient_check(tmp_path, monkeypatch, capsys):
    """A NaN put into the first conv's weights before epoch 2, IM-Loss off: the loss stays finite
    (0 spikes), so the gradient norm must stop the run at epoch 2, step 1, keeping epoch 1."""
    real = engine.train_epoch

    def poisoned(net, model, loader, optimizer, s, ctx, plan):
        if plan.epoch == 1:
            with torch.no_grad():
                first_conv(model).weight[0, 0, 0, 0] = math.nan
        return real(net, model, loader, optimizer, s, ctx, plan)

    monkeypatch.setattr(engine, "train_epoch", poisoned)
    out = tmp_path / "run"
    assert main(argv(out, "--im-lambda", "0")) == 3
    one_line_error(capsys.readouterr().err, "non-finite gradient", "at epoch 2/2, step 1/4",
                   "the last checkpoint holds epoch 1")
    assert checkpoint.load(out / "last.pt")["epoch"] == 1


# --- channels_last on CPU ---------------------------------------------------------------------

def test_resnet_shortcut_gradient_as_the_trainer_runs_it_on_cpu():
    """The weight gradient of ResNet-19's 1x1 stride-2 shortcut conv, in the memory layout the
    trainer feeds it on CPU, equals the float64 sum dW[o, c] = sum_{b,h,w} g[b, o, h, w] x[b, c, 2h, 2w]."""
    cfg = Config(model="resnet19", dataset="synthetic", device="cpu")
    settings = prepare.step_settings(cfg, torch.device("cpu"))
    assert not settings.channels_last
    net = models.build("resnet19", 10, in_channels=3, norm="none", width=0.125, input_size=8)
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)
                and m.stride == (2, 2))
    g = torch.Generator().manual_seed(0)
    x = model_input(torch.randn(16, conv.in_channels, 8, 8, generator=g), settings).requires_grad_()
    y = conv(x)
    upstream = torch.randn(y.shape, generator=g)
    y.backward(upstream)
    expected = torch.einsum("bohw,bchw->oc", upstream.double(), x.detach().double()[:, :, ::2, ::2])
    torch.testing.assert_close(conv.weight.grad[:, :, 0, 0].double(), expected, rtol=1e-5, atol=1e-5)


def test_run_refuses_channels_last_on_cpu(tmp_path):
    with pytest.raises(ConfigError, match="refused on CPU"):
        run(Config(dataset="synthetic", width=0.125, epochs=1, channels_last=True, device="cpu", progress=False,
                   out=str(tmp_path / "run")))
    assert not (tmp_path / "run").exists()


class _Writes:
    """A stderr that records each write call (each becomes one write(2) on an unbuffered stream)."""

    def __init__(self):
        self.calls = []

    def write(self, text):
        self.calls.append(text)
        return len(text)

    def flush(self):
        pass


def test_each_reported_line_is_one_write(monkeypatch):
    """The line a process stops with is written in one call, newline included: processes that share
    stderr (torchrun's ranks, stopped by one signal at the same step) cannot splice their lines."""
    from snn.train.cli import Report

    stderr = _Writes()
    monkeypatch.setattr("sys.stderr", stderr)
    monkeypatch.setenv("RANK", "1")
    assert Report()(WriteError("cannot write last.pt: No space left on device")) == 1
    assert stderr.calls == ["error (rank 1): cannot write last.pt: No space left on device\n"]
