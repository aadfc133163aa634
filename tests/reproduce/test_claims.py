"""reproduce/claims.py at the tiny budget: every claim gets a verdict, the verdicts follow from the
measured numbers (recomputed here from the runs' own files), and the exact claims have the values
computed here by hand."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from reproduce import claims


# Every claim but ResNet-19's Fig. 4 and Dspike ones (4 more runs and a ResNet-19 selection, same code).
ROWS = "*/cifarnet,fig2-*,scratch-*,eq15-kmax,fig3-surrogate"


@pytest.fixture(scope="module")
def tiny_claims(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("claims")
    args = ["--budget", "tiny", "--out", str(tmp / "out"), "--runs", str(tmp / "runs"), "--rows", ROWS]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the autouse one-thread fixture is per test, this one per module
    try:
        assert claims.main(args) == 0
    finally:
        torch.set_num_threads(threads)
    frame = pd.read_csv(tmp / "out" / "claims-tiny.csv", dtype=str, keep_default_na=False)
    return frame.set_index("claim id", drop=False), tmp


def test_every_claim_is_reported_with_a_verdict(tiny_claims):
    frame, tmp = tiny_claims
    assert list(frame.columns) == claims.COLUMNS + claims.KEYS
    expected = [i for i in claims.IDS if not (i.startswith(("fig4-", "dspike-")) and i.endswith("/resnet19"))]
    assert list(frame.index) == expected  # in the script's order, none missing
    assert set(frame.verdict) <= {"HOLDS", "DOES NOT HOLD"}
    assert (frame.budget == "tiny").all() and (frame["git sha"] != "").all()
    text = (tmp / "out" / "claims-tiny.md").read_text()
    assert "TINY budget" in text and "never tuned" in text


def test_fig2_verdicts_follow_from_the_runs_rates(tiny_claims):
    """Recomputed from the run folder: initial_rates.json (epoch 0) and metrics.csv (epoch 1)."""
    frame, tmp = tiny_claims
    for arch in claims.ARCHS:
        run = tmp / "runs" / "tiny" / frame.loc[f"fig2-epoch0/{arch}", "run ids"]
        start = json.loads((run / "initial_rates.json").read_text())
        last = list(start)[-1]
        expected = "HOLDS" if start[last] < 1e-3 else "DOES NOT HOLD"
        assert frame.loc[f"fig2-epoch0/{arch}", "verdict"] == expected
        epoch1 = pd.read_csv(run / "metrics.csv").iloc[0]
        restricted = [n for n in start if not n.endswith("lif1")]  # the LIFs inside residual branches
        rates = [epoch1[f"rate/{n}"] for n in restricted]
        expected = "HOLDS" if all(0.3 <= r <= 0.7 for r in rates) else "DOES NOT HOLD"
        assert frame.loc[f"fig2-epoch1/{arch}", "verdict"] == expected
        assert f"{min(rates):.3f} .. {max(rates):.3f}" in frame.loc[f"fig2-epoch1/{arch}", "numbers"]


def test_exact_claims(tiny_claims):
    frame, _ = tiny_claims
    r = 10 ** 0.9  # eq. 15, N = 10, last epoch i = 9
    k_last = ((r - 1) * 10 + (10 - r) * 1) / 9
    assert f"{k_last:.4f}" == "7.9433"
    row = frame.loc["eq15-kmax"]
    assert f"K(9) = {k_last:.4f}" in row.numbers and row.verdict == "DOES NOT HOLD"
    row = frame.loc["fig3-surrogate"]
    gap10 = 0.5 * (1 - math.tanh(10 * 0.25))
    assert "peak 5.000000" in row.numbers and f"gap {gap10:.4f}" in row.numbers and row.verdict == "HOLDS"


def test_dspike_cost_is_measured(tiny_claims):
    frame, _ = tiny_claims
    for arch in ("cifarnet",):
        numbers = frame.loc[f"dspike-cost/{arch}", "numbers"]
        selection, steps, step_ms = (float(v) for v in
                                     pd.Series([numbers]).str.extract(r"selection ([\d.]+) s = N = ([\d.]+) "
                                                                      r"training steps of ([\d.]+) ms").iloc[0])
        # the printed roundings: selection to 0.005 s, the step to 0.05 ms, N to 0.05
        low, high = (selection - 0.005) / (step_ms + 0.05) * 1e3, (selection + 0.005) / (step_ms - 0.05) * 1e3
        assert selection > 0 and low - 0.05 <= steps <= high + 0.05


def test_rows_flag_selects_claims(tmp_path):
    assert claims.main(["--budget", "tiny", "--out", str(tmp_path), "--runs", str(tmp_path / "runs"),
                        "--rows", "eq15-kmax,fig3-*"]) == 0
    frame = pd.read_csv(Path(tmp_path) / "claims-tiny.csv")
    assert list(frame["claim id"]) == ["eq15-kmax", "fig3-surrogate"]
    assert not (tmp_path / "runs").exists()  # nothing trained for the exact claims
