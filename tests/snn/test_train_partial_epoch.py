"""Runs stopped by a signal and resumed, with 2 data-loader workers (the setting of CUDA runs, whose
augmentation draws come from worker seeds that the loader's generator drives). Stopped after an
epoch, --resume ends with the same bits as an uninterrupted run. Stopped twice inside an epoch,
the steps are counted from the epoch's start, the epoch's seconds include those before each stop,
the checkpoints hold the loader generator as the epoch began, and the run ends with the same bits
as an uninterrupted one."""

import dataclasses
import os
import shutil
import signal
import time

import pytest
import torch

from snn.train import checkpoint, engine, run
from snn.train.stop import Interrupted

from .test_train_runfolder import small_cifar

WORKERS = 2
STEPS = 6  # 200 training images, 10% held out for validation: ceil(180 / 32) steps per epoch
FIRST_STOP, SECOND_STOP = 2, 4  # steps of epoch 2 done at each stop
EARLIER_SECONDS = 1000.0  # written into the second stop's checkpoint as the seconds trained before it


def stopping_after(polls: int, epoch: int, at_the_epoch_end: bool = False):
    """engine.train_epoch that asks to stop (SIGTERM) at the polls-th step boundary of epoch (0-based)
    in this process; plan.stop is polled after every step but an epoch's last. at_the_epoch_end: a
    real SIGTERM to this process at that poll instead, which the run sees after the epoch's last step."""
    real, calls = engine.train_epoch, []

    def train_epoch(*args):
        *rest, plan = args

        def stop():
            calls.append(plan.epoch)
            if plan.epoch == epoch and calls.count(epoch) == polls:
                if not at_the_epoch_end:
                    return signal.SIGTERM
                os.kill(os.getpid(), signal.SIGTERM)  # its handler only records it
                return 0
            return plan.stop()

        return real(*rest, dataclasses.replace(plan, stop=stop))

    return train_epoch


def stopped(cfg, train_epoch) -> tuple[str, dict]:
    """Run cfg with train_epoch in the engine: the Interrupted message and the last.pt it left."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine, "train_epoch", train_epoch)
        with pytest.raises(Interrupted) as interrupted:
            run(cfg)
    return str(interrupted.value), checkpoint.load(os.path.join(cfg.out, "last.pt"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three 2-epoch runs with 2 loader workers: uninterrupted ("whole"); stopped after epoch 1 and
    resumed ("boundary"); and from that run's epoch-1 checkpoint, resumed, stopped at step 2 of
    epoch 2, resumed and stopped again 2 steps later, then resumed to the end ("cut")."""
    tmp = tmp_path_factory.mktemp("partial")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        def cfg(name, **kw):
            return small_cifar(tmp / name, epochs=2, workers=WORKERS, data_root=str(tmp / "whole" / "data"), **kw)

        found = {"whole": run(cfg("whole"))}
        found["boundary_stop"] = stopped(cfg("boundary"), stopping_after(STEPS - 1, epoch=0, at_the_epoch_end=True))
        shutil.copytree(tmp / "boundary" / "run", tmp / "cut" / "run")
        found["boundary"] = run(cfg("boundary", resume=True))
        found["stops"] = [stopped(cfg("cut", resume=True), stopping_after(polls, epoch=1))
                          for polls in (FIRST_STOP, SECOND_STOP - FIRST_STOP)]
        last = tmp / "cut" / "run" / "last.pt"
        state = checkpoint.load(last)
        state["partial"]["seconds"] = EARLIER_SECONDS  # a long first part; save() writes its new digest
        checkpoint.save(last, state)
        start = time.monotonic()
        found["cut"] = run(cfg("cut", resume=True))
        found["cut_wall"] = time.monotonic() - start
        found["last"] = {name: checkpoint.load(tmp / name / "run" / "last.pt") for name in ("whole", "boundary", "cut")}
        return found
    finally:
        torch.set_num_threads(threads)


def assert_same_training(a: dict, b: dict) -> None:
    """Two last.pt hold the same weights, momentum and loader generator, bit for bit."""
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    for i, (sa, sb) in enumerate(zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values())):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"]), i
    assert torch.equal(a["loader_generator"], b["loader_generator"])


EXACT = ["lr", "K", "train_loss", "train_ce", "train_im", "train_acc", "val_acc", "test_acc"]


