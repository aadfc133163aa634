"""The run-to-run variation note: the seeds trained and the spread, checked on hand-made results."""

from pathlib import Path
from types import SimpleNamespace

from reproduce._common import variation
from reproduce._common.budget import BUDGETS
from reproduce._common.table import NotRun
from reproduce._common.training import Setting


def fake_training(monkeypatch, accs_by_seed, failing=()):
    """train_or_reason replaced by results whose test accuracy at the best validation epoch is
    accs_by_seed[seed] (a fraction); seeds in `failing` give a row error instead."""
    trained = []

    def train_or_reason(cfg):
        trained.append(cfg.seed)
        if cfg.seed in failing:
            return None, NotRun("NonFiniteLoss: diverged")
        return SimpleNamespace(best_val_epoch=1, test_acc_at_best_val=accs_by_seed[cfg.seed]), None

    monkeypatch.setattr(variation, "train_or_reason", train_or_reason)
    return trained


def test_three_seeds_and_their_spread(monkeypatch, tmp_path):
    trained = fake_training(monkeypatch, {0: 0.83, 1: 0.86, 2: 0.80, 3: 0.10})
    note = variation.seed_spread("c10-cifarnet-t4", Setting("paper-cifarnet", "cifarnet", 4), BUDGETS["smoke"],
                                 "data", Path(tmp_path), seeds=3)
    assert trained == [0, 1, 2]  # seed 0 is the row's own run
    assert "83.00%, 86.00%, 80.00%" in note
    assert "max - min 6.00 pp" in note and "sample std 3.00 pp" in note  # by hand: deviations 0, 3, -3


def test_one_seed_is_no_variation_and_failures_are_named(monkeypatch, tmp_path):
    setting = Setting("paper-cifarnet", "cifarnet", 4)
    assert variation.seed_spread("r", setting, BUDGETS["smoke"], "data", Path(tmp_path), seeds=1) is None
    fake_training(monkeypatch, {0: 0.5, 1: 0.7}, failing=(1,))
    note = variation.seed_spread("r", setting, BUDGETS["smoke"], "data", Path(tmp_path), seeds=2)
    assert note.startswith("run-to-run variation: not measured") and "seed 1: not run: NonFiniteLoss" in note
