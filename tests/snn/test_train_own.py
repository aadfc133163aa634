"""A researcher's own network and data through the training engine: `--model MODULE:FACTORY` (an
snn.LIF network and a converted SpikingJelly one) trains, resumes bit for bit and loads for
inference with snn.load; `--dataset folder` trains on an ImageFolder tree written here; the
per-epoch spike rates (spike_rates.csv, against snn.SpikeRateMonitor) and their plot are written;
every bad input exits 2 with one line before the run folder exists."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

import snn
from snn.data import DatasetCorrupt, build_datasets, make_loader
from snn.train import CheckpointError, Config, checkpoint, engine, main, run, spikes
from snn.train.inference import CannotRebuild

from ..kernels.lif_check import runnable
from .test_train_failures import one_line_error

LIF_NET, SJ_NET = "tests.snn.factories:lif_net", "tests.snn.factories:sj_net"


def argv(out, *extra) -> list[str]:
    """A sub-second run on the synthetic set (4 classes, 3x8x8), 2 epochs."""
    return ["--dataset", "synthetic", "--T", "2", "--epochs", "2", "--batch-size", "32", "--lr", "0.05",
            "--no-progress", "--out", str(out), *extra]


class _StopAfterEpoch(BaseException):
    """Ends the process's work where it is raised, as a kill would: no handler of the run catches
    or reports it (a BaseException that is neither an Exception nor a KeyboardInterrupt)."""


def _stop_after_first_epoch(monkeypatch):
    """Make the next run stop right after epoch 1's files (last.pt) are written, as a kill would."""
    summary = engine.metrics.summary

    def stop(row, epochs):
        if row["epoch"] == 1:
            raise _StopAfterEpoch
        return summary(row, epochs)

    monkeypatch.setattr(engine.metrics, "summary", stop)


def _test_set():
    _, _, test, _ = build_datasets("synthetic", val_fraction=0.1, seed=0)
    return test


def _accuracy(model, data, T) -> float:
    x, y = next(iter(make_loader(data, len(data), train=False)))
    with torch.no_grad():
        return (model(x, T=T).argmax(1) == y).double().mean().item()


@pytest.mark.parametrize("factory", [LIF_NET, SJ_NET])
def test_a_factory_model_trains_resumes_bitwise_and_loads(tmp_path, monkeypatch, capsys, factory):
    if factory == SJ_NET:
        pytest.importorskip("spikingjelly")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(argv(whole, "--model", factory)) == 0
    saved = json.loads((whole / "config.json").read_text())
    assert saved["model"] == factory and checkpoint.load(whole / "last.pt")["config"]["model"] == factory

    with monkeypatch.context() as m:
        _stop_after_first_epoch(m)
        with pytest.raises(_StopAfterEpoch):
            main(argv(parts, "--model", factory))
    assert checkpoint.load(parts / "last.pt")["epoch"] == 1
    assert main(argv(parts, "--model", factory, "--resume")) == 0
    a, b = (checkpoint.load(p / "last.pt")["model"] for p in (whole, parts))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    history = pd.read_csv(whole / "metrics.csv")
    for backend in ("naive", runnable("cpu")[0]):  # the reference and a fused backend
        model = snn.load(whole / "last.pt", backend=backend)
        assert not model.training and model.T == 2 and len(model.classes) == 4
        assert all(layer.backend == backend for layer in snn.lif_layers(model))
        assert _accuracy(model, _test_set(), model.T) == pytest.approx(history["test_acc"].iloc[-1])
    best = snn.load(whole / "best.pt")
    epoch = int(history["val_acc"].idxmax())
    assert _accuracy(best, _test_set(), 2) == pytest.approx(history["test_acc"].iloc[epoch])

    capsys.readouterr()
    other = factory.replace(":lif_net", ":lif_net_wide").replace(":sj_net", ":lif_net")
    assert main(argv(whole, "--model", other, "--resume")) == 2
    one_line_error(capsys.readouterr().err, "cannot resume", f"model: {factory!r} -> {other!r}")


def test_load_refuses_what_it_cannot_rebuild(tmp_path):
    out = tmp_path / "run"
    assert main(argv(out, "--model", LIF_NET, "--epochs", "1")) == 0
    state = checkpoint.load(out / "last.pt")
    gone = tmp_path / "gone.pt"
    checkpoint.save(gone, {**state, "config": {**state["config"], "model": "no_such_package.nets:make"}})
    with pytest.raises(CannotRebuild, match="no_such_package.*does not import.*importable here") as e:
        snn.load(gone)
    assert "\n" not in str(e.value) and e.value.exit_code == 2
    old = tmp_path / "old.pt"
    checkpoint.save(old, {k: v for k, v in state.items() if k != "model_info"})
    with pytest.raises(CannotRebuild, match="does not record the data's shape"):
        snn.load(old)
    other = tmp_path / "other.pt"
    checkpoint.save(other, {**state, "config": {**state["config"], "model": "tests.snn.factories:lif_net_wide"}})
    with pytest.raises(CannotRebuild, match="weights do not fit"):
        snn.load(other)
    with pytest.raises(CheckpointError, match="no such file"):
        snn.load(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="backend"):
        snn.load(out / "last.pt", backend="gpu")