def generator_after(draws: int) -> torch.Tensor:
    """The state of the run's loader generator (seed 0) after `draws` loaders drew their workers'
    base seed from it (one int64 each, as torch's DataLoader draws it), worked out here."""
    g = torch.Generator().manual_seed(0)
    for _ in range(draws):
        torch.empty((), dtype=torch.int64).random_(generator=g)
    return g.get_state()


def test_a_run_stopped_after_an_epoch_with_loader_workers_resumes_bitwise(runs):
    """SIGTERM during epoch 1's last step: the run stops after the epoch, and --resume (2 workers,
    seeded from the restored generator) ends with the uninterrupted run's bits and metrics."""
    message, saved = runs["boundary_stop"]
    assert "after epoch 1/2" in message and saved["epoch"] == 1 and saved.get("partial") is None
    assert torch.equal(saved["loader_generator"], generator_after(1))
    assert_same_training(runs["last"]["whole"], runs["last"]["boundary"])
    assert torch.equal(runs["last"]["whole"]["loader_generator"], generator_after(2))
    for ra, rb in zip(runs["whole"].history, runs["boundary"].history, strict=True):
        assert [ra[k] for k in EXACT] == [rb[k] for k in EXACT]


def test_each_stop_inside_an_epoch_records_the_steps_done_since_the_epoch_began(runs):
    """The second stop comes 2 steps into the resumed epoch: step 4 of 6 (not 2 of the 4 left), and
    the sums hold the images of all 4 steps."""
    for (message, saved), step in zip(runs["stops"], (FIRST_STOP, SECOND_STOP), strict=True):
        assert f"step {step}/{STEPS} of epoch 2/2" in message, message
        assert saved["epoch"] == 1 and (saved["partial"]["step"], saved["partial"]["steps"]) == (step, STEPS)
        assert saved["partial"]["sums"][4] == step * 32  # images trained in epoch 2 so far


def test_a_stopped_epoch_keeps_the_loader_generator_of_its_start(runs):
    """Both mid-epoch checkpoints hold the generator as epoch 2 began (one draw, epoch 1's), so
    --resume gives the workers the epoch's seeds; the finished run has drawn twice, as the
    uninterrupted run."""
    for _, saved in runs["stops"]:
        assert torch.equal(saved["loader_generator"], generator_after(1))
    assert torch.equal(runs["last"]["cut"]["loader_generator"], generator_after(2))


def test_the_resumed_epoch_seconds_include_the_seconds_before_the_stop(runs):
    """The checkpoint said 1000 s were trained before the stop: the epoch's seconds are those plus
    the resumed part (at most the resumed run's whole wall time), and images/s counts them all."""
    row = runs["cut"].history[1]
    assert EARLIER_SECONDS < row["epoch_seconds"] < EARLIER_SECONDS + runs["cut_wall"]
    assert row["images_per_s"] == pytest.approx(180 / row["epoch_seconds"])
    assert runs["cut"].history[0] == runs["boundary"].history[0]  # epoch 1 as the checkpoint recorded it


def test_a_twice_stopped_epoch_with_loader_workers_resumes_bitwise(runs):
    """The stopped epoch, resumed twice, ends with the uninterrupted run's weights, momentum and
    metrics: each sample's crop and flip depend on the run's seed, the epoch and the sample alone,
    not on which worker loads it after how many others."""
    assert_same_training(runs["last"]["whole"], runs["last"]["cut"])
    for ra, rb in zip(runs["whole"].history, runs["cut"].history, strict=True):
        assert [ra[k] for k in EXACT] == [rb[k] for k in EXACT]


def test_each_epoch_seeds_the_augmentation_with_the_runs_seed_and_its_own_index(tmp_path, monkeypatch):
    """The trainer seeds the training set's augmentation before each epoch's loader with --seed and
    the epoch's 0-based index (a run with seed 5 and 2 epochs: (5, 0) then (5, 1)), so that epochs
    draw other crops, and seeds other draws."""
    from snn.data.split import TransformedSubset

    calls, real = [], TransformedSubset.seed_augmentation

    def recorded(self, seed, epoch):
        calls.append((seed, epoch))
        return real(self, seed, epoch)

    monkeypatch.setattr(TransformedSubset, "seed_augmentation", recorded)
    run(small_cifar(tmp_path, epochs=2, seed=5, batch_size=64))
    assert calls == [(5, 0), (5, 1)]
