"""Compile every LIF kernel variant for Hopper (sm_90) ahead of time, on a machine without a GPU.

    python tools/compile_check.py                  # the installed Triton (or python -m tools.compile_check)
    python tools/compile_check.py --triton 3.6.0   # Triton 3.6.0 from a venv in .cache/
    make gpu-compile-check                         # both (CI runs this)

Each variant is what `fused_triton.fwd` / `bwd` launch for one configuration (dtype, reset,
saved state, surrogate, detach, which gradients arrive) and one class of N (N % 16 == 0, or
not): the host functions are called on small CPU tensors with the kernels' `run` intercepted,
the launch is specialized by Triton's own binder as the JIT would for a CUDA sm_90 device, and
`triton.compile` builds it for `GPUTarget("cuda", 90, 32)` with the `ptxas` shipped in Triton.
No driver is touched. A table is printed (registers, spills, shared memory, and per time step
of the PTX loop: barriers, instructions, width of the global accesses); the exit status is 1
when a variant

- fails to compile,
- spills registers (ptxas' verbose log),
- uses more registers than `REGISTER_BUDGET` for its class: 64 when N % 16 == 0 (at 128 threads
  per program, 8 programs, 1024 threads, share an SM: enough loads in flight to stream at full
  bandwidth), 128 for the other classes (scalar fallbacks: 4 programs per SM),
- or, in the N % 16 == 0 class, makes a scalar global access inside the time loop of the PTX.
  A [T, N] row access must be a vector (`ld.global.v2/v4`, 64-128 bits per thread); the one
  exception is the packed spike bits, whose single byte per thread holds 8 whole neurons;
- or, in the backward, has a load in the time loop whose value is used in the same time step
  (column `pref`: loads whose value is first used one step later / loads in the loop). The
  backward prefetches time t - 1 (u, spike bits, grad-spikes) while it computes time t, so that
  no step waits on its own loads; a load used where it is issued costs a memory latency per
  step. The forward loads x where it uses it (one latency per step, shown, not enforced). One
  waiver (`_prefetch_waiver`): the spike-bit loads of the learnable-decay compact variants in the
  scalar classes.

The classes compiled are N % 16 == 0, N == 1 and any other N, Triton's three classes for an
int32 N; N >= 2^31 (an int64 N) would need [T, 2^31] tensors to reach through the host code and
is not compiled here.

`TRITON_INTERPRET` must be unset (under the interpreter `@triton.jit` builds no JIT function):
the check refuses to run otherwise (exit 2). It uses a fresh Triton cache so that ptxas runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

TARGET_ARCH = 90
N_CLASSES = {"N%16==0": 4096, "N%16!=0": 4099, "N==1": 1}  # an N of each class; vectors checked in the first
REGISTER_BUDGET = {"N%16==0": 64, "N%16!=0": 128, "N==1": 128}
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Launch:
    """One kernel launch as the host code makes it (args and keyword options, no grid)."""
    name: str
    kernel: object
    args: tuple
    kwargs: dict
    n_class: str


@dataclass
class Report:
    name: str
    n_class: str
    registers: int = -1
    spills: int = -1
    shared: int = -1
    loop_accesses: list = field(default_factory=list)  # (op, bits per thread, is the bit row)
    loop_barriers: int = 0  # bar.sync in the time loop: a layout change through shared memory
    loop_instructions: int = 0  # PTX instructions in the time loop (per thread and step)
    loop_loads: int = 0  # global loads in the time loop
    prefetched_loads: int = 0  # of those, loads whose value is first used in the next iteration
    error: str = ""


@contextlib.contextmanager
def _intercepted(kernels, sink: list):
    """Make each kernel's launch record (kernel, args, kwargs) instead of running."""
    def recorder(kernel):
        def run(*args, grid, warmup, **kwargs):
            sink.append((kernel, args, kwargs))
        return run
    for k in kernels:
        k.run = recorder(k)
    try:
        yield
    finally:
        for k in kernels:
            del k.run


def host_launch(direction: str, T: int, N: int, dtype, p, state, has_gs: bool = True, has_gm: bool = True,
                decay_grad: bool = False):
    """(kernel, args, kwargs) that `fused_triton.fwd` (direction "fwd", state None / "exact" /
    "compact") or `fused_triton.bwd` ("bwd", state "exact" / "compact") launches for a [T, N]
    input of dtype, found by calling the host function on CPU tensors with the launch intercepted."""
    import torch
    from kernels.lif import fused_triton
    from kernels.lif.layout import cdiv

    sink: list = []
    x = torch.empty((T, N), dtype=dtype)
    with _intercepted((fused_triton._lif_fwd_kernel, fused_triton._lif_bwd_kernel), sink):
        if direction == "fwd":
            fused_triton.fwd(x, torch.empty_like(x), p, state)
        else:
            u = torch.empty((T, N), dtype=torch.bfloat16 if state == "compact" else torch.float32)
            saved = (u, torch.empty((T, cdiv(N, 8)), dtype=torch.uint8)) if state == "compact" else (u,)
            gs = torch.empty_like(x) if has_gs else None
            gm = torch.empty((), dtype=torch.float32) if has_gm else None
            fused_triton.bwd(gs, gm, saved, p, torch.empty_like(x), decay_grad)
    (launch,) = sink
    return launch


