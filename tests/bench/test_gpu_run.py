"""The GPU run's machinery without running it: a step cut by its cap (its processes too), the
$OUT limits, the report on missing, empty and partial results, results saved line by line, and
the rehearsal's verdict. (`make gpu-rehearsal` runs the whole thing.)"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from bench import gpu_run, report, results_log


class _Stats:
    min = max = mean = median = q1 = q3 = 0.002
    iqr = 0.0
    rounds = 3


def _row(provider="torch", mode="fwdbwd", median=0.002):
    return {"kernel": "lif_scan", "provider": provider, "mode": mode, "T": 2, "N": 256, "dtype": "float32",
            "shape": "tiny-T2-N256-fp32", "device": "test CPU", "min_bytes": 24576.0, "gbps": 24576.0 / median / 1e9}


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan may wait unreaped where no init process reaps)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def test_a_step_past_its_cap_is_stopped_with_the_processes_it_started(tmp_path):
    pid_file = tmp_path / "child.pid"
    code = (f"import subprocess, time; p = subprocess.Popen(['sleep', '60']); open({str(pid_file)!r}, 'w')"
            f".write(str(p.pid)); print('started', flush=True); time.sleep(60)")
    log = gpu_run.Log(tmp_path / "run.log")
    start = time.monotonic()
    outcome = gpu_run.run_step(gpu_run.Step("sleeper", [sys.executable, "-c", code], cap=3), log, seconds_left=100)
    log.close()
    assert outcome.status == "timeout" and time.monotonic() - start < 20
    time.sleep(0.2)
    assert not _running(int(pid_file.read_text())), "the step's own child process outlived its cap"
    text = (tmp_path / "run.log").read_text()
    assert "started" in text and "sleeper: timeout" in text


def test_a_step_gets_at_most_what_is_left_of_the_budget(tmp_path):
    log = gpu_run.Log(tmp_path / "run.log")
    step = gpu_run.Step("s", [sys.executable, "-c", "import time; time.sleep(30)"], cap=100)
    assert gpu_run.run_step(step, log, seconds_left=2).status == "skipped"  # under 5 s left: not started
    outcome = gpu_run.run_step(step, log, seconds_left=6)
    log.close()
    assert outcome.status == "timeout" and outcome.cap == 6


def test_failed_and_passing_steps(tmp_path):
    log = gpu_run.Log(tmp_path / "run.log")
    ok = gpu_run.run_step(gpu_run.Step("ok", [sys.executable, "-c", "print('hi')"], cap=30), log, 100)
    bad = gpu_run.run_step(gpu_run.Step("bad", [sys.executable, "-c", "raise SystemExit(3)"], cap=30), log, 100)
    log.close()
    assert (ok.status, ok.returncode) == ("ok", 0) and (bad.status, bad.returncode) == ("failed", 3)


def test_out_limits(tmp_path):
    out = tmp_path / "out"
    (out / "a" / "b").mkdir(parents=True)
    for i in range(7):
        (out / f"f{i}.txt").write_text("x")
    (out / "a" / "b" / "deep.txt").write_text("x")  # 2 folders down: allowed
    assert gpu_run.out_problems(out) == []
    (out / "a" / "b" / "c").mkdir()
    (out / "a" / "b" / "c" / "deeper.txt").write_text("x")  # 3 folders down, and a 9th file
    (out / "bad name.txt").write_text("x")
    with open(out / "big.bin", "wb") as f:
        f.truncate((16 << 20) + 1)
    problems = "\n".join(gpu_run.out_problems(out))
    assert "more than 2 folders down" in problems and "11 files > 8" in problems
    assert "bad name.txt: a name with characters" in problems and "big.bin: 16777217 bytes" in problems


def test_results_are_appended_one_line_per_benchmark(tmp_path, monkeypatch):
    monkeypatch.delenv(results_log.STALL_ENV, raising=False)
    path = tmp_path / "g.jsonl"
    for i in range(2):
        results_log.append(path, f"t{i}", f"bench/x.py::t{i}", _Stats(), _row())
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["name"] for r in rows] == ["t0", "t1"] and rows[0]["stats"]["median"] == 0.002
    assert rows[0]["machine_info"]["torch"]


def _jsonl(path: Path, rows: list[dict], cut_last: bool = False):
    lines = [json.dumps({"name": f"t{i}", "stats": {"median": 0.002, "q1": 0.002, "q3": 0.002, "rounds": 3},
                         "extra_info": r, "machine_info": {"torch": "2.x", "git_sha": "abc"}})
             for i, r in enumerate(rows)]
    text = "\n".join(lines) + "\n"
    path.write_text(text[:-20] if cut_last else text)


def test_report_names_missing_empty_partial_and_unreadable_files(tmp_path):
    _jsonl(tmp_path / "ok.jsonl", [_row("naive"), _row("torch")])
    _jsonl(tmp_path / "cut.jsonl", [_row("cpu"), _row("triton")], cut_last=True)  # killed mid-line
    _jsonl(tmp_path / "capped.jsonl", [_row("torch+compact")])
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "broken.json").write_text("{not json")
    paths = [tmp_path / n
             for n in ("ok.jsonl", "cut.jsonl", "capped.jsonl", "empty.jsonl", "missing.jsonl", "broken.json")]
    df, notes = report.load_all(paths, cut=[tmp_path / "capped.jsonl"])
    assert {Path(n.path).name: (n.status, n.rows) for n in notes} == {
        "ok.jsonl": ("ok", 2), "cut.jsonl": ("partial", 1), "capped.jsonl": ("partial", 1), "empty.jsonl": ("empty", 0),
        "missing.jsonl": ("missing", 0), "broken.json": ("unreadable", 0)}
    assert sorted(df.provider) == ["cpu", "naive", "torch", "torch+compact"]
    report.main([*map(str, paths), "--cut", str(tmp_path / "capped.jsonl"), "--out", str(tmp_path / "o"),
                 "--name", "r"])
    md = (tmp_path / "o" / "r.md").read_text()
    assert "| cut.jsonl " in md and "last line cut off" in md and "run stopped by its time cap" in md
    assert (tmp_path / "o" / "r.csv").exists() and (tmp_path / "o" / "r-lif_scan.png").exists()


def test_report_with_no_result_at_all_says_so_and_fails(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(SystemExit, match="none of the 2 results files"):
        report.main([str(tmp_path / "empty.jsonl"), str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o"),
                     "--name", "r"])
    assert "missing" in (tmp_path / "o" / "r.md").read_text()


def _finished_rehearsal(tmp_path, statuses: dict):
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    out.mkdir()
    steps = gpu_run.plan(True, raw)
    outcomes = [gpu_run.Outcome(s.name, statuses.get(s.name, s.expect), 1.0, s.cap) for s in steps]
    outcomes.append(gpu_run.Outcome("report", statuses.get("report", "ok"), 1.0, 30))
    stalled = next(s for s in steps if s.expect == "timeout")
    _jsonl(stalled.results, [_row()])
    report.main([str(s.results) for s in steps if s.results] + ["--cut", str(stalled.results), "--out", str(out),
                                                                 "--name", "n"])
    return steps, outcomes, out


def test_rehearsal_verdict_accepts_the_planned_run(tmp_path):
    steps, outcomes, out = _finished_rehearsal(tmp_path, {})
    assert gpu_run.rehearsal_problems(steps, outcomes, out, "n") == []


@pytest.mark.parametrize(("step", "status"), [("tests", "failed"), ("bench-memory", "ok"),
                                              ("bench-lif_scan", "timeout"), ("report", "failed"),
                                              ("preflight", "skipped")])
def test_rehearsal_verdict_catches_a_step_that_ended_otherwise(tmp_path, step, status):
    steps, outcomes, out = _finished_rehearsal(tmp_path, {step: status})
    problems = gpu_run.rehearsal_problems(steps, outcomes, out, "n")
    assert any(p.startswith(f"{step}: {status}") for p in problems), problems


def test_rehearsal_verdict_needs_the_partial_file_in_the_report(tmp_path):
    steps, outcomes, out = _finished_rehearsal(tmp_path, {})
    md = out / "n.md"
    md.write_text(md.read_text().replace("partial", "ok"))
    problems = gpu_run.rehearsal_problems(steps, outcomes, out, "n")
    assert any("does not list memory.jsonl as partial" in p for p in problems)


def test_progress_is_saved_whole_after_each_step(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    out.mkdir()
    import tarfile

    (raw / "a.jsonl").write_text("{}\n")
    gpu_run.save_progress(raw, out, {"steps": [1]})
    (raw / "b.jsonl").write_text("{}\n")
    gpu_run.save_progress(raw, out, {"steps": [1, 2]})
    with tarfile.open(out / "bench-raw.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["raw", "raw/a.jsonl", "raw/b.jsonl"]
    assert json.loads((out / "summary.json").read_text()) == {"steps": [1, 2]}
    assert sorted(p.name for p in out.iterdir()) == ["bench-raw.tar.gz", "summary.json"]


@pytest.mark.parametrize("where", ["read-only", "a file", "a folder where run.log belongs",
                                   "a folder where summary.json belongs"])
def test_an_out_it_cannot_use_exits_2_with_one_line_before_any_step(tmp_path, tmpfs, monkeypatch, capsys, where):
    """$OUT read-only (a real read-only tmpfs), a file, or holding a folder where one of the run's
    own files belongs: one line `error: ...`, exit 2, and no step started."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(gpu_run, "run_step", lambda *a, **k: pytest.fail("a step ran"))
    if where == "read-only":
        out = tmpfs("ro")  # the folder exists: only a write in it fails
    elif where == "a file":
        out = tmp_path / "out"
        out.write_text("")
    else:
        out = tmp_path / "out"
        (out / where.split()[3]).mkdir(parents=True)
    assert gpu_run.main(["--out", str(out), "--rehearsal"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot use --out {out}") and "Traceback" not in err, err


def test_a_full_out_exits_with_one_line_naming_the_file(tmpfs, monkeypatch, capsys):
    """$OUT on a real full file system (a filled 64 KiB tmpfs), where a file can still be created
    but nothing written: one line naming run.log and the cause, exit 1 (a file that could not be
    written), no traceback, no step started."""
    from ..conftest import fill

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(gpu_run, "run_step", lambda *a, **k: pytest.fail("a step ran"))
    out = tmpfs("size=64k")
    fill(out)
    assert gpu_run.main(["--out", str(out), "--rehearsal"]) == 1
    err = capsys.readouterr().err
    assert err == f"error: cannot write {out / 'run.log'}: No space left on device\n", err
