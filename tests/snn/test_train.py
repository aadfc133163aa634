"""The training engine in one process: learning on digits, metrics and files, surrogate modes,
configuration errors, checkpoints, the non-finite guard and the missing-dataset exit."""

import json
import math
import os
import random
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from snn import models
from snn.data import build_datasets, make_loader
from snn.esg import esg_k
from snn.train import Config, ConfigError, main, parse_surrogate, run
from snn.train import checkpoint, engine
from snn.train.config import Surrogate
from snn.train.distributed import Context
from snn.train.loop import StepSettings, evaluate

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a small shared CPU, two OpenMP threads can run 10x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny(tmp_path, **overrides) -> Config:
    """A sub-second run on the synthetic set (4 classes, 3x8x8)."""
    fields = dict(dataset="synthetic", model="cifarnet", width=0.125, T=2, epochs=2, batch_size=32,
                  progress=False, out=str(tmp_path / "run"))
    return Config(**{**fields, **overrides})


def test_digits_two_epochs_learn(tmp_path):
    results = run(Config(input_size=16, width=0.125, epochs=2, progress=False, out=str(tmp_path / "digits")))
    assert results.final_test_acc > 0.6  # 10 classes: chance is 0.1
    assert results.epochs == 2 and len(results.history) == 2
    out = tmp_path / "digits"
    for name in ("config.json", "last.pt", "best.pt", "metrics.csv", "metrics.jsonl", "results.json"):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*.tmp"))  # no temporary file left by the atomic writes
    table = pd.read_csv(out / "metrics.csv")
    assert list(table["epoch"]) == [1, 2]
    rates = [c for c in table.columns if c.startswith("rate/")]
    assert len(rates) == 7  # cifarnet: 5 conv LIFs + 2 FC LIFs
    assert ((table[rates] >= 0) & (table[rates] <= 1)).all().all()
    for column in ("train_loss", "train_ce", "train_im", "train_acc", "val_acc", "test_acc", "epoch_seconds",
                   "images_per_s", "peak_mem_mib"):
        assert table[column].notna().all(), column
    np.testing.assert_allclose(table["train_loss"], table["train_ce"] + 2.0 * table["train_im"], rtol=1e-6)
    np.testing.assert_allclose(table["K"], [esg_k(0, 2), esg_k(1, 2)])  # ESG: K(0) = 1, then eq. 15
    assert [json.loads(line)["test_acc"] for line in (out / "metrics.jsonl").read_text().splitlines()] == \
        list(table["test_acc"])
    best = checkpoint.load(out / "best.pt")
    assert best["epoch"] == results.best_val_epoch
    assert results.test_acc_at_best_val == results.history[results.best_val_epoch - 1]["test_acc"]
    assert results.best_test_acc == max(r["test_acc"] for r in results.history)
    summary = json.loads((out / "results.json").read_text())
    assert summary["final_test_acc"] == results.final_test_acc


@pytest.mark.parametrize("surrogate, lif, alpha", [("tanh:5", "tanh", 5.0), ("rect", "rect", 1.0)])
def test_fixed_surrogates(tmp_path, surrogate, lif, alpha):
    results = run(tiny(tmp_path, surrogate=surrogate, epochs=1))
    layers = [m for m in results.model.modules() if hasattr(m, "surrogate")]
    assert {(m.surrogate, m.alpha) for m in layers} == {(lif, alpha)}
    assert results.history[0]["K"] == (alpha if lif == "tanh" else None)


def test_dspike_selection_logged(tmp_path):
    cfg = tiny(tmp_path, surrogate="dspike", data_options={"channels": 1}, dspike_eps=0.05)
    results = run(cfg)
    first = next(m for m in results.model.modules() if isinstance(m, torch.nn.Conv2d))
    for row in results.history:
        assert row["dspike_forwards"] == 2 * first.weight.numel()
        assert row["dspike_seconds"] > 0 and row["dspike_b"] > 0
    b = results.history[-1]["dspike_b"]
    assert all(m.alpha == b for m in results.model.modules() if getattr(m, "surrogate", None) == "dspike")
    assert results.history[0]["dspike_b"] in (2.5, 3.0, 3.5)  # one step of Algorithm 1 from b0 = 3
    assert checkpoint.load(tmp_path / "run" / "last.pt")["dspike_b"] == b


