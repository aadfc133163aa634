"""Every reproduce/ script at the tiny budget: it runs to the end, writes its CSV / markdown / PNG
with the expected columns, labels its rows tiny, and a rerun reuses finished rows."""

import argparse
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from reproduce import fig2_spike_rate, fig3_surrogate, fig4_esg, table1, table2
from reproduce._common import budget
from reproduce._common.budget import choose
from reproduce._common.table import COLUMNS, KEYS


def read(path: Path) -> pd.DataFrame:
    assert path.is_file(), path
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def check_measured_rows(frame: pd.DataFrame, expected: int) -> pd.DataFrame:
    """The measured rows: as many as expected, each labelled tiny, its ours cell never the paper's."""
    ours = frame[frame.status == "done"]
    assert len(ours) == expected
    assert ours.row.str.contains("tiny").all() and ours.ours.str.contains(r"\(tiny, ").all()
    assert (ours.budget == "tiny").all() and (ours["git sha"] != "").all()
    for _, r in ours.iterrows():
        if r["paper value"]:
            assert r["paper value"].split("%")[0] not in r.ours
            assert r.difference.startswith("n/a")
    return ours


def test_table2_tiny_and_rerun(tiny_args, tmp_path, capsys):
    assert table2.main(tiny_args) == 0
    out = tmp_path / "out"
    frame = read(out / "table2-tiny.csv")
    assert list(frame.columns) == COLUMNS + table2.EXTRA + KEYS
    ours = check_measured_rows(frame, len(table2.ROWS))
    assert ours["Dspike/epoch (measured)"].str.fullmatch(r"\d+\.\d\d s").all()
    assert ours["Dspike finite difference"].str.contains("forwards of batch 16").all()
    peers = frame[frame.status == "quoted"]
    assert len(peers) == sum(len(p) for p in table2.PEERS.values())
    assert (peers.ours.str.startswith("-")).all() and (peers.budget == "").all()
    md = (out / "table2-tiny.md").read_text()
    assert "TINY" in md
    # the variation row trained with seeds 0..2: three accuracies in the note, seed 0's its own row's
    note = next(line for line in md.splitlines() if "run-to-run variation" in line)
    accs = [float(a) for a in __import__("re").findall(r"(\d+\.\d\d)%", note.split("gave")[1].split("(")[0])]
    row_acc = float(ours[ours["row id"] == table2.VARIATION_ROW].ours.iloc[0].split("%")[0])
    assert len(accs) == 3 and accs[0] == row_acc
    assert f"max - min {max(accs) - min(accs):.2f} pp" in note
    capsys.readouterr()
    assert table2.main(tiny_args) == 0  # a rerun picks every finished row up from the CSV
    assert capsys.readouterr().out.count(", reused\n") == len(table2.ROWS)
    again = read(out / "table2-tiny.csv")
    reused = again.status == "done"
    assert (again.measured[reused] == frame.measured[reused] + " (reused)").all()
    assert again.drop(columns="measured").equals(frame.drop(columns="measured"))


def test_table1_tiny(tiny_args, tmp_path):
    assert table1.main(tiny_args) == 0
    frame = read(tmp_path / "out" / "table1-tiny.csv")
    assert list(frame.columns) == COLUMNS + table1.EXTRA + KEYS
    ours = check_measured_rows(frame, 12)
    warm = ours[ours["row id"].str.endswith(("/wo-norm", "/esg"))]
    assert len(warm) == 4 and warm["warm start"].str.contains("IM-Loss steps").all()
    assert (ours.loc[~ours.index.isin(warm.index), "warm start"] == "none").all()
    assert set(ours.surrogate) == {"rect", "esg"} and set(ours.norm) == {"none", "tdbn"}


def test_table1_warm_start_checkpoint(tiny_args, tmp_path):
    assert table1.main([*tiny_args, "--rows", "cifarnet/wo-norm"]) == 0
    run = next((tmp_path / "runs" / "tiny").glob("cifarnet-*-warm"))
    assert (run / "warm_start.json").is_file() and (run / "metrics.csv").is_file()
    assert "resumed" in (run / "train.log").read_text()  # the engine started from the warm weights


