"""The results table: typed cells keep paper numbers out of "ours", differences only on the same
dataset, and finished rows read back for a rerun."""

import pandas as pd
import pytest

from reproduce._common.budget import BUDGETS
from reproduce._common.table import COLUMNS, KEYS, QUOTED, Measured, NotRun, Paper, ResultsTable, difference


def table(tmp_path, budget="smoke"):
    return ResultsTable(tmp_path, "demo", BUDGETS[budget], "Demo", ["notes"], ["a note"], "python demo.py")


@pytest.mark.parametrize("ours", [Paper(95.49, "CIFAR10", 0.05), 95.49, "95.49%", None])
def test_ours_refuses_anything_not_measured(tmp_path, ours):
    with pytest.raises(TypeError, match="ours"):
        table(tmp_path).add("r", "run", row="r", paper=Paper(95.49, "CIFAR10"), ours=ours)


def test_paper_column_takes_only_paper_numbers(tmp_path):
    with pytest.raises(TypeError, match="paper value"):
        table(tmp_path).add("r", "run", row="r", paper=Measured(90.0, "digits", "smoke"), ours=NotRun("x"))


def test_smoke_cells_are_labelled_and_carry_no_difference(tmp_path):
    t = table(tmp_path)
    row = t.add("r", "run", row="CIFAR10 ResNet-19 [smoke on digits]", paper=Paper(95.49, "CIFAR10", 0.05),
                ours=Measured(41.234, "digits", "smoke"))
    assert row["paper value"] == "95.49% ±0.05 (paper)"
    assert row["ours"] == "41.23% (smoke, digits)"
    assert row["difference"].startswith("n/a") and "digits" in row["difference"]
    assert row["budget"] == "smoke" and row["status"] == "done"
    assert "95.49" not in row["ours"]


def test_difference_on_the_same_dataset():
    assert difference(Paper(95.40, "CIFAR10"), Measured(94.90, "CIFAR10", "paper")) == "-0.50 pp"
    assert difference(Paper(95.40, "CIFAR10"), NotRun("no data")) == ""
    assert difference(None, Measured(94.9, "CIFAR10", "paper")) == ""
    assert str(Measured(94.9, "CIFAR10", "paper")) == "94.90%"


def run_folder(tmp_path, name, metrics="epoch,test_acc\n1,0.5\n"):
    """A run folder as snn.train leaves it, as far as the table reads it (its metrics.csv)."""
    folder = tmp_path / "runs" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.csv").write_text(metrics)
    return folder


def test_files_and_reuse_of_finished_rows(tmp_path):
    t = table(tmp_path)
    run1 = run_folder(tmp_path, "run1")
    t.track("run1", run1)
    t.add("done", "run1", row="a", paper=Paper(90.0, "CIFAR10"), ours=Measured(50.0, "digits", "smoke"), epochs="6",
          notes="kept")
    t.add("missing", "run2", row="b", paper=Paper(91.0, "CIFAR10"), ours=NotRun("DatasetNotFound: no files"))
    t.add("peer", "", row="c", paper=Paper(92.0, "CIFAR10"), ours=QUOTED)
    frame = pd.read_csv(tmp_path / "demo-smoke.csv", dtype=str, keep_default_na=False)
    assert list(frame.columns) == COLUMNS + ["notes"] + KEYS
    assert list(frame["status"]) == ["done", "not run", "quoted"]
    md = (tmp_path / "demo-smoke.md").read_text()
    assert "SMOKE RUN" in md and "a note" in md and "run id" not in md
    again = table(tmp_path)
    assert again.finished("done", "run1") is None  # no folder tracked: nothing says the run is still there
    again.track("run1", run1)
    assert again.finished("done", "run1")["notes"] == "kept"
    assert again.finished("done", "other settings") is None
    assert again.finished("missing", "run2") is None  # a row without a result runs again


def test_a_row_is_reused_only_from_the_run_it_was_measured_from(tmp_path):
    """Two rows share one run folder; the first is trained again (its metrics.csv changes), so the
    second's finished row of the earlier invocation no longer describes that folder: not reused.
    A row that is reused is marked with its original date and git sha, and the notes say so."""
    first = table(tmp_path)
    shared = run_folder(tmp_path, "shared")
    first.track("shared", shared)
    first.add("a", "shared", row="a", paper=None, ours=Measured(88.02, "digits", "smoke"))
    first.add("b", "shared", row="b", paper=None, ours=Measured(88.02, "digits", "smoke"))
    first.close()
    old = pd.read_csv(tmp_path / "demo-smoke.csv", dtype=str, keep_default_na=False)
    assert (old["run stamp"].str.len() == 12).all() and (old["measured"] != "").all()

    same = table(tmp_path)
    same.track("shared", shared)
    kept = same.reuse(same.finished("b", "shared"))
    assert kept["measured"] == old["measured"][1] + " (reused)" and kept["git sha"] == old["git sha"][1]
    md = (tmp_path / "demo-smoke.md").read_text()
    assert " (reused)" in md and "measured by an earlier invocation" in md
    again = table(tmp_path)
    again.track("shared", shared)
    assert again.reuse(again.finished("b", "shared"))["measured"].count("(reused)") == 1  # marked once

    retrained = table(tmp_path)
    retrained.track("shared", shared)
    (shared / "metrics.csv").write_text("epoch,test_acc\n1,0.8496\n")  # row a trains the folder again
    retrained.add("a", "shared", row="a", paper=None, ours=Measured(84.96, "digits", "smoke"))
    assert retrained.finished("b", "shared") is None  # its 88.02 came from the run that is gone


def test_a_killed_rerun_loses_no_finished_row(tmp_path):
    first = table(tmp_path)
    folder = run_folder(tmp_path, "run")
    first.track("run", folder)
    for i in range(3):
        first.add(f"r{i}", "run", row=f"r{i}", paper=None, ours=Measured(float(i), "digits", "smoke"))
    first.close()
    again = table(tmp_path)
    again.track("run", folder)
    again.reuse(again.finished("r0", "run"))  # a rerun that stops here keeps r1 and r2 in the files
    assert list(read_ids(tmp_path)) == ["r0", "r1", "r2"]
    again.close()  # a rerun that ends here had only r0 left
    assert list(read_ids(tmp_path)) == ["r0"]


def read_ids(tmp_path):
    return pd.read_csv(tmp_path / "demo-smoke.csv", dtype=str, keep_default_na=False)["row id"]


def test_an_empty_csv_counts_as_no_previous_results(tmp_path):
    (tmp_path / "demo-smoke.csv").write_text("")
    with pytest.warns(UserWarning, match="demo-smoke.csv is empty: treating it as no previous results"):
        t = table(tmp_path)
    assert t.finished("done", "run1") is None
    t.add("done", "run1", row="a", paper=None, ours=Measured(50.0, "digits", "smoke"))
    assert list(pd.read_csv(tmp_path / "demo-smoke.csv")["row id"]) == ["done"]