def launches(n_classes: dict = N_CLASSES, T: int = 2) -> Iterator[Launch]:
    """Every variant the host functions launch: the full forward grid (dtype x reset x saved
    state) and the backward over surrogate x dtype x state, plus reset/detach, which gradients
    arrive and the learnable decay's gradient (fp32, tanh, both states)."""
    import torch
    from kernels.lif.params import SURROGATES, LIFParams

    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    cases = []
    for dname, dtype in dtypes.items():
        for reset in ("hard", "soft"):
            for save in (None, "exact", "compact"):
                cases.append((f"fwd {dname} {reset} save={save}", "fwd", dtype, LIFParams(reset=reset), save,
                              True, True, False))
    for state in ("exact", "compact"):
        for dname, dtype in dtypes.items():
            for surrogate in SURROGATES:
                cases.append((f"bwd {dname} {state} {surrogate}", "bwd", dtype, LIFParams(surrogate=surrogate),
                              state, True, True, False))
        for reset in ("hard", "soft"):
            for detach in (False, True):
                cases.append((f"bwd fp32 {state} tanh {reset} detach={detach}", "bwd", torch.float32,
                              LIFParams(reset=reset, detach_reset=detach), state, True, True, False))
            cases.append((f"bwd fp32 {state} atan {reset} decay_grad", "bwd", torch.float32,
                          LIFParams(reset=reset, surrogate="atan"), state, True, True, True))
        for has_gs, has_gm in ((True, False), (False, True)):
            cases.append((f"bwd fp32 {state} tanh gs={has_gs} gm={has_gm}", "bwd", torch.float32, LIFParams(),
                          state, has_gs, has_gm, False))
    for n_class, N in n_classes.items():
        seen = set()
        for name, direction, dtype, p, state, has_gs, has_gm, decay_grad in cases:
            kernel, args, kwargs = host_launch(direction, T, N, dtype, p, state, has_gs, has_gm, decay_grad)
            key = specialization_key(kernel, args, kwargs)
            if key not in seen:  # e.g. the fp32 tanh hard backward appears in two groups
                seen.add(key)
                yield Launch(name, kernel, args, kwargs, n_class)


def _backend():
    from triton.backends.compiler import GPUTarget
    from triton.compiler import make_backend

    target = GPUTarget("cuda", TARGET_ARCH, 32)
    return target, make_backend(target)


def specialize(kernel, args: tuple, kwargs: dict):
    """Triton's own specialization of a launch for a CUDA sm_90 device (what `JITFunction.run`
    computes before its cache lookup): -> (options, signature, constexprs, attrs, key)."""
    from triton.runtime.jit import create_function_from_signature

    _, backend = _backend()
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    bound_args, spec, options = binder(*args, **kwargs)
    key = (kernel.fn.__name__, str(spec), str(sorted(options.items())))
    return (*kernel._pack_args(backend, kwargs, bound_args, spec, options), key)


def specialization_key(kernel, args: tuple, kwargs: dict) -> tuple:
    """The part of the JIT cache key that depends on the arguments: launches with equal keys share
    one compiled kernel."""
    return specialize(kernel, args, kwargs)[-1]


_ACCESS = re.compile(r"\b(ld|st)\.global((?:\.[\w:]+)*)\s")
_LABEL = re.compile(r"^(\$L__BB\d+_\d+):")
_BRANCH = re.compile(r"\bbra(?:\.uni)?\s+(\$L__BB\d+_\d+);")


def _loop_lines(ptx: str) -> list[str]:
    """The PTX lines inside loops (a loop: a label up to a branch back to it)."""
    lines = ptx.splitlines()
    labels = {m.group(1): i for i, line in enumerate(lines) if (m := _LABEL.match(line.strip()))}
    inside = [False] * len(lines)
    for i, line in enumerate(lines):
        m = _BRANCH.search(line)
        if m and labels.get(m.group(1), i) < i:
            for j in range(labels[m.group(1)], i + 1):
                inside[j] = True
    return [line for line, keep in zip(lines, inside) if keep]


def loop_accesses(ptx: str) -> list:
    """Global loads and stores inside the PTX's loops as (op, bits per thread, is_byte) tuples,
    e.g. ("ld", 128, False) for ld.global.v4.b32."""
    found = []
    for line in _loop_lines(ptx):
        if m := _ACCESS.search(line):
            parts = m.group(2).strip(".").split(".")
            vec = next((int(p[1:]) for p in parts if re.fullmatch(r"v\d", p)), 1)
            width = int(re.search(r"\d+$", parts[-1]).group())
            found.append((m.group(1), vec * width, vec == 1 and width == 8))
    return found


