"""bench/gpu_check.sh, the GPU machine's entry point, with stand-ins for python3 and nvidia-smi on
PATH: it runs `python3 -m bench.gpu_run` from the repository root with --out $OUT and the
arguments it was given (the documented rerun passes --budget), the interpreter unset and the
repository first on PYTHONPATH, and it starts run.log in $OUT with nvidia-smi's answer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

FAKE_PYTHON = """#!/bin/sh
{ printf '%s\\n' "$(pwd)" "${TRITON_INTERPRET-<unset>}" "$PYTHONPATH"; printf '%s\\n' "$@"; } > "$FAKE_RECORD"
"""


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_runs_gpu_run_with_out_and_the_given_arguments(tmp_path):
    bin_dir, out, record = tmp_path / "bin", tmp_path / "the out", tmp_path / "record.txt"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(FAKE_PYTHON)
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'name, driver_version\nNVIDIA H200, 570.00'\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "OUT": str(out),
           "TRITON_INTERPRET": "1", "FAKE_RECORD": str(record), "PYTHONPATH": "/elsewhere"}
    done = subprocess.run(["bash", str(REPO / "bench" / "gpu_check.sh"), "--budget", "200"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    cwd, interpret, pythonpath, *argv = record.read_text().splitlines()
    assert Path(cwd) == REPO
    assert argv == ["-m", "bench.gpu_run", "--out", str(out), "--budget", "200"], json.dumps(argv)
    assert interpret == "<unset>"
    assert pythonpath.split(os.pathsep)[:2] == [str(REPO), "/elsewhere"]
    assert "NVIDIA H200, 570.00" in (out / "run.log").read_text()
