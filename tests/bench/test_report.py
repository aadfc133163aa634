"""bench/report.py on a small pytest-benchmark JSON file."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from bench import report


def _bench(provider, mode, median, **extra):
    info = {"kernel": "lif_scan", "provider": provider, "mode": mode, "T": 4, "N": 1024, "dtype": "float32",
            "shape": "sweep-T4-N1024-fp32", "device": "test CPU", "min_bytes": 4 * 1024 * 24, **extra}
    info["gbps"] = info["min_bytes"] / median / 1e9
    stats = {"median": median, "q1": 0.9 * median, "q3": 1.1 * median, "rounds": 3}
    return {"name": f"test_lif_scan[{provider}-{mode}]", "extra_info": info, "stats": stats}


@pytest.fixture
def results(tmp_path):
    data = {
        "machine_info": {"torch": "2.x", "triton": "3.x", "spikingjelly": "2.0.0", "python_version": "3.11"},
        "commit_info": {"id": "abcdef1234567890"},
        "datetime": "2026-11-28T00:00:00",
        "benchmarks": [_bench("naive", "fwdbwd", 0.004), _bench("torch", "fwdbwd", 0.001),
                       _bench("spikingjelly", "fwdbwd", 0.002),
                       {"name": "mem", "stats": {"median": 1.0, "q1": 1.0, "q3": 1.0, "rounds": 1},
                        "extra_info": {"kernel": "lif_saved_bytes", "provider": "torch", "shape": "sweep", "T": 4,
                                       "N": 1024, "saved_bytes_per_elem": 4.0, "device": "test CPU"}}],
    }
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    return path


def test_report_writes_csv_markdown_and_plot(results, tmp_path):
    report.main([str(results), "--out", str(tmp_path / "out"), "--name", "cpu-test"])
    csv = pd.read_csv(tmp_path / "out" / "cpu-test.csv")
    assert {"kernel", "provider", "mode", "T", "N", "dtype", "median_s", "q25_s", "q75_s", "gbps", "device",
            "torch", "triton", "git_sha"} <= set(csv.columns)
    assert len(csv) == 4
    md = (tmp_path / "out" / "cpu-test.md").read_text()
    assert "speed-up over naive" in md and "speed-up over spikingjelly" in md
    ratio = report.speedups(report.load(results), "naive")
    assert ratio.loc[("sweep-T4-N1024-fp32", "fwdbwd"), "torch"] == pytest.approx(4.0)
    assert ratio.loc[("sweep-T4-N1024-fp32", "fwdbwd"), "spikingjelly"] == pytest.approx(2.0)
    assert (tmp_path / "out" / "cpu-test-lif_scan.png").stat().st_size > 1000


def test_report_rejects_untimed_results(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text(json.dumps({"benchmarks": [{"name": "x", "stats": {}, "extra_info": {}}]}))
    with pytest.raises(ValueError, match="no benchmark carries"):
        report.load(path)


def test_report_fills_the_readme_section(results, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold numbers\n{report.README_END}\noutro\n")
    report.main([str(results), "--out", str(tmp_path / "out"), "--name", "cpu-test", "--readme", str(readme)])
    text = readme.read_text()
    assert "old numbers" not in text and text.startswith("intro") and text.endswith("outro\n")
    assert "speed-up over naive" in text
    assert re.search(r"sweep-T4-N1024-fp32 \|\s+2\s+\|\s+4\s+\|", text)  # spikingjelly 2x, torch 4x


def _library(provider, mode, median, threads=1):
    info = {"kernel": "library_bench", "provider": provider, "mode": mode, "T": 500, "N": 8192, "n": 512,
            "batch": 16, "dtype": "float32", "shape": f"lif-T500-B16-n512-threads{threads}", "scope": "lif",
            "threads": threads, "device": "test CPU", "spike_mismatch": 0.0, "first_mismatch_step": -1,
            "dx_rel_err": 1e-7, "saved_bytes_lif": 16384000, "library_version": "1.0", "load_1min": 1.5}
    stats = {"median": median, "q1": median, "q3": median, "rounds": 3}
    return {"name": f"test_library_bench[{provider}-{mode}]", "extra_info": info, "stats": stats}


def test_library_tables_plot_and_own_page_section(tmp_path):
    """The library benchmark gets its tables (times, multiples of `cpu`, the checks, the published
    GPU numbers labelled as theirs), its plot, and its own section of the page, leaving the suite's
    summary section as it was."""
    data = {"machine_info": {"torch": "2.x"}, "commit_info": {"id": "abc"}, "datetime": "2026-12-05",
            "benchmarks": [_library(p, m, t) for p, t in (("cpu", 0.01), ("snntorch", 0.05))
                           for m in ("fwd", "bwd")]}
    path = tmp_path / "lib.json"
    path.write_text(json.dumps(data))
    page = tmp_path / "perf.md"
    page.write_text(f"a\n{report.README_START}\nkeep\n{report.README_END}\n"
                    f"{report.LIBRARY_START}\n{report.LIBRARY_END}\nz\n")
    report.main([str(path), "--out", str(tmp_path), "--name", "lib", "--readme", str(page)])
    text = page.read_text()
    assert "\nkeep\n" in text
    assert "time as a multiple of `cpu`'s" in text and "snntorch" in text
    assert "theirs" in text and "RTX 2070" in text
    assert "load average 1.50-1.50" in text
    assert (tmp_path / "lib-library.png").exists()
    df = report.load(path)
    ratio = df.pivot_table(index="mode", columns="provider", values="median_s")
    assert (ratio.snntorch / ratio.cpu).round(6).tolist() == [5.0, 5.0]


@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_an_out_that_refuses_the_report_gives_one_line_and_exit_1(results, tmpfs, capsys, fault):
    """`python bench/report.py` with --out on a real read-only or full file system: one line naming
    the first file it could not write, exit 1, no traceback."""
    from ..conftest import fill

    out = tmpfs("ro" if fault == "read-only" else "size=64k")
    if fault == "full":
        fill(out)
    assert report.command([str(results), "--out", str(out), "--name", "cpu-test"]) == 1
    err = capsys.readouterr().err
    reason = "Read-only file system" if fault == "read-only" else "No space left on device"
    assert err.startswith(f"error: cannot write {out / 'cpu-test.md'}: {reason}") and err.count("\n") == 1, err