def test_parse_surrogate():
    assert parse_surrogate("esg", k_min=2.0) == Surrogate("tanh", 2.0, "esg")
    assert parse_surrogate("tanh:7.5") == Surrogate("tanh", 7.5, None)
    assert parse_surrogate("rect:0.5").alpha == 0.5
    assert parse_surrogate("dspike", dspike_b0=4.0).schedule == "dspike"
    for bad in ("tanh", "tanh:-1", "tanh:x", "rect:0", "sigmoid", "esg:3", ""):
        with pytest.raises(ValueError, match="surrogate must be one of"):
            parse_surrogate(bad)


@pytest.mark.parametrize("field, value, message", [
    ("model", "resnet50", "model must be one of"), ("lr", 0.0, r"lr must be a finite real number in \(0, inf\]"),
    ("epochs", 0, "epochs must be an int >= 1"), ("T", 2.0, "T must be an int"), ("val_fraction", 1.0, "val_fraction"),
    ("k_min", 20.0, "k_min must be <= k_max"), ("surrogate", "tanh", "surrogate must be one of"),
    ("clip_grad", -1.0, "clip_grad"), ("amp", 1, "amp must be a bool")])
def test_config_errors_name_the_field(field, value, message):
    with pytest.raises((TypeError, ValueError), match=message):
        Config(**{field: value})


def test_cli_rejects_bad_value(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--surrogate", "tanh:-2"])
    assert e.value.code == 2
    assert "surrogate must be one of" in capsys.readouterr().err


def test_presets_document_the_recipe():
    cfg = Config.from_preset("paper-cifar10", epochs=300)
    assert (cfg.model, cfg.dataset, cfg.T, cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs, cfg.im_lambda,
            cfg.surrogate, cfg.norm, cfg.width) == (
        "resnet19", "cifar10", 4, "sgd", 0.1, 128, 300, 2.0, "esg", "tdbn", 1.0)
    with pytest.raises(ValueError, match="preset must be one of"):
        Config.from_preset("paper-mnist")


def test_checkpoint_roundtrip_and_rng(tmp_path):
    path = tmp_path / "ck.pt"
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    state = {"rng": checkpoint.capture_rng(), "w": torch.arange(3.0), "history": [{"a": 1.5, "b": None}]}
    expected = (random.random(), np.random.rand(), torch.rand(2))
    checkpoint.save(path, state)
    checkpoint.save(path, state)  # overwrite in place
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]
    loaded = checkpoint.load(path)
    assert loaded["history"] == state["history"] and torch.equal(loaded["w"], state["w"])
    checkpoint.restore_rng(loaded["rng"])
    again = (random.random(), np.random.rand(), torch.rand(2))
    assert again[:2] == expected[:2] and torch.equal(again[2], expected[2])


def test_refuses_to_overwrite_or_resume_other_settings(tmp_path):
    run(tiny(tmp_path, epochs=1))
    with pytest.raises(FileExistsError, match="pass --resume"):
        run(tiny(tmp_path, epochs=1))
    with pytest.raises(ConfigError, match=r"lr: 0.1 -> 0.2"):
        run(tiny(tmp_path, epochs=1, lr=0.2, resume=True))
    again = run(tiny(tmp_path, epochs=1, resume=True))  # finished: nothing left to train
    assert again.epochs == 1


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path, monkeypatch, capsys):
    """A NaN loss injected at epoch 2, step 2: exit code 3, a message naming them, epoch 1 kept."""
    cfg = tiny(tmp_path, epochs=3)
    steps = math.ceil(116 / cfg.batch_size)  # synthetic: 128 samples, 12 held out for validation
    real, calls = F.cross_entropy, []

    def poisoned(logits, target, *args, **kwargs):
        loss = real(logits, target, *args, **kwargs)
        if torch.is_grad_enabled():
            calls.append(1)
            if len(calls) == steps + 2:
                return loss * float("nan")
        return loss

    monkeypatch.setattr(F, "cross_entropy", poisoned)
    argv = ["--dataset", "synthetic", "--width", "0.125", "--epochs", "3", "--batch-size", "32", "--no-progress",
            "--out", str(tmp_path / "run")]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "non-finite loss nan" in err and f"at epoch 2/3, step 2/{steps}" in err
    last = checkpoint.load(tmp_path / "run" / "last.pt")
    assert last["epoch"] == 1 and len(last["history"]) == 1
    assert all(torch.isfinite(t).all() for t in last["model"].values() if t.is_floating_point())
    assert len(pd.read_csv(tmp_path / "run" / "metrics.csv")) == 1


