"""The training engine's small pieces, each against values worked out by hand: the time-major
layout of event batches, metrics.best on ties, zeros and nulls, the checkpoint digest seeing every
byte, the best checkpoint kept on a tie, each rank's own RNG state restored on resume, and a Dspike selection
carried across a mid-epoch stop."""

import dataclasses
import random

import numpy as np
import pytest
import torch

from snn.train import Config, checkpoint, engine, metrics, run, runfolder
from snn.train.distributed import Context
from snn.train.loop import StepSettings, model_input

CPU = torch.device("cpu")


def settings(channels_last=False) -> StepSettings:
    return StepSettings(T=3, device=CPU, amp=False, channels_last=channels_last, im_lambda=0.0, clip_grad=None)


def test_event_batches_become_time_major_element_by_element():
    """A loader batch [B, T, 2, H, W] whose every element encodes its own (b, t, c, h, w): the model
    input at [t, b, c, h, w] must hold that of [b, t, c, h, w] (a reshape would scramble it)."""
    B, T, C, H, W = 4, 3, 2, 5, 6
    b, t, c, h, w = np.meshgrid(*(np.arange(n) for n in (B, T, C, H, W)), indexing="ij")
    code = torch.from_numpy((((b * 10 + t) * 10 + c) * 10 + h) * 10 + w).float()  # [B, T, C, H, W]
    x = model_input(code, settings())
    assert tuple(x.shape) == (T, B, C, H, W)
    for ti in range(T):
        for bi in range(B):
            expected = torch.from_numpy(((((bi * 10 + ti) * 10 + np.arange(C)[:, None, None]) * 10
                                          + np.arange(H)[None, :, None]) * 10 + np.arange(W)[None, None, :])).float()
            assert torch.equal(x[ti, bi], expected), (ti, bi)


def test_static_batches_stay_batch_major():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    assert torch.equal(model_input(x, settings()), x)
    assert torch.equal(model_input(x, settings(channels_last=True)), x)


