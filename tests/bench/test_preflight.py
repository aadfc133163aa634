"""bench/preflight.py, the checks before the GPU run spends device time (its docstring lists them):
on CUDA the interpreter must be off and a C compiler and Python.h must exist, in that order and
before torch touches the device; on CPU (the rehearsal) the compiler is not needed. Every verdict
is one line and lands in --json, also on failure. The CPU run is the whole preflight under the
Triton interpreter (about a second)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from bench import preflight


@pytest.fixture
def json_path(tmp_path):
    return tmp_path / "preflight.json"


def _verdict(capsys, json_path):
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0], json.loads(json_path.read_text())


def test_cpu_preflight_passes_and_records_what_it_found(monkeypatch, capsys, json_path):
    """The rehearsal's preflight on this machine: the torch sum (2 * sum(0..2^20-1) = 2^20 (2^20 - 1))
    and the interpreted 3 x + 1 kernel are right, so it passes, even with no C compiler."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(preflight, "c_compiler", lambda: None)
    assert preflight.main(["--device", "cpu", "--json", str(json_path)]) == 0
    line, info = _verdict(capsys, json_path)
    assert line.startswith("preflight ok (")
    assert info["verdict"] == "ok" and info["device_name"] == "cpu" and info["triton_interpret"] is True
    assert info["triton_first_kernel_s"] > 0 and info["c_compiler"] is None


@pytest.mark.parametrize(("interpret", "compiler", "header", "reason"), [
    ("1", "/usr/bin/cc", "/x/Python.h", "TRITON_INTERPRET=1 is set"),
    ("0", None, "/x/Python.h", "no C compiler"),
    ("0", "/usr/bin/cc", None, "no Python.h"),
])
def test_cuda_prerequisites_fail_first_with_one_line_and_json(monkeypatch, capsys, json_path, interpret, compiler,
                                                              header, reason):
    """Each missing prerequisite of a CUDA run is the verdict (exit 1, `preflight FAILED: <reason>`),
    written to --json too; the interpreter check comes before the compiler's and Python.h's."""
    monkeypatch.setenv("TRITON_INTERPRET", interpret)
    monkeypatch.setattr(preflight, "c_compiler", lambda: compiler)
    monkeypatch.setattr(preflight, "python_header", lambda: header)
    assert preflight.main(["--device", "cuda", "--json", str(json_path)]) == 1
    line, info = _verdict(capsys, json_path)
    assert line.startswith(f"preflight FAILED: {reason}"), line
    assert info["verdict"].startswith(f"FAILED: {reason}")


def test_cuda_with_every_prerequisite_goes_on_to_the_device(monkeypatch, capsys, json_path):
    """Compiler and Python.h present, interpreter off: the preflight gets past them to torch's
    device; on a machine without CUDA that is the verdict."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the verdict would be the kernel's")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setattr(preflight, "c_compiler", lambda: "/usr/bin/cc")
    monkeypatch.setattr(preflight, "python_header", lambda: "/x/Python.h")
    assert preflight.main(["--device", "cuda", "--json", str(json_path)]) == 1
    line, _ = _verdict(capsys, json_path)
    assert line.startswith("preflight FAILED: torch ") and "sees no CUDA device" in line


def test_c_compiler_resolves_cc_on_path(monkeypatch, tmp_path):
    """$CC is looked up on PATH: a name that is there gives its full path, one that is not gives
    None (Triton could not run it)."""
    fake = tmp_path / "mycc"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("CC", "mycc")
    assert preflight.c_compiler() == str(fake)
    monkeypatch.setenv("CC", "no-such-compiler-here")
    assert preflight.c_compiler() is None