def test_fig2_tiny(tiny_args, tmp_path):
    assert fig2_spike_rate.main(tiny_args) == 0
    out = tmp_path / "out"
    frame = read(out / "fig2_spike_rate-tiny.csv")
    assert list(frame.columns) == COLUMNS + fig2_spike_rate.EXTRA + KEYS
    check_measured_rows(frame, 6)
    data = pd.read_csv(out / "fig2_spike_rate-tiny-data.csv")
    assert set(data.stage) == {"epoch 0", "epoch 1", "end"} and set(data.model) == {"CIFARNet", "ResNet-19"}
    assert data.rate.between(0, 1).all()
    assert not data[data.model == "ResNet-19"].im.all()  # the LIFs inside residual blocks are not under IM-Loss
    assert (out / "fig2_spike_rate-tiny.png").stat().st_size > 0


def test_fig4_tiny(tiny_args, tmp_path):
    assert fig4_esg.main(tiny_args) == 0
    out = tmp_path / "out"
    frame = read(out / "fig4_esg-tiny.csv")
    assert list(frame.columns) == COLUMNS + fig4_esg.EXTRA + KEYS
    check_measured_rows(frame, 6)
    data = pd.read_csv(out / "fig4_esg-tiny-data.csv")
    assert set(data.curve) == {"k = 1", "k = 10", "ESG"}
    assert set(data[data.curve == "k = 10"].K) == {10.0} and set(data[data.curve == "ESG"].K) == {1.0}
    assert (out / "fig4_esg-tiny.png").stat().st_size > 0


def test_fig3_curves_are_the_formulas(tmp_path):
    assert fig3_surrogate.main(["--out", str(tmp_path), "--k", "1", "3", "10", "--vth", "0.5"]) == 0
    frame = pd.read_csv(tmp_path / "fig3_surrogate.csv")
    assert set(frame.k) == {1.0, 3.0, 10.0}
    t = np.array([math.tanh(k * (x - 0.5)) for x, k in zip(frame.x, frame.k)])
    np.testing.assert_allclose(frame.phi, 0.5 * t + 0.5, rtol=0, atol=1e-12)
    np.testing.assert_allclose(frame.grad, 0.5 * frame.k * (1 - t ** 2), rtol=0, atol=1e-12)
    np.testing.assert_allclose(frame.grad_lif_scan, frame.grad, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(frame.spike, (frame.x >= 0.5).astype(float))
    assert np.allclose(frame.groupby("k").grad.max(), [0.5, 1.5, 5.0], rtol=1e-4)  # peak k/2 at x = Vth
    assert (tmp_path / "fig3_surrogate.png").stat().st_size > 0
    assert "max |lif_scan - formula|" in (tmp_path / "fig3_surrogate.md").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the default budget on a CPU-only machine")
def test_default_budget_is_smoke_without_a_gpu():
    budget, why = choose(argparse.Namespace(budget=None, epochs=None, width=None, data_root="data"), ("cifar10",))
    assert budget.tag == "smoke" and why == "no CUDA device"
    budget, _ = choose(argparse.Namespace(budget="paper", epochs=3, width=0.5, data_root="data"), ("cifar10",))
    assert budget.tag == "paper-e3-w0.5" and budget.epochs == 3 and budget.width == 0.5


@pytest.mark.parametrize("make_parser", [lambda: budget.parser("table2", variation=True), fig3_surrogate.parser],
                         ids=["training-scripts", "fig3"])
def test_default_results_folder_is_outside_the_tracked_tree(make_parser):
    """`make run` must not rewrite the committed reference results: the scripts' default --out is
    a folder git ignores (asked of git itself), not reproduce/results."""
    out = make_parser().parse_args([]).out.resolve()
    repo = Path(budget.__file__).resolve().parents[2]
    assert out != (repo / "reproduce" / "results").resolve()
    probe = out / "table2-smoke.csv"
    ignored = subprocess.run(["git", "-C", str(repo), "check-ignore", "-q", str(probe)], check=False)
    assert ignored.returncode == 0, f"{probe} is not ignored by git"


def test_no_script_patches_sys_path():
    scripts = sorted((Path(budget.__file__).resolve().parents[1]).glob("*.py"))
    assert len(scripts) >= 7 and not [p.name for p in scripts if "sys.path" in p.read_text()]


@pytest.mark.parametrize("script", ["table2", "claims"])
def test_a_script_runs_as_a_file_from_anywhere(script, tmp_path):
    """`python reproduce/<script>.py` as the README runs it, from another folder: the scripts
    import `reproduce` as the installed package, with no sys.path patch of their own."""
    repo = Path(budget.__file__).resolve().parents[2]
    path = repo / "reproduce" / f"{script}.py"
    done = subprocess.run([sys.executable, str(path), "--help"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
