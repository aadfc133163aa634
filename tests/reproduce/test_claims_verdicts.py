"""reproduce/claims.py's verdicts on hand-made run folders and histories, on both sides of every
threshold (the numbers at which a verdict flips are worked out here from the paper's wording and
THRESHOLDS' documented meaning), and the budget choice when datasets are missing."""

import argparse
import json

import pytest
import torch

from reproduce import claims
from reproduce._common import budget as budget_module
from snn import models
from snn.neuron import LIF
from snn.train import Config, Results

HOLDS, FAILS = "HOLDS", "DOES NOT HOLD"


def results(tmp_path, name, test_accs, val_accs=None, model=None, rates=None) -> tuple[Config, Results]:
    out = tmp_path / name
    out.mkdir(parents=True, exist_ok=True)
    history = [{"epoch": i + 1, "test_acc": a, "val_acc": None if val_accs is None else val_accs[i],
                "train_ce": 2.0 - 0.1 * i, **(rates or {})} for i, a in enumerate(test_accs)]
    return Config(out=str(out)), Results.from_history(out, history, model)


# --- scratch: "trains" halfway from chance to 100 %, "does not train" below twice chance ---------

@pytest.mark.parametrize("acc, verdict", [(0.55, HOLDS), (0.5499, FAILS), (0.9, HOLDS)])
def test_scratch_trains_holds_from_halfway_between_chance_and_100(tmp_path, acc, verdict):
    """10 classes: chance 10 %, halfway to 100 % is 55 %; accuracy at the best validation epoch."""
    im = results(tmp_path, "im", [0.2, acc, 0.3], val_accs=[0.1, 0.9, 0.2])  # epoch 2 is chosen on validation
    no = results(tmp_path, "no", [0.1, 0.1, 0.1], val_accs=[0.1, 0.1, 0.1])
    by_id = {c.id: c for c in claims.scratch_claims("cifarnet", im, no, classes=10)}
    assert by_id["scratch-im/cifarnet"].verdict == verdict


@pytest.mark.parametrize("acc, verdict", [(0.1999, HOLDS), (0.2, FAILS), (0.0, HOLDS)])
def test_scratch_does_not_train_holds_below_twice_chance(tmp_path, acc, verdict):
    im = results(tmp_path, "im", [0.9], val_accs=[0.9])
    no = results(tmp_path, "no", [acc], val_accs=[0.5])
    by_id = {c.id: c for c in claims.scratch_claims("cifarnet", im, no, classes=10)}
    assert by_id["scratch-no-im/cifarnet"].verdict == verdict


# --- Fig. 4: k = 1 ahead early, ESG last at least as high as both --------------------------------

def fig4(tmp_path, k1, k10, esg):
    runs = {"k = 1": results(tmp_path, "k1", k1), "k = 10": results(tmp_path, "k10", k10),
            "ESG": results(tmp_path, "esg", esg)}
    return {c.id: c.verdict for c in claims.fig4_claims("cifarnet", runs)}


@pytest.mark.parametrize("k1, k10, verdict", [
    ([0.5, 0.3, 0.1, 0.1, 0.1, 0.1], [0.3, 0.4, 0.9, 0.9, 0.9, 0.9], HOLDS),  # first 6 // 3 = 2 epochs: 0.4 > 0.35
    ([0.3, 0.4, 0.9, 0.9, 0.9, 0.9], [0.5, 0.3, 0.1, 0.1, 0.1, 0.1], FAILS),
    ([0.4, 0.3, 0.1, 0.1, 0.1, 0.1], [0.3, 0.4, 0.9, 0.9, 0.9, 0.9], FAILS),  # equal means: not faster
    ([0.1, 0.1, 0.9, 0.9, 0.9, 0.9], [0.2, 0.2, 0.0, 0.0, 0.0, 0.0], FAILS),  # epoch 3 is past the "early" third
])
def test_fig4_early_compares_the_mean_of_the_first_third(tmp_path, k1, k10, verdict):
    assert fig4(tmp_path, k1, k10, [0.5] * 6)["fig4-early/cifarnet"] == verdict


