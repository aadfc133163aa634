"""reproduce/ when two scripts meet, or a record is damaged: a table written by two processes
keeps both's rows; a row whose run folder another process trains waits for it; --out naming a
file, and a damaged devices.json, are reported in one line or one warning."""

import os
import stat
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from reproduce import table2
from reproduce._common.budget import BUDGETS
from reproduce._common.table import Measured, Paper, ResultsTable
from reproduce._common.training import DEVICES, Setting, config, train, trained_on

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def table(out) -> ResultsTable:
    return ResultsTable(out, "demo", BUDGETS["tiny"], "Demo", ["notes"], [], "python demo.py")


def done(t: ResultsTable, row_id: str, pct: float) -> None:
    t.add(row_id, f"run-{row_id}", row=row_id, paper=Paper(90.0, "CIFAR10"), ours=Measured(pct, "synthetic", "tiny"))


def rows(out) -> dict:
    frame = pd.read_csv(out / "demo-tiny.csv", dtype=str, keep_default_na=False)
    return dict(zip(frame["row id"], frame["ours"]))


def test_two_processes_writing_one_table_keep_each_others_rows(tmp_path):
    """Two runs of a script with different --rows on one results folder (each table object reads the
    file once when it starts): the rows each finished survive the other's writes and close."""
    done(first := table(tmp_path), "old", 10.0)
    first.close()  # the file a third, earlier run left: row "old"
    a, b = table(tmp_path), table(tmp_path)  # both start from it
    done(a, "a1", 11.0)
    done(b, "b1", 21.0)
    done(a, "a2", 12.0)
    b.close()  # b re-added nothing of the previous files: "old" goes, a's rows stay
    assert set(rows(tmp_path)) == {"a1", "a2", "b1"}
    a.close()
    assert rows(tmp_path) == {"a1": "11.00% (tiny, synthetic)", "a2": "12.00% (tiny, synthetic)",
                              "b1": "21.00% (tiny, synthetic)"}


def test_a_row_whose_run_folder_is_busy_waits_for_it(tmp_path, capsys):
    """Another process holds the row's run folder (training it) for 3 s: train() waits, says so, and
    then trains (or reuses) the folder alone."""
    cfg = config(Setting("paper-cifar10", "resnet19", 2), BUDGETS["tiny"], "data", tmp_path / "runs")
    code = textwrap.dedent(f"""
        import time
        from snn.train import runlock
        with runlock.hold({cfg.out!r}):
            print("held", flush=True)
            time.sleep(3)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    start = time.monotonic()
    results = train(cfg)
    assert time.monotonic() - start > 1.0 and holder.wait(timeout=60) == 0
    assert f"{cfg.out} is being trained by PID {holder.pid}" in capsys.readouterr().out
    assert results.epochs == 1 and len(trained_on(cfg.out)) == 1
    from snn.files import default_mode

    assert stat.S_IMODE(os.stat(os.path.join(cfg.out, DEVICES)).st_mode) == default_mode()  # not mkstemp's 0600


@pytest.mark.parametrize("content", ["", "{not json", '{"cpu": 1}'])
def test_an_unreadable_devices_record_is_reported_not_raised(tmp_path, content):
    """An empty devices.json (a kill during a non-atomic write), garbage, or another JSON type: a
    warning naming the file, and the devices reported as unknown."""
    from reproduce._common.training import UNREADABLE

    (tmp_path / DEVICES).write_text(content)
    with pytest.warns(UserWarning, match=f"{tmp_path / DEVICES} cannot be read"):
        assert trained_on(tmp_path) == [UNREADABLE]


def test_out_naming_a_file_exits_2_with_one_message(tmp_path, capsys):
    blocker = tmp_path / "results.txt"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exited:
        table2.main(["--budget", "tiny", "--out", str(blocker / "sub"), "--runs", str(tmp_path / "runs")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"--out {blocker / 'sub'}: {blocker} is a file, not a folder" in err and "Traceback" not in err