def loop_barriers(ptx: str) -> int:
    return sum(bool(re.search(r"\b(bar|barrier)\.sync\b", line)) for line in _loop_lines(ptx))


def loop_instructions(ptx: str) -> int:
    """PTX instructions (not labels, comments or directives) in the loops."""
    return sum(bool(re.match(r"\s*(@!?%\w+\s+)?[a-z]", line)) and line.rstrip().endswith(";")
               for line in _loop_lines(ptx))


_REGISTER = re.compile(r"%[A-Za-z_][\w.]*")
_INSTRUCTION = re.compile(r"^\s*(?:@!?(%\w+)\s+)?([a-z][\w.:]*)\s*(.*?);")


def _operands(line: str):
    """(opcode, registers written, registers read) of one PTX instruction line, or None."""
    m = _INSTRUCTION.match(line)
    if not m:
        return None
    predicate, opcode, rest = m.groups()
    read = {predicate} if predicate else set()
    if opcode.startswith(("st.", "bra", "bar", "ret")) or not rest:
        return opcode, set(), read | set(_REGISTER.findall(rest))
    if rest.startswith("{"):
        first, _, tail = rest[1:].partition("}")
    else:
        first, _, tail = rest.partition(",")
    return opcode, set(_REGISTER.findall(first)), read | set(_REGISTER.findall(tail))


def loop_load_use(ptx: str) -> tuple[int, int]:
    """(global loads in the loops, those whose value no instruction uses later in the same
    iteration): a value passed on only through moves (a loop-carried register) and first used
    after the branch back is a prefetch for the next step."""
    lines = [line for line in _loop_lines(ptx) if not line.strip().startswith("//")]
    parsed = [_operands(line) for line in lines]
    loads = prefetched = 0
    for k, p in enumerate(parsed):
        if p is None or not p[0].startswith("ld.global"):
            continue
        loads += 1
        values, used = set(p[1]), False
        for q in parsed[k + 1:]:
            if q is None or not values & q[2]:
                continue
            if q[0].startswith("mov"):  # a copy (or bitcast) carries the value on; not a use
                values |= q[1]
                continue
            used = True
            break
        prefetched += not used
    return loads, prefetched


def compile_launch(launch: Launch) -> Report:
    import triton
    from triton.compiler import ASTSource

    report = Report(launch.name, launch.n_class)
    target, _ = _backend()
    options, signature, constexprs, attrs, _ = specialize(launch.kernel, launch.args, launch.kwargs)
    triton.knobs.nvidia.dump_ptxas_log = True
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log):
            compiled = triton.compile(ASTSource(launch.kernel, signature, constexprs, attrs), target=target,
                                      options=options.__dict__)
    except Exception as e:  # any compile failure is a result to report, not a crash
        report.error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
        return report
    text = log.getvalue()
    regs = re.search(r"Used (\d+) registers", text)
    spills = re.findall(r"(\d+) bytes spill (?:stores|loads)", text)
    report.registers = int(regs.group(1)) if regs else -1
    report.spills = sum(map(int, spills)) if spills else -1
    report.shared = compiled.metadata.shared
    report.loop_accesses = loop_accesses(compiled.asm["ptx"])
    report.loop_barriers = loop_barriers(compiled.asm["ptx"])
    report.loop_instructions = loop_instructions(compiled.asm["ptx"])
    report.loop_loads, report.prefetched_loads = loop_load_use(compiled.asm["ptx"])
    return report


def _prefetch_waiver(r: Report) -> int:
    """Loads allowed to miss the prefetch: the spike-bit byte loads of the learnable-decay compact
    variants in the scalar classes (odd N), which Triton 3.6 schedules in the step that uses them
    at 4 neurons per thread; at 8 per thread those variants exceed the register budget. A known
    cost (docs/kernel.md), limited to these loads; 0 for every other variant."""
    if "decay_grad" not in r.name or "compact" not in r.name or r.n_class == "N%16==0":
        return 0
    return sum(is_byte for op, _, is_byte in r.loop_accesses if op == "ld")