@pytest.mark.parametrize("values, expected", [
    ([0.5, 0.7, 0.7, 0.6], (0.7, 2)),  # equal values: the first epoch
    ([0.7, 0.7, 0.7], (0.7, 1)),
    ([None, 0.0, None], (0.0, 2)),  # 0 is a value, None is not
    ([0.0, 0.0], (0.0, 1)),
    ([None, None], (None, None)),
    ([0.2, None, 0.3], (0.3, 3)),
])
def test_metrics_best_is_the_first_epoch_of_the_highest_value(values, expected):
    history = [{"epoch": i + 1, "val_acc": v} for i, v in enumerate(values)]
    assert metrics.best(history, "val_acc") == expected


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_the_digest_sees_every_byte_of_a_tensor(where):
    """One bit flipped anywhere in a 1 MiB weight changes the digest."""
    weight = torch.arange(2**18, dtype=torch.float32)
    state = {"model": {"w": weight}, "history": [{"epoch": 1}]}
    before = checkpoint.digest(state)
    raw = weight.view(torch.int32)
    i = {"first": 0, "middle": raw.numel() // 2, "last": raw.numel() - 1}[where]
    raw[i] ^= 1
    assert checkpoint.digest(state) != before


@pytest.mark.parametrize("change", ["list item", "dict key", "dict value", "type", "shape", "dtype", "order"])
def test_the_digest_sees_every_part_of_the_structure(change):
    def state():
        return {"a": [1, 2.5, "x", None], "b": {"k": torch.zeros(2, 3)}, "c": (1, 2)}

    s = state()
    if change == "list item":
        s["a"][3] = 0
    elif change == "dict key":
        s["b"] = {"k2": s["b"]["k"]}
    elif change == "dict value":
        s["c"] = (1, 3)
    elif change == "type":
        s["c"] = [1, 2]
    elif change == "shape":
        s["b"]["k"] = torch.zeros(3, 2)
    elif change == "dtype":
        s["b"]["k"] = torch.zeros(2, 3, dtype=torch.float64)
    else:
        s = {"b": s["b"], "a": s["a"], "c": s["c"]}
    assert checkpoint.digest(s) != checkpoint.digest(state())


def tiny(tmp_path, **kw) -> Config:
    return Config(**{**dict(dataset="synthetic", width=0.125, T=2, epochs=3, batch_size=32, progress=False,
                            out=str(tmp_path / "run")), **kw})


def test_a_tie_keeps_the_earlier_best_checkpoint(tmp_path, monkeypatch):
    """Validation accuracies 0.5, 0.5, 0.4: best.pt must stay epoch 1's (only a higher value replaces it)."""
    val = iter([0.5, 0.5, 0.4])

    def scripted(model, loader, s, ctx, rates=False):
        return (0.25, {}) if rates else (next(val), {})

    monkeypatch.setattr(engine, "evaluate", scripted)
    results = run(tiny(tmp_path))
    assert checkpoint.load(tmp_path / "run" / "best.pt")["epoch"] == 1
    assert results.best_val_epoch == 1


def test_resume_restores_each_ranks_own_rng_state(tmp_path, monkeypatch):
    """A checkpoint written by 2 ranks holds 2 RNG states; rank 1 resuming must get the second."""
    cfg = tiny(tmp_path, epochs=1)
    run(cfg)
    path = tmp_path / "run" / "last.pt"
    state = checkpoint.load(path)
    torch.manual_seed(11), np.random.seed(11), random.seed(11)
    rank0 = checkpoint.capture_rng()
    torch.manual_seed(22), np.random.seed(22), random.seed(22)
    rank1 = checkpoint.capture_rng()
    checkpoint.save(path, {**state, "rng": [rank0, rank1]})
    restored = []
    monkeypatch.setattr(checkpoint, "restore_rng", restored.append)

    class Untouched:  # Training.load's target: not under test here
        selector = None

        def load(self, state):
            pass

    for rank in (0, 1):
        runfolder.resume(Untouched(), Config(**{**cfg.__dict__, "resume": True}), Context(rank, 2, CPU, False), path)
    assert [torch.equal(r["torch"], s["torch"]) for r, s in zip(restored, (rank0, rank1))] == [True, True]
    assert not torch.equal(rank0["torch"], rank1["torch"])


def test_a_dspike_epoch_stopped_mid_way_resumes_with_its_selection(tmp_path, monkeypatch):
    """Dspike selects b on an epoch's first batch; a stop later in that epoch must carry the choice
    and its cost into last.pt, so the resumed epoch's row reports them (not a blank cost)."""
    import signal

    from snn.train.stop import Interrupted

    dspike = dict(surrogate="dspike", epochs=2, dspike_eps=0.05)
    whole = run(tiny(tmp_path / "whole", **dspike))
    calls, real = [], engine.train_epoch

    def stopped_after_step_2_of_epoch_2(*args):
        *rest, plan = args

        def stop_now():
            calls.append(plan.epoch)
            return signal.SIGTERM if plan.epoch == 1 and calls.count(1) == 2 else plan.stop()

        return real(*rest, dataclasses.replace(plan, stop=stop_now))

    monkeypatch.setattr(engine, "train_epoch", stopped_after_step_2_of_epoch_2)
    with pytest.raises(Interrupted):
        run(tiny(tmp_path / "cut", **dspike))
    cost = checkpoint.load(tmp_path / "cut" / "run" / "last.pt")["partial"]["dspike"]
    monkeypatch.setattr(engine, "train_epoch", real)
    resumed = run(tiny(tmp_path / "cut", resume=True, **dspike))
    row = resumed.history[1]
    assert row["dspike_b"] == whole.history[1]["dspike_b"]
    assert row["dspike_seconds"] == cost["dspike_seconds"] > 0
    assert row["dspike_forwards"] == whole.history[1]["dspike_forwards"] > 0
