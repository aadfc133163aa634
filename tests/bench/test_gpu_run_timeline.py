"""The GPU run's stop rules and its $OUT, worked out by hand on a fake clock: `gpu_run.main` drives
a stand-in for `run_step` that only advances the clock, so every number below is a timeline
computed from the rules in docs/gpu-run.md (one budget for all steps, 25 s of it kept for the
report, a step skipped when under 5 s are left, only a failed preflight ends the run), not read
back from the code. The real `run_step` is checked at its own boundaries with real subprocesses.
"""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pytest

from bench import gpu_run

REPO = Path(__file__).resolve().parents[2]
OWN = {"run.log", "summary.json", "bench-raw.tar.gz"}  # what the run itself writes in $OUT


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def _run(tmp_path, monkeypatch, *, budget, seconds=10.0, status=None, rehearsal=False):
    """gpu_run.main on a fake clock. Each step takes `seconds` of the fake clock, or what it is
    offered if that is less; under 5 s offered it is skipped and takes none (the documented
    rule). status: {step name: status} for steps that do not end "ok". Returns (exit code, the
    calls as (name, seconds offered, steps in summary.json at that moment, names in $OUT at
    that moment), $OUT)."""
    status = status or {}
    clock = _Clock()
    out = tmp_path / "out"
    calls = []
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # main drops it for a real run; restored afterwards
    monkeypatch.setattr(gpu_run, "time", types.SimpleNamespace(monotonic=clock.monotonic))

    def fake_step(step, log, seconds_left):
        summary = out / "summary.json"
        saved = len(json.loads(summary.read_text())["steps"]) if summary.exists() else 0
        calls.append((step.name, seconds_left, saved, sorted(p.name for p in out.iterdir())))
        if seconds_left < 5:
            return gpu_run.Outcome(step.name, "skipped", 0.0, step.cap, note="no time left in the run's budget")
        took = min(seconds, seconds_left)
        clock.now += took
        return gpu_run.Outcome(step.name, status.get(step.name, "ok"), took, min(step.cap, seconds_left))

    monkeypatch.setattr(gpu_run, "run_step", fake_step)
    args = ["--out", str(out), "--budget", str(budget)] + (["--rehearsal"] if rehearsal else [])
    code = gpu_run.main(args)
    return code, calls, out


STEPS = ["preflight", "build-cpu-kernel", "tests", "bench-kernel_time", "bench-lif_scan", "bench-compile_provider",
         "bench-training_step", "bench-spikingjelly_convert", "bench-memory", "bench-esg_vs_dspike",
         "sj-implementations"]


def test_steps_are_offered_the_budget_less_the_report_reserve_and_the_report_the_rest(tmp_path, monkeypatch):
    """Budget 100 s, 25 s kept for the report, every step wanting 10 s. By hand: the steps start at
    0, 10, ..., 60 s and are offered 100 - 25 - start = 75, 65, 55, 45, 35, 25, 15 s; the 8th
    starts at 70 s, is offered 5 s and uses them; the three after it start at 75 s, are offered
    0 s and are skipped. The report starts at 75 s and is offered what is left of the budget,
    25 s; it takes its 10 s, so the run ends at 85 s."""
    code, calls, out = _run(tmp_path, monkeypatch, budget=100)
    assert [c[0] for c in calls] == [*STEPS, "report"]
    assert [c[1] for c in calls] == pytest.approx([75, 65, 55, 45, 35, 25, 15, 5, 0, 0, 0, 25])
    summary = json.loads((out / "summary.json").read_text())
    assert [s["status"] for s in summary["steps"]] == ["ok"] * 8 + ["skipped"] * 3 + ["ok"]
    assert all(s["note"] == "no time left in the run's budget" for s in summary["steps"][8:11])
    assert summary["seconds"] == pytest.approx(85) and summary["budget_s"] == 100
    assert summary["problems"] == [] and code == 0  # skipped for time is recorded, not a failure


def test_the_report_gets_no_more_than_what_is_left_of_the_budget(tmp_path, monkeypatch):
    """Budget 60 s, steps of 10 s: offered 35, 25, 15, 5 s; the 4th uses its 5 s and ends at 35 s,
    every later step is skipped; the report is offered 60 - 35 = 25 s (its reserve), never the
    reserve on top of what is left, which would let the run end past its budget."""
    code, calls, _ = _run(tmp_path, monkeypatch, budget=60)
    assert [c[1] for c in calls[:4]] == pytest.approx([35, 25, 15, 5])
    assert calls[-1][0] == "report" and calls[-1][1] == pytest.approx(25)
    assert code == 0