def problems(r: Report) -> list[str]:
    if r.error:
        return [f"compile error: {r.error}"]
    found = []
    if r.registers < 0 or r.spills < 0:
        found.append("no register/spill counts in ptxas' log")
    if r.spills > 0:
        found.append(f"{r.spills} bytes of spills")
    if r.registers > REGISTER_BUDGET[r.n_class]:
        found.append(f"{r.registers} registers > budget {REGISTER_BUDGET[r.n_class]}")
    if not r.loop_accesses:
        found.append("no global access found in a loop of the PTX (the time loop is missing)")
    if r.name.startswith("bwd") and r.loop_loads - r.prefetched_loads > _prefetch_waiver(r):
        found.append(f"{r.loop_loads - r.prefetched_loads} of {r.loop_loads} time-loop loads used in the step that "
                     f"issues them (the backward prefetches time t - 1 during time t)")
    if r.n_class == "N%16==0":
        scalar = [f"{op}.{bits}b" for op, bits, is_byte in r.loop_accesses
                  if not is_byte and bits < 64]
        if scalar:
            found.append(f"scalar global accesses in the time loop: {', '.join(sorted(set(scalar)))}")
    return found


def _width(r: Report) -> str:
    rows = sorted({bits for _, bits, is_byte in r.loop_accesses if not is_byte})
    byte = sum(is_byte for _, _, is_byte in r.loop_accesses)
    text = "/".join(map(str, rows)) or "-"
    return text + (f" +{byte}x8 bits" if byte else "")


def table(reports: list[Report]) -> str:
    head = (f"{'variant':<44} {'N class':<9} {'regs':>4} {'spill':>5} {'smem':>5} {'sync':>4} {'instr':>5} "
            f"{'pref':>5}  time-loop global access, bits/thread")
    lines = [head, "-" * len(head)]
    for r in reports:
        if r.error:
            lines.append(f"{r.name:<44} {r.n_class:<9} ERROR {r.error[:160]}")
        else:
            lines.append(f"{r.name:<44} {r.n_class:<9} {r.registers:>4} {r.spills:>5} {r.shared:>5} "
                         f"{r.loop_barriers:>4} {r.loop_instructions:>5} {r.prefetched_loads:>2}/{r.loop_loads:<2}  "
                         f"{_width(r)}")
    return "\n".join(lines)


_LAUNCHES: list[Launch] = []  # filled before the worker processes fork; they get indices


def _compile_nth(i: int) -> Report:
    return compile_launch(_LAUNCHES[i])


def check(jobs: int, only: str = "") -> int:
    import triton

    _LAUNCHES[:] = [launch for launch in launches() if only in launch.name]
    if jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            reports = pool.map(_compile_nth, range(len(_LAUNCHES)), chunksize=1)
    else:
        reports = [compile_launch(launch) for launch in _LAUNCHES]
    budgets = ", ".join(f"{k}: {v}" for k, v in REGISTER_BUDGET.items())
    print(f"Triton {triton.__version__}, target sm_{TARGET_ARCH}, {len(reports)} variants, "
          f"register budget ({budgets})")
    print(table(reports))
    failed = [(r, p) for r in reports for p in problems(r)]
    for r, p in failed:
        print(f"FAIL {r.name} [{r.n_class}]: {p}")
    regs = [r.registers for r in reports if not r.error]
    print(f"{'FAILED' if failed else 'OK'}: {len(failed)} problem(s); registers {min(regs, default=0)}-"
          f"{max(regs, default=0)}")
    return 1 if failed else 0


def venv_python(version: str, cache: Path) -> Path:
    """A venv under cache/ holding triton==version alone, built once and reused. This interpreter's
    site-packages (torch, numpy) are appended to its path by a .pth file, after the venv's own,
    so its Triton wins (--system-site-packages would miss them when this Python is a venv)."""
    import site

    venv = cache / f"triton-{version}"
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import triton, torch; print(triton.__version__)"]
    if python.exists() and subprocess.run(probe, capture_output=True, text=True).stdout.strip() == version:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", f"triton=={version}"], check=True)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "zz_host_site_packages.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/compile_check.py", description=__doc__.split("\n")[0])
    parser.add_argument("--triton", metavar="VERSION", help="run the check with this Triton, installed in a venv "
                        "under --cache (e.g. 3.6.0, the H200 image's)")
    parser.add_argument("--cache", type=Path, default=REPO / ".cache", help="where the venv lives (default .cache/)")
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="parallel compiles")
    parser.add_argument("--only", default="", metavar="TEXT", help="only the variants whose name contains TEXT")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        print(f"--jobs must be >= 1, got {args.jobs}", file=sys.stderr)
        return 2
    if args.triton:
        python = venv_python(args.triton, args.cache)
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        return subprocess.run([str(python), "-m", "tools.compile_check", "--jobs", str(args.jobs),
                               "--only", args.only], env=env, cwd=REPO).returncode
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        print("TRITON_INTERPRET is set: unset it (the check compiles real kernels; no GPU is needed)",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TRITON_CACHE_DIR"] = cache  # ptxas must run for its register log
        return check(args.jobs, args.only)


if __name__ == "__main__":
    if not __package__:  # run as a file: check the kernels of this checkout, not those of another install
        sys.path.insert(0, str(REPO))
    sys.exit(main())
