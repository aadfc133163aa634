"""The one prepared GPU run, and its rehearsal on CPU: the same steps, the same code.

    python -m bench.gpu_run --out DIR               # on the GPU machine (bench/gpu_check.sh)
    python -m bench.gpu_run --out DIR --rehearsal   # CPU, Triton interpreter, tiny sizes (make gpu-rehearsal)

Steps, each a subprocess under its own time cap (seconds) and all under one budget for the run:

  preflight          20   one tiny Triton kernel built and run, one torch op on the device; if it
                          fails the run stops there with its one-line reason (bench/preflight.py)
  build-cpu-kernel   45   the cpu backend's native kernel, or a skip when no C++ compiler exists
  tests              90   tests/kernels on the device, no -x, Hypothesis profile "gpu" (few examples)
  bench-<group>           one pytest-benchmark group each, results saved test by test (--bench-jsonl):
                          kernel_time 45, lif_scan 75, compile_provider 40, training_step 35,
                          spikingjelly_convert 25, memory 20, esg_vs_dspike 30
  sj-implementations 50   SpikingJelly's own implementations (CUDA only)
  report             20   bench/report.py over every results file, whatever state each is in

A step that fails or is cut by its cap does not stop the next ones (the preflight alone does).
A step gets at most what is left of the budget, less a reserve for the report, so the report
always runs; a step left with under 5 s is skipped. Everything lands in --out, the only thing
that comes back from the GPU machine, and only within its limits: at most 8 plain files, 16 MiB
each, 64 MiB in all, 2 folders deep, names of letters, digits, '.', '_', '-' (OUT_LIMITS, NAME),
checked at the end (`out_problems`):

  run.log             every step's output as it runs, with its cap, status and time
  summary.json        the steps' outcomes, the budget, the $OUT check (rewritten after each step)
  bench-raw.tar.gz    the raw results: *.jsonl per group, tests.xml, preflight.json, sj json
                      (rewritten after each step, so a run stopped from outside keeps them)
  <name>.md/.csv/-lif_scan.png   the report (name: device and date)

The rehearsal differs in the device (CPU, TRITON_INTERPRET=1), the sizes (--bench-tiny, a
subset of the tests, Hypothesis profile "rehearsal") and one fault injected on purpose: the
memory group stalls after its first result (BENCH_STALL_AFTER, bench/results_log.py), so its cap
kills it, its results file is partial and the report must say so. SpikingJelly's step needs
CUDA and is skipped. The rehearsal exits 1 unless every step ended as expected, the report names
the partial file, and $OUT is within the limits; the real run exits 1 when any step failed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from snn import exits
from snn.files import WriteError, make_folder, write_atomic

REPO = Path(__file__).resolve().parents[1]
# What the GPU machine brings back from $OUT: at most 8 files, 16 MiB each, 64 MiB in all, 2 folders
# down, with names of these characters only; anything else there is lost.
OUT_LIMITS = {"files": 8, "file_bytes": 16 << 20, "total_bytes": 64 << 20, "depth": 2}
NAME = re.compile(r"^[A-Za-z0-9._-]+$")
# The steps' share of the 8 minutes the run may take on the H200: with the machine's start that
# leaves a shorter rerun within the 15 minutes of device time (docs/gpu-run.md).
BUDGET_S = 440.0
REPORT_RESERVE_S = 25.0
STALLED_GROUP = "memory"  # the rehearsal's group killed by its cap on purpose

TEST_FILES = ["tests/kernels/test_compact_nan.py", "tests/kernels/test_host_path.py", "tests/kernels/test_lif_api.py",
              "tests/kernels/test_lif_nonfinite.py", "tests/kernels/test_lif_properties.py",
              "tests/kernels/test_lif_specialization.py", "tests/kernels/test_lif_cpu.py",
              "tests/kernels/test_compile.py"]
REHEARSAL_TEST_FILES = ["tests/kernels/test_compact_nan.py", "tests/kernels/test_host_path.py",
                        "tests/kernels/test_lif_properties.py"]
GROUPS = {"kernel_time": 45, "lif_scan": 75, "compile_provider": 40, "training_step": 35, "spikingjelly_convert": 25,
          "memory": 20, "esg_vs_dspike": 30}
# build-cpu-kernel: a cold C++ build takes ~50-80 s on 2 loaded cores
REHEARSAL_CAPS = {"preflight": 30, "build-cpu-kernel": 150, "tests": 90, "bench-memory": 30, "report": 30}
REHEARSAL_CAP_S = 60.0  # any other step of the rehearsal
REHEARSAL_BUDGET_S = 600.0


@dataclass
class Step:
    name: str
    argv: list[str]
    cap: float
    env: dict = field(default_factory=dict)
    expect: str = "ok"  # the rehearsal's requirement: "ok", "timeout" (the stalled group) or "skipped"
    fatal: bool = False  # a failure ends the run (the preflight)
    results: Path | None = None  # the results file a benchmark group writes
    skip_reason: str = ""  # set: the step is not run, for this reason


@dataclass
class Outcome:
    name: str
    status: str  # ok, failed, timeout, skipped
    seconds: float
    cap: float
    returncode: int | None = None
    note: str = ""


class Log:
    """run.log in $OUT, written as lines arrive (what is there survives any later failure), and
    echoed to stdout."""

    def __init__(self, path: Path):
        self.path = path
        self.file = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def write(self, text: str) -> None:
        """Append text to run.log and stdout; raises WriteError naming run.log when $OUT refuses
        it (full)."""
        with self.lock:
            try:
                self.file.write(text)
                self.file.flush()
            except OSError as e:
                raise WriteError(f"cannot write {self.path}: {e.strerror or e}") from e
            sys.stdout.write(text)
            sys.stdout.flush()

    def close(self) -> None:
        self.file.close()


def _kill_group(proc: subprocess.Popen) -> None:
    """End the step and every process it started (its own session): TERM, then KILL."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_step(step: Step, log: Log, seconds_left: float) -> Outcome:
    """Run one step under min(its cap, seconds_left); its output goes to the log line by line."""
    if step.skip_reason:
        log.write(f"\n== {step.name}: skipped ({step.skip_reason})\n")
        return Outcome(step.name, "skipped", 0.0, step.cap, note=step.skip_reason)
    cap = min(step.cap, seconds_left)
    if seconds_left < 5:
        log.write(f"\n== {step.name}: skipped (the run's budget has {seconds_left:.0f} s left)\n")
        return Outcome(step.name, "skipped", 0.0, step.cap, note="no time left in the run's budget")
    log.write(f"\n== {step.name} (cap {cap:.0f} s): {' '.join(map(str, step.argv))}\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **step.env}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    start = time.monotonic()
    proc = subprocess.Popen([str(a) for a in step.argv], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
    pump = threading.Thread(target=lambda: [log.write(line) for line in proc.stdout], daemon=True)
    pump.start()
    try:
        rc = proc.wait(timeout=cap)
        status = "ok" if rc == 0 else "failed"
        note = "" if rc == 0 else f"exit {rc}"
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        rc, status, note = proc.returncode, "timeout", f"stopped by its cap of {cap:.0f} s"
    pump.join(timeout=10)
    seconds = time.monotonic() - start
    log.write(f"== {step.name}: {status} in {seconds:.1f} s" + (f" ({note})" if note else "") + "\n")
    return Outcome(step.name, status, seconds, cap, rc, note)


def plan(rehearsal: bool, raw: Path, python: str = sys.executable) -> list[Step]:
    """The run's steps in order (the report's step is built after the groups ran: `report_step`)."""
    def cap(name: str, real: float) -> float:
        return REHEARSAL_CAPS.get(name, REHEARSAL_CAP_S) if rehearsal else real

    test_env = {"HYPOTHESIS_PROFILE": "rehearsal" if rehearsal else "gpu"}
    steps = [
        Step("preflight", [python, "-m", "bench.preflight", "--device", "cpu" if rehearsal else "cuda",
                           "--json", raw / "preflight.json"], cap("preflight", 20), fatal=True),
        Step("build-cpu-kernel", [python, "-m", "bench.build_cpu"], cap("build-cpu-kernel", 45)),
        Step("tests", [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfEs", "-m", "not slow",
                       "--junitxml", raw / "tests.xml", *(REHEARSAL_TEST_FILES if rehearsal else TEST_FILES)],
             cap("tests", 90), env=test_env),
    ]
    for group, real_cap in GROUPS.items():
        name = f"bench-{group}"
        results = raw / f"{group}.jsonl"
        stall = rehearsal and group == STALLED_GROUP
        steps.append(Step(name, [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"bench/test_{group}.py",
                                 "--benchmark-only", "--bench-jsonl", results,
                                 *(["--bench-tiny"] if rehearsal else [])],
                          cap(name, real_cap), env={"BENCH_STALL_AFTER": "1"} if stall else {},
                          expect="timeout" if stall else "ok", results=results))
    steps.append(Step("sj-implementations", [python, "bench/sj_implementations.py", "--out",
                                             raw / "sj-implementations.json", "--timeout", "15"],
                      cap("sj-implementations", 50), expect="skipped",
                      skip_reason="SpikingJelly's CUDA implementations need CUDA" if rehearsal else ""))
    return steps


def report_step(steps: list[Step], outcomes: list[Outcome], out: Path, name: str, rehearsal: bool,
                python: str = sys.executable) -> Step:
    """bench/report.py over every group's results file; the groups cut by their cap are named --cut."""
    timed_out = {o.name for o in outcomes if o.status == "timeout"}
    argv = [python, "bench/report.py", *[s.results for s in steps if s.results], "--out", out, "--name", name]
    for s in steps:
        if s.results and s.name in timed_out:
            argv += ["--cut", s.results]
    return Step("report", argv, REHEARSAL_CAPS["report"] if rehearsal else 20)


def out_problems(out: Path) -> list[str]:
    """What in out the GPU machine would not bring back (OUT_LIMITS, NAME, plain files and folders
    only); empty when all is well."""
    problems, files, total = [], 0, 0
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out)
        if any(not NAME.match(part) for part in rel.parts):
            problems.append(f"{rel}: a name with characters other than letters, digits, '.', '_', '-'")
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            problems.append(f"{rel}: not a plain file or folder")
            continue
        if path.is_file():
            files += 1
            size = path.stat().st_size
            total += size
            if len(rel.parts) - 1 > OUT_LIMITS["depth"]:
                problems.append(f"{rel}: more than {OUT_LIMITS['depth']} folders down")
            if size > OUT_LIMITS["file_bytes"]:
                problems.append(f"{rel}: {size} bytes > {OUT_LIMITS['file_bytes']}")
    if files > OUT_LIMITS["files"]:
        problems.append(f"{files} files > {OUT_LIMITS['files']}")
    if total > OUT_LIMITS["total_bytes"]:
        problems.append(f"{total} bytes in all > {OUT_LIMITS['total_bytes']}")
    return problems


def save_progress(raw: Path, out: Path, summary: dict) -> None:
    """The raw results so far as out/bench-raw.tar.gz and the steps so far in out/summary.json,
    each replaced atomically: if the whole run is stopped from outside, $OUT still holds every
    result measured up to the last finished step."""
    def tar(f) -> None:
        with tarfile.open(fileobj=f, mode="w:gz") as archive:
            archive.add(raw, arcname="raw")

    write_atomic(out / "bench-raw.tar.gz", tar)
    write_atomic(out / "summary.json", json.dumps(summary, indent=1))


def report_name(raw: Path, rehearsal: bool) -> str:
    """<device>-<date>, the device as the preflight found it."""
    try:
        device = json.loads((raw / "preflight.json").read_text()).get("device_name") or "unknown"
    except (OSError, ValueError):
        device = "unknown"
    device = re.sub(r"[^A-Za-z0-9._-]+", "_", device).strip("_") or "unknown"
    return f"{'rehearsal-' if rehearsal else ''}{device}-{datetime.date.today().isoformat()}"


def rehearsal_problems(steps: list[Step], outcomes: list[Outcome], out: Path, name: str) -> list[str]:
    """Where the rehearsal did not go as the real run must: each step's expected end, the stalled
    group's partial results reaching the report, the report's files."""
    problems = []
    by_name = {o.name: o for o in outcomes}
    for step in [*steps, Step("report", [], 0)]:
        outcome = by_name.get(step.name)
        if outcome is None:
            problems.append(f"{step.name}: never ran")
        elif outcome.status != step.expect:
            problems.append(f"{step.name}: {outcome.status} ({outcome.note}), expected {step.expect}")
    stalled = next(s for s in steps if s.expect == "timeout")
    text = stalled.results.read_text() if stalled.results.exists() else ""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        problems.append(f"{stalled.name}: no result saved before its cap (expected a partial set)")
    md = out / f"{name}.md"
    if not md.exists():
        problems.append(f"report: no {md.name}")
    elif not re.search(rf"\|\s*{re.escape(stalled.results.name)}\s*\|\s*partial\s*\|", md.read_text()):
        problems.append(f"report: {md.name} does not list {stalled.results.name} as partial")
    for suffix in (".csv", "-lif_scan.png"):
        if not (out / f"{name}{suffix}").exists():
            problems.append(f"report: no {name}{suffix}")
    return problems


OWN_FILES = ("run.log", "summary.json", "bench-raw.tar.gz")  # what the run writes in $OUT itself


@exits.one_line_errors
def main(argv=None) -> int:
    """The whole run; an $OUT that cannot be used (read-only, a file, a folder where one of its files
    belongs) or a file that cannot be written there ends it with one line `error: ...` and the
    error's exit code (snn.exits), not a traceback."""
    return _main(argv)


def _main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_run", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="where everything lands ($OUT on the GPU machine)")
    parser.add_argument("--rehearsal", action="store_true", help="CPU, interpreter, tiny sizes, one stalled group")
    parser.add_argument("--budget", type=float, help=f"seconds for all steps (default {BUDGET_S:.0f}; rehearsal "
                                                     f"{REHEARSAL_BUDGET_S:.0f})")
    args = parser.parse_args(argv)
    budget = args.budget or (REHEARSAL_BUDGET_S if args.rehearsal else BUDGET_S)
    if budget <= REPORT_RESERVE_S:
        parser.error(f"--budget must exceed the report's reserve of {REPORT_RESERVE_S:.0f} s")
    if args.rehearsal and os.environ.get("TRITON_INTERPRET") != "1":
        parser.error("the rehearsal runs the Triton kernels in the interpreter: set TRITON_INTERPRET=1")
    if not args.rehearsal:
        os.environ.pop("TRITON_INTERPRET", None)
    out = make_folder(args.out, "--out", files=OWN_FILES).resolve()
    raw = Path(tempfile.mkdtemp(prefix="gpu-run-raw-"))
    log = Log(out / "run.log")
    start = time.monotonic()
    log.write(f"bench.gpu_run {'rehearsal' if args.rehearsal else 'real run'}: budget {budget:.0f} s, "
              f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}, "
              f"python {sys.version.split()[0]}\n")
    steps = plan(args.rehearsal, raw)
    outcomes: list[Outcome] = []
    stopped = ""

    def summary() -> dict:
        return {"mode": "rehearsal" if args.rehearsal else "real", "budget_s": budget,
                "seconds": time.monotonic() - start, "stopped": stopped, "steps": [asdict(o) for o in outcomes]}

    for step in steps:
        left = budget - REPORT_RESERVE_S - (time.monotonic() - start)
        outcome = run_step(step, log, left)
        outcomes.append(outcome)
        if step.fatal and outcome.status != "ok":
            stopped = f"{step.name} {outcome.status}: the run stops here"
            log.write(f"== {stopped}\n")
        save_progress(raw, out, summary())
        if stopped:
            break
    name = report_name(raw, args.rehearsal)
    if not stopped:
        report = report_step(steps, outcomes, out, name, args.rehearsal)
        outcomes.append(run_step(report, log, budget - (time.monotonic() - start)))  # the reserve is in what is left
    save_progress(raw, out, summary())
    problems = out_problems(out)
    if args.rehearsal and not stopped:
        problems += rehearsal_problems(steps, outcomes, out, name)
    elif not args.rehearsal:
        problems += [f"{o.name}: {o.status} ({o.note})" for o in outcomes if o.status not in ("ok", "skipped")]
    if stopped:
        problems.append(stopped)
    write_atomic(out / "summary.json", json.dumps({**summary(), "report_name": name, "problems": problems}, indent=1))
    table = "\n".join(f"  {o.name:<26} {o.status:<8} {o.seconds:6.1f} s / cap {o.cap:4.0f} s  {o.note}"
                      for o in outcomes)
    verdict = "OK" if not problems else "FAILED:\n  " + "\n  ".join(problems)
    log.write(f"\n== steps ({time.monotonic() - start:.0f} s of {budget:.0f} s)\n{table}\n"
              f"== {'rehearsal' if args.rehearsal else 'GPU run'} {verdict}\n")
    log.close()
    shutil.rmtree(raw, ignore_errors=True)  # last: the rehearsal's check reads the stalled group's file there
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