def test_missing_dataset_message_and_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "snn.train", "--dataset", "cifar10", "--data-root",
                           str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode == 2
    assert "cifar10: looked in" in proc.stderr and "--download" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "last.pt").exists()


def test_best_checkpoint_is_chosen_by_validation_accuracy(tmp_path, monkeypatch):
    """Per-epoch (validation, test) accuracies (0.6, 0.3), (0.5, 0.5), (0.4, 0.7): best.pt must hold
    epoch 1 (best validation), while the test-selected figure is epoch 3's 0.7."""
    val, test = iter([0.6, 0.5, 0.4]), iter([0.3, 0.5, 0.7])

    def scripted(model, loader, s, ctx, rates=False):  # the trainer evaluates validation first, then test with rates
        return (next(test), {}) if rates else (next(val), {})

    monkeypatch.setattr(engine, "evaluate", scripted)
    results = run(tiny(tmp_path, epochs=3))
    assert checkpoint.load(tmp_path / "run" / "best.pt")["epoch"] == 1
    assert (results.best_val_epoch, results.best_val_acc, results.test_acc_at_best_val) == (1, 0.6, 0.3)
    assert (results.best_test_epoch, results.best_test_acc, results.final_test_acc) == (3, 0.7, 0.7)


def test_evaluation_leaves_normalization_statistics_unchanged():
    """Evaluating a network left in training mode must not move tdBN's running statistics or
    num_batches_tracked (it runs in eval mode); a training-mode forward of the same data does."""
    torch.manual_seed(0)
    model = models.build("cifarnet", 4, in_channels=3, norm="tdbn", width=0.125, input_size=8).train()
    _, _, test_set, _ = build_datasets("synthetic", val_fraction=0.0)
    loader = make_loader(test_set, 16, train=False)
    cpu = torch.device("cpu")
    settings = StepSettings(T=2, device=cpu, amp=False, channels_last=False, im_lambda=0.0, clip_grad=None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    evaluate(model, loader, settings, Context(0, 1, cpu, owns_group=False), rates=True)
    after = model.state_dict()
    for name, value in before.items():
        assert torch.equal(after[name], value), name
    model.train()(next(iter(loader))[0], T=2)
    assert not torch.equal(model.state_dict()["features.0.1.running_mean"], before["features.0.1.running_mean"])
    assert model.state_dict()["features.0.1.num_batches_tracked"] == before["features.0.1.num_batches_tracked"] + 1


def test_each_epoch_trains_on_a_new_permutation_with_the_cosine_lr(tmp_path, monkeypatch):
    """Every epoch draws a new order of the 116 training samples (a permutation, different each
    epoch), and the lr column is cosine annealing: 0.05 (1 + cos(pi e / E)) for lr 0.1, E = 4."""
    orders, real = [], engine.make_loader

    def recording(dataset, batch_size, train, **kwargs):
        if train:
            orders.append(list(kwargs["sampler"]))  # the order the loader will draw
        return real(dataset, batch_size, train=train, **kwargs)

    monkeypatch.setattr(engine, "make_loader", recording)
    results = run(tiny(tmp_path, epochs=4, lr=0.1))
    assert len(orders) == 4
    for order in orders:
        assert sorted(order) == list(range(116))  # synthetic: 128 samples, 12 held out for validation
    assert len({tuple(order) for order in orders}) == 4
    expected = [0.05 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]  # 0.1, 0.0854, 0.05, 0.0146
    assert [row["lr"] for row in results.history] == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("field, inside, outside", [
    ("decay", 1.0, math.nextafter(1.0, 2.0)), ("decay", 0.0, -0.0 - 5e-324), ("seed", 0, -1),
    ("seed", 2 ** 32 - 1, 2 ** 32), ("val_fraction", math.nextafter(1.0, 0.0), 1.0), ("lr", 5e-324, 0.0),
    ("epochs", 1, 0), ("workers", 0, -1)])
def test_config_ranges_at_their_exact_edges(field, inside, outside):
    """Each range check at its edge and one step outside (edges from the Config docstring)."""
    assert getattr(Config(**{field: inside}), field) == inside
    with pytest.raises(ValueError, match=field):
        Config(**{field: outside})
