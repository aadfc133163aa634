"""compile_check's reading of the PTX time loop, on hand-written PTX: which global loads feed
the step that issues them and which are prefetches for the next step (the `pref` column)."""

import os
import subprocess
import sys
from pathlib import Path

from tools.compile_check import loop_load_use, problems, Report

# A load used in its own iteration (through a bitcast move and an add), the shape Triton emits
# for a masked load that the next instruction consumes.
SAME_STEP = """
$L__BB0_2:
	// begin inline asm
	mov.u32 %r5, 0x0;
	@%p1 ld.global.v2.b32 { %r5, %r6 }, [ %rd4 + 0 ];
	// end inline asm
	mov.b32 %f1, %r5;
	add.f32 %f2, %f1, %f9;
	st.global.b32 [ %rd5 + 0 ], %f2;
	add.s32 %r9, %r9, 1;
	setp.lt.s32 %p2, %r9, %r10;
	@%p2 bra $L__BB0_2;
"""

# The loaded value only reaches the next iteration's registers (moves at the end of the body),
# and the arithmetic uses the registers loaded one iteration earlier.
NEXT_STEP = """
$L__BB0_2:
	mov.b32 %f1, %r7;
	add.f32 %f2, %f1, %f9;
	// begin inline asm
	mov.u32 %r5, 0x0;
	@%p1 ld.global.v2.b32 { %r5, %r6 }, [ %rd4 + 0 ];
	// end inline asm
	st.global.b32 [ %rd5 + 0 ], %f2;
	mov.u32 %r7, %r5;
	add.s32 %r9, %r9, 1;
	setp.lt.s32 %p2, %r9, %r10;
	@%p2 bra $L__BB0_2;
"""


def test_a_load_used_in_its_own_step_is_not_a_prefetch():
    assert loop_load_use(SAME_STEP) == (1, 0)


def test_a_load_first_used_one_step_later_is_a_prefetch():
    assert loop_load_use(NEXT_STEP) == (1, 1)


def test_both_kinds_counted_in_one_loop():
    body = NEXT_STEP.replace("\tst.global.b32 [ %rd5 + 0 ], %f2;",
                             "\t@%p1 ld.global.b32 %r8, [ %rd6 + 0 ];\n\tmul.f32 %f3, %f2, %r8;\n"
                             "\tst.global.b32 [ %rd5 + 0 ], %f3;")
    assert loop_load_use(body) == (2, 1)


def test_a_backward_without_prefetch_fails_the_check_and_a_forward_does_not():
    kwargs = dict(n_class="N%16==0", registers=40, spills=0, shared=0, loop_accesses=[("ld", 128, False)],
                  loop_loads=2, prefetched_loads=1)
    assert any("used in the step that issues them" in p for p in problems(Report("bwd fp32 exact tanh", **kwargs)))
    assert problems(Report("fwd fp32 hard save=exact", **kwargs)) == []


def test_only_the_bit_loads_of_scalar_class_learnable_decay_compact_variants_may_miss_the_prefetch():
    """Four byte loads (the spike bits) plus a vector load, four of them not prefetched: waived for
    a learnable-decay compact variant of a scalar class, and only for as many loads as are bytes."""
    accesses = [("ld", 8, True)] * 4 + [("ld", 64, False), ("st", 8, True)]
    kwargs = dict(registers=40, spills=0, shared=0, loop_accesses=accesses, loop_loads=5, prefetched_loads=1)
    missed = "used in the step that issues them"
    assert problems(Report("bwd fp32 compact atan hard decay_grad", n_class="N==1", **kwargs)) == []
    assert any(missed in p for p in problems(Report("bwd fp32 compact atan hard", n_class="N==1", **kwargs)))
    assert any(missed in p for p in problems(Report("bwd fp32 compact atan hard decay_grad", n_class="N%16==0",
                                                    **kwargs)))
    assert any(missed in p for p in problems(Report("bwd fp32 exact atan hard decay_grad", n_class="N==1",
                                                    **kwargs)))
    five_missed = dict(kwargs, prefetched_loads=0)  # one more than the byte loads
    assert any(missed in p for p in problems(Report("bwd fp32 compact atan soft decay_grad", n_class="N%16!=0",
                                                    **five_missed)))


def test_runs_as_a_file_from_any_directory(tmp_path):
    """`python tools/compile_check.py` (the Makefile's form) checks this checkout's kernels, not
    another install's: run as a file from elsewhere, with no PYTHONPATH, on a filter that selects
    no variant, it imports `kernels` from the checkout that holds it."""
    repo = Path(__file__).resolve().parents[2]
    script = repo / "tools" / "compile_check.py"
    code = (f"import runpy, sys; sys.argv = [{str(script)!r}, '--jobs', '1', '--only', 'no such variant']\n"
            f"try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit as e:\n"
            f"    assert e.code == 0, e.code\n"
            f"import kernels; print('kernels from', kernels.__file__)")
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "PYTHONPATH")}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "0 variants" in done.stdout
    assert f"kernels from {repo / 'kernels'}" in done.stdout, done.stdout