def test_a_failed_or_capped_step_does_not_stop_the_next_ones_but_fails_the_real_run(tmp_path, monkeypatch):
    """A failed tests step and a group cut by its cap: every later step and the report still run,
    the real run exits 1 and summary.json names both."""
    code, calls, out = _run(tmp_path, monkeypatch, budget=1000,
                            status={"tests": "failed", "bench-lif_scan": "timeout"})
    assert [c[0] for c in calls] == [*STEPS, "report"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped"] == ""
    assert sorted(p.split(":")[0] for p in summary["problems"]) == ["bench-lif_scan", "tests"]
    assert code == 1


def test_a_failed_preflight_ends_the_run_before_any_other_step(tmp_path, monkeypatch):
    """Only the preflight is fatal: when it fails nothing else runs, not even the report, and the
    run exits 1 with the reason in summary.json."""
    code, calls, out = _run(tmp_path, monkeypatch, budget=1000, status={"preflight": "failed"})
    assert [c[0] for c in calls] == ["preflight"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped"].startswith("preflight failed") and code == 1
    assert any(p.startswith("preflight failed") for p in summary["problems"])


def test_progress_is_in_out_before_each_next_step_and_nothing_else_is(tmp_path, monkeypatch):
    """summary.json holds every finished step when the next one starts (so a run stopped from
    outside keeps them), and $OUT never holds anything but the run's own files (the raw results
    are gathered elsewhere and travel as bench-raw.tar.gz)."""
    _, calls, out = _run(tmp_path, monkeypatch, budget=1000)
    assert [c[2] for c in calls] == list(range(len(calls)))
    assert calls[0][3] == ["run.log"]
    for _, _, _, names in calls[1:]:
        assert set(names) == OWN
    assert {p.name for p in out.iterdir()} == OWN


def test_report_is_told_which_groups_were_cut_by_their_cap(tmp_path):
    """--cut names the results of the groups that ended "timeout", and only those (a failed group's
    results are complete as far as they go)."""
    steps = gpu_run.plan(False, tmp_path)
    status = {"bench-memory": "timeout", "bench-lif_scan": "failed", "tests": "timeout"}
    outcomes = [gpu_run.Outcome(s.name, status.get(s.name, "ok"), 1.0, s.cap) for s in steps]
    argv = [str(a) for a in gpu_run.report_step(steps, outcomes, tmp_path / "o", "n", False).argv]
    cut = [argv[i + 1] for i, a in enumerate(argv) if a == "--cut"]
    assert cut == [str(tmp_path / "memory.jsonl")]
    assert sum(a.endswith(".jsonl") for a in argv) == len(gpu_run.GROUPS) + 1  # every group's file, memory's twice


def test_a_step_with_exactly_5_s_left_runs_and_under_5_s_is_skipped_with_the_reason(tmp_path):
    """The boundary of "a step left with under 5 s is skipped": 5 s runs, 4.9 s does not, and the
    skip is recorded with its reason, in the outcome and in run.log."""
    log = gpu_run.Log(tmp_path / "run.log")
    step = gpu_run.Step("quick", [sys.executable, "-c", "pass"], cap=30)
    ran = gpu_run.run_step(step, log, seconds_left=5)
    skipped = gpu_run.run_step(step, log, seconds_left=4.9)
    log.close()
    assert ran.status == "ok" and ran.cap == 5
    assert (skipped.status, skipped.seconds, skipped.note) == ("skipped", 0.0, "no time left in the run's budget")
    assert "quick: skipped (the run's budget has 5 s left)" in (tmp_path / "run.log").read_text()


def test_a_step_planned_as_skipped_records_why(tmp_path):
    """The rehearsal's SpikingJelly step is not run, and its outcome and run.log say why."""
    step = next(s for s in gpu_run.plan(True, tmp_path) if s.name == "sj-implementations")
    log = gpu_run.Log(tmp_path / "run.log")
    outcome = gpu_run.run_step(step, log, seconds_left=100)
    log.close()
    assert outcome.status == "skipped" and "need CUDA" in outcome.note
    assert "sj-implementations: skipped (SpikingJelly's CUDA implementations need CUDA)" in (
        tmp_path / "run.log").read_text()


def _doc() -> str:
    return (REPO / "docs" / "gpu-run.md").read_text()


def test_caps_budget_and_reserve_are_the_documented_ones():
    """docs/gpu-run.md's step table, budget and reserve are what the real run plans."""
    doc = _doc()
    documented = {m[1]: int(m[2]) for m in re.finditer(r"^\| ([a-z_-]+) \| (\d+)", doc, re.M)}
    planned = {s.name: s.cap for s in gpu_run.plan(False, Path("raw"))}
    planned["report"] = gpu_run.report_step([], [], Path("o"), "n", False).cap
    assert planned == documented
    assert gpu_run.BUDGET_S == int(re.search(r"share one budget of (\d+) s", doc)[1])
    assert gpu_run.REPORT_RESERVE_S == int(re.search(r"less (\d+) s kept for the report", doc)[1])


def test_the_budget_fits_the_device_limits():
    """Worked from the device's limits: the script (budget, about 5 s of wheels and nvidia-smi,
    about 2 s of tar and summary) stays within 8 minutes, far inside the 10 minutes one command
    may take, and with a 120 s machine start leaves the documented rerun (--budget 200 on the
    still warm machine) inside the 15 minutes of device time; the report's cap fits in the
    reserve kept for it."""
    script = gpu_run.BUDGET_S + 5 + 2
    assert script <= 8 * 60 < 10 * 60
    assert 120 + script + (200 + 5 + 2) <= 15 * 60
    assert gpu_run.report_step([], [], Path("o"), "n", False).cap <= gpu_run.REPORT_RESERVE_S


def test_out_total_size_limit_and_its_boundary(tmp_path):
    """64 MiB in all: four files of exactly 16 MiB (each at its own limit) pass; five files of
    13 MiB (65 MiB, each under 16 MiB) break the total only."""
    out = tmp_path / "out"
    out.mkdir()
    for i in range(4):
        with open(out / f"f{i}.bin", "wb") as f:
            f.truncate(16 << 20)
    assert gpu_run.out_problems(out) == []
    for p in out.iterdir():
        p.unlink()
    for i in range(5):
        with open(out / f"f{i}.bin", "wb") as f:
            f.truncate(13 << 20)
    assert gpu_run.out_problems(out) == [f"{5 * 13 << 20} bytes in all > {64 << 20}"]


def test_out_links_are_named(tmp_path):
    """A symbolic link in $OUT does not come back: it is named even when it points at a file."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("x")
    (out / "link.txt").symlink_to(out / "a.txt")
    assert gpu_run.out_problems(out) == ["link.txt: not a plain file or folder"]