@pytest.mark.parametrize("esg_last, verdict", [(0.7, HOLDS), (0.8, HOLDS), (0.6999, FAILS), (0.65, FAILS)])
def test_fig4_esg_end_needs_the_higher_of_both(tmp_path, esg_last, verdict):
    """Last epochs: k = 1 ends at 0.6, k = 10 at 0.7: ESG holds from 0.7 (the max, not the min)."""
    got = fig4(tmp_path, [0.1, 0.2, 0.6], [0.1, 0.2, 0.7], [0.1, 0.2, esg_last])
    assert got["fig4-esg-end/cifarnet"] == verdict


# --- Fig. 2: silent last layer at epoch 0, restricted layers in [0.3, 0.7] after epoch 1 --------

def fig2(tmp_path, last_rate, restricted_rate):
    model = models.build("cifarnet", 10, in_channels=1, norm="none", width=0.125, input_size=16)
    lifs = {n: m for n, m in model.named_modules() if isinstance(m, LIF)}
    rates = {f"rate/{n}": (restricted_rate if m.im else 0.9) for n, m in lifs.items()}
    cfg, res = results(tmp_path, "fig2", [0.5], model=model, rates=rates)
    start = {n: 0.2 for n in lifs}
    start[list(lifs)[-1]] = last_rate
    (tmp_path / "fig2" / "initial_rates.json").write_text(json.dumps(start))
    return {c.id: c.verdict for c in claims.fig2_claims("cifarnet", cfg, res)}


@pytest.mark.parametrize("last, verdict", [(0.0, HOLDS), (0.000999, HOLDS), (0.001, FAILS), (0.5, FAILS)])
def test_fig2_epoch0_holds_when_the_last_layer_is_below_1e_3(tmp_path, last, verdict):
    assert fig2(tmp_path, last, 0.5)["fig2-epoch0/cifarnet"] == verdict


@pytest.mark.parametrize("rate, verdict", [(0.3, HOLDS), (0.7, HOLDS), (0.5, HOLDS), (0.2999, FAILS),
                                           (0.7001, FAILS)])
def test_fig2_epoch1_band_is_closed(tmp_path, rate, verdict):
    assert fig2(tmp_path, 0.0, rate)["fig2-epoch1/cifarnet"] == verdict


# --- Dspike cost: more than one step, ESG below 1e-3 of one -----------------------------------

@pytest.mark.parametrize("selection, esg, verdict", [(0.2, 0.0, HOLDS), (0.1, 0.0, FAILS), (0.2, 0.0000999, HOLDS),
                                                     (0.2, 0.0001, FAILS)])
def test_dspike_claim_thresholds(tmp_path, monkeypatch, selection, esg, verdict):
    """A training step of 0.1 s: the selection must cost more than it (N > 1), ESG less than 1e-4 s."""
    cost = type("Cost", (), {"seconds": selection, "weights": 10, "batch": 4, "chunk": 1, "device": "cpu",
                             "flat": False})()
    monkeypatch.setattr(claims.dspike_cost, "measure", lambda cfg, res: cost)
    monkeypatch.setattr(claims, "step_and_esg_seconds", lambda cfg, res: (0.1, esg))
    cfg, res = results(tmp_path, "d", [0.5])
    assert claims.dspike_claim("cifarnet", cfg, res).verdict == verdict


# --- the budget: paper only when one of the script's datasets is really there -------------------

def choose(monkeypatch, present):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(budget_module, "missing_dataset", lambda name, root: None if name in present else
                        f"{name}: looked in {root}")
    args = argparse.Namespace(budget=None, epochs=None, width=None, data_root="/data")
    return budget_module.choose(args, ("cifar10", "imagenet"))


def test_budget_is_smoke_when_every_dataset_is_missing(monkeypatch):
    budget, why = choose(monkeypatch, present=())
    assert budget.name == "smoke" and "no dataset" in why


def test_budget_is_paper_when_a_dataset_is_found_and_names_it(monkeypatch):
    budget, why = choose(monkeypatch, present=("imagenet",))
    assert budget.name == "paper" and "imagenet" in why and "cifar10" not in why