def test_a_paper_architecture_loads_too(tmp_path):
    out = tmp_path / "run"
    results = run(Config(dataset="synthetic", width=0.125, T=2, epochs=1, batch_size=32, progress=False, out=str(out)))
    model = snn.load(out / "last.pt", backend="torch")
    assert isinstance(model, snn.models.SpikingNet)
    assert _accuracy(model, _test_set(), 2) == pytest.approx(results.final_test_acc)


def test_spike_rate_csv_matches_the_monitor_and_the_plot_is_written(tmp_path):
    out = tmp_path / "run"
    results = run(Config(model=LIF_NET, dataset="synthetic", T=2, epochs=2, batch_size=32, progress=False,
                         out=str(out)))
    rates = pd.read_csv(out / "spike_rates.csv")
    assert list(rates.columns) == ["epoch", "layer", "index", "rate"]
    assert list(rates["epoch"]) == [1, 1, 2, 2] and list(rates["layer"]) == ["net.lif1", "net.lif2"] * 2
    model = results.model.eval()
    x, _ = next(iter(make_loader(_test_set(), 64, train=False)))
    with snn.SpikeRateMonitor(model) as monitor, torch.no_grad():
        model(x, T=2)
    last = rates[rates["epoch"] == 2].set_index("layer")["rate"].to_dict()
    assert last == pytest.approx(monitor.rates(), abs=1e-7)
    # an independent count: the spikes of each LIF summed over its outputs
    counts = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: counts.__setitem__(n, (o.sum().item(), o.numel())))
             for n, m in model.named_modules() if isinstance(m, snn.LIF)]
    with torch.no_grad():
        model(x, T=2)
    for h in hooks:
        h.remove()
    assert last == pytest.approx({n: s / c for n, (s, c) in counts.items()}, abs=1e-7)
    assert 0 < max(last.values())
    png = (out / "spike_rates.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


def test_a_model_without_lif_trains_without_im_loss(tmp_path):
    out = tmp_path / "run"
    assert main(argv(out, "--model", "tests.snn.factories:no_lif", "--im-lambda", "0", "--surrogate", "tanh:2")) == 0
    assert pd.read_csv(out / "spike_rates.csv").empty and not (out / "spike_rates.png").exists()


def _write_tree(root, classes=("circle", "square", "stripes"), per_class=10, size=12, empty=()):
    """An ImageFolder tree of PNG files: each class a distinct colour, with noise."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        if name in empty:
            continue
        for i in range(per_class):
            pixels = np.clip(rng.normal(40 + 80 * label, 30, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def test_an_image_folder_tree_trains(tmp_path):
    tree = _write_tree(tmp_path / "pictures")
    out = tmp_path / "run"
    assert main(["--dataset", "folder", "--data-root", str(tree), "--input-size", "8", "--width", "0.125", "--T", "2",
                 "--epochs", "2", "--batch-size", "8", "--no-progress", "--out", str(out)]) == 0
    train, val, test, info = build_datasets("folder", root=tree, val_fraction=0.1, seed=0, size=8)
    assert info.classes == ("circle", "square", "stripes") and info.size == (8, 8) and info.in_channels == 3
    assert len(test) == 6 and np.bincount(test.targets).tolist() == [2, 2, 2]  # 20 % of each class
    assert len(train) + len(val) == 24 and train[0][0].shape == (3, 8, 8)
    again = build_datasets("folder", root=tree, val_fraction=0.1, seed=5, size=8)[2]
    assert [s for s, _ in test.base.dataset.samples] == [s for s, _ in again.base.dataset.samples]
    assert list(test.base.indices) == list(again.base.indices)  # the test split does not follow the seed
    seen = {int(i) for part in (train, val) for i in np.asarray(part.base.indices)[part.indices]}
    assert not set(test.base.indices) & seen and len(seen) == 24  # test images are none of the training ones
    assert [test[i][1] for i in range(len(test))] == list(test.targets)
    grey = build_datasets("folder", root=tree, val_fraction=0, size=6, channels=1, mean=0.5, std="0.25")[0][0][0]
    assert grey.shape == (1, 6, 6)
    assert len(pd.read_csv(out / "metrics.csv")) == 2 and (out / "spike_rates.png").exists()


def test_a_split_image_folder_tree_keeps_its_split(tmp_path):
    _write_tree(tmp_path / "p" / "train", per_class=4)
    _write_tree(tmp_path / "p" / "test", per_class=2)
    train, val, test, info = build_datasets("folder", root=tmp_path / "p", val_fraction=0.25, seed=0, size=4)
    assert (len(train), len(val), len(test)) == (9, 3, 6) and info.num_classes == 3


@pytest.mark.parametrize("empty", ["circle", "stripes"])  # the first and the last class
def test_an_empty_class_folder_is_named(tmp_path, empty):
    tree = _write_tree(tmp_path / "p", per_class=2, empty=(empty,))
    with pytest.raises(DatasetCorrupt, match=f"class folder {tree / empty} holds no image"):
        build_datasets("folder", root=tree)


def test_spike_rate_rows_keep_silent_layers():
    history = [{"epoch": 1, "lr": 0.1, "rate/a": 0.0, "rate/b": 0.25}, {"epoch": 2, "rate/a": 0.5, "rate/b": 0.0}]
    assert spikes.table(history) == [(1, "a", 0, 0.0), (1, "b", 1, 0.25), (2, "a", 0, 0.5), (2, "b", 1, 0.0)]


def test_an_undecodable_image_is_named(tmp_path):
    tree = _write_tree(tmp_path / "p", per_class=3)
    (tree / "square" / "1.png").write_bytes(b"not a png")
    train, _, test, _ = build_datasets("folder", root=tree, val_fraction=0, size=4)
    with pytest.raises(DatasetCorrupt, match=r"folder: .*1.png is not a readable image"):
        [train[i] for i in range(len(train))] + [test[i] for i in range(len(test))]


@pytest.mark.parametrize("case", ["does-not-import", "no-attribute", "not-callable", "raises", "not-a-module",
                                  "no-lif-with-im-loss", "no-lif-with-esg", "empty-class-folder", "no-class-folder"])
def test_bad_input_exits_2_with_one_line_before_the_run_folder(tmp_path, capsys, case):
    out = tmp_path / "run"
    if case == "empty-class-folder":
        _write_tree(tmp_path / "p", per_class=2, empty=("square",))
    (tmp_path / "p").mkdir(exist_ok=True)
    extra, fragments = {
        "does-not-import": (["--model", "no_such_package.nets:make"], ["no_such_package", "does not import"]),
        "no-attribute": (["--model", "tests.snn.factories:nothing"], ["has no attribute 'nothing'"]),
        "not-callable": (["--model", "tests.snn.factories:NOT_CALLABLE"], ["not a callable"]),
        "raises": (["--model", "tests.snn.factories:broken"], ["failed: RuntimeError: cannot build for 4 classes"]),
        "not-a-module": (["--model", "tests.snn.factories:not_a_module"], ["returned a str, not a torch.nn.Module"]),
        "no-lif-with-im-loss": (["--model", "tests.snn.factories:no_lif"], ["no snn.LIF layer", "--im-lambda 0"]),
        "no-lif-with-esg": (["--model", "tests.snn.factories:no_lif", "--im-lambda", "0"], ["ESG cannot schedule"]),
        "empty-class-folder": (["--dataset", "folder", "--data-root", str(tmp_path / "p")],
                               ["class folder", "square holds no image"]),
        "no-class-folder": (["--dataset", "folder", "--data-root", str(tmp_path / "p")], ["holds no class folder"]),
    }[case]
    capsys.readouterr()
    assert main(argv(out, *extra)) == 2
    one_line_error(capsys.readouterr().err, *fragments)
    assert not out.exists()


def test_the_command_line_exits_2_on_a_factory_that_does_not_import(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-m", "snn.train", *argv(out, "--model", "no_such_package:make")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    one_line_error(done.stderr, "does not import")
    assert not out.exists()
    help_text = subprocess.run([sys.executable, "-m", "snn.train", "--help"], capture_output=True, text=True,
                               env=env, timeout=120).stdout
    assert "spike_rates.csv" in help_text and "spike_rates.png" in help_text and "MODULE:FACTORY" in help_text


def test_a_factory_model_trains_under_ddp(tmp_path):
    """Two hand-launched ranks (the variables torchrun sets, gloo) train lif_net; rank 0's last.pt
    holds both ranks' RNGs and weights that match one process with the same global batch (lif_net
    has no batch norm; tolerance as in test_train_ddp)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd(), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port), "WORLD_SIZE": "2"}
    ranks = [subprocess.Popen([sys.executable, "-m", "snn.train", *argv(ddp, "--model", LIF_NET)],
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    errors = [p.communicate(timeout=180)[1] for p in ranks]
    assert [p.returncode for p in ranks] == [0, 0], errors
    assert main(argv(single, "--model", LIF_NET)) == 0
    saved, one = (checkpoint.load(p / "last.pt") for p in (ddp, single))
    assert len(saved["rng"]) == 2 and saved["epoch"] == 2 and saved["config"]["model"] == LIF_NET
    for name, w in one["model"].items():
        torch.testing.assert_close(saved["model"][name], w, rtol=1e-5, atol=1e-6)
