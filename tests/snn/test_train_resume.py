"""--resume continues exactly: a run SIGKILLed after an epoch's checkpoint and resumed ends with
the same bits (weights, optimizer state, metrics) as an uninterrupted run."""

import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import torch

from snn.train import checkpoint

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # both runs: the same thread count, so the same reductions
EPOCHS = 4
# CIFAR-10 files in the official pickle format: training samples get a random crop and flip drawn
# from torch's RNG, so the RNG states matter. tdBN (running statistics), SGD momentum, cosine LR,
# ESG and IM-Loss all carry state across epochs. An epoch takes about half a second.
ARGS = ["--dataset", "cifar10", "--data-option", "verify=false", "--width", "0.125", "--T", "2",
        "--batch-size", "32", "--epochs", str(EPOCHS), "--no-progress"]
PER_BATCH_FILE, TEST_SAMPLES = 40, 40


def write_cifar10(root):
    """Random 32x32 images in the layout of cifar-10-batches-py (5 training batches, a test batch, meta)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in [(f"data_batch_{i}", PER_BATCH_FILE) for i in range(1, 6)] + [("test_batch", TEST_SAMPLES)]:
        entry = {"data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8),
                 "labels": [int(c) for c in np.arange(n) % 10]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}, protocol=2))


def train(root, out, *extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "snn.train", *ARGS, "--data-root", str(root), "--out", str(out),
                             *extra], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_killed_run_resumes_bitwise(tmp_path):
    root, whole, killed = tmp_path / "data", tmp_path / "whole", tmp_path / "killed"
    write_cifar10(root)
    reference, victim = train(root, whole), train(root, killed)  # side by side: one core each
    deadline = time.monotonic() + 120
    while not (killed / "last.pt").exists():  # the first epoch's checkpoint: kill inside the next epoch
        assert victim.poll() is None, victim.communicate()[0]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    interrupted_at = checkpoint.load(killed / "last.pt")["epoch"]
    assert 1 <= interrupted_at < EPOCHS

    resumed = train(root, killed, "--resume")
    log = resumed.communicate(timeout=120)[0]
    assert resumed.returncode == 0, log
    assert f"resumed {killed / 'last.pt'} after epoch {interrupted_at}/{EPOCHS}" in log
    assert reference.wait(timeout=120) == 0, reference.communicate()[0]

    a, b = checkpoint.load(whole / "last.pt"), checkpoint.load(killed / "last.pt")
    assert a["epoch"] == b["epoch"] == EPOCHS
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    for i, (sa, sb) in enumerate(zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values())):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"]), i
    assert a["esg"] == b["esg"] and torch.equal(a["loader_generator"], b["loader_generator"])
    exact = ["lr", "K", "train_loss", "train_ce", "train_im", "train_acc", "val_acc", "test_acc"]
    pd.testing.assert_frame_equal(pd.read_csv(whole / "metrics.csv")[exact], pd.read_csv(killed / "metrics.csv")[exact])
    assert checkpoint.load(whole / "best.pt")["epoch"] == checkpoint.load(killed / "best.pt")["epoch"]
