"""Turn benchmark results into a long-format CSV, a markdown table of speed-ups and PNG plots.

    python bench/report.py results.json [more.json|.jsonl ...] --out bench/results --name cpu-2026-11-28

Reads pytest-benchmark JSON files (--benchmark-json) and the JSON-lines files written test by
test with --bench-jsonl (bench/results_log.py). A file that is missing, empty, unreadable or cut
short (a truncated last line, or named with --cut because its run was stopped by a time cap)
does not stop the report: what the other files hold is reported, and the markdown opens with a
table saying which files were missing, empty or partial. Writes <out>/<name>.csv (one row per
benchmark: kernel, provider, mode, T, N, dtype, median and quartiles, GB/s, device, versions,
git sha), <out>/<name>.md and <out>/<name>-*.png. Exit status 1 when no file held a result.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from snn import exits
from snn.files import write_atomic

STANDARD_COLUMNS = ("min_bytes", "gbps", "frac_copy_bw", "copy_gbps", "saved_bytes", "saved_bytes_per_elem")
ID_COLUMNS = ["shape", "mode"]  # the shape id names the model or sweep, T, N and dtype
ROW_FIELDS = ("kernel", "provider", "mode", "T", "N", "dtype", "shape")


@dataclass
class FileNote:
    """What one results file held: status 'ok', 'partial', 'empty', 'missing' or 'unreadable'."""
    path: str
    status: str
    rows: int = 0
    detail: str = ""


def _row(b: dict, machine: dict, commit_id, when) -> dict | None:
    info, stats = b.get("extra_info", {}), b.get("stats") or {}
    if "kernel" not in info or "median" not in stats:
        return None
    return {
        **{k: info.get(k) for k in ROW_FIELDS},
        "median_s": stats["median"], "q25_s": stats.get("q1"), "q75_s": stats.get("q3"), "rounds": stats.get("rounds"),
        **{k: v for k, v in info.items() if k not in ROW_FIELDS},
        "torch": machine.get("torch"), "triton": machine.get("triton"),
        "spikingjelly": machine.get("spikingjelly"), "cuda_driver": machine.get("cuda_driver"),
        "python": machine.get("python_version", machine.get("python")), "git_sha": commit_id,
        "datetime": when, "name": b.get("name"),
    }


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for column in STANDARD_COLUMNS:
        if column not in df:
            df[column] = None
    return df


def load(path: Path) -> pd.DataFrame:
    """One row per benchmark of a pytest-benchmark JSON file. Raises ValueError when no benchmark
    carries the fields of bench/record.py (e.g. a run with --benchmark-disable)."""
    data = json.loads(Path(path).read_text())
    machine, commit = data.get("machine_info", {}), data.get("commit_info", {})
    rows = [r for b in data["benchmarks"] if (r := _row(b, machine, commit.get("id"), data.get("datetime")))]
    if not rows:
        raise ValueError(f"{path}: no benchmark carries the fields of bench/record.py "
                         f"(was it run with --benchmark-disable?)")
    return _frame(rows)


def load_jsonl(path: Path) -> tuple[list[dict], bool]:
    """Rows of a --bench-jsonl file and whether its last line was cut off mid-write."""
    rows, truncated = [], False
    lines = Path(path).read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            b = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                truncated = True  # the process was stopped while writing it
                continue
            raise
        machine = b.get("machine_info", {})
        if (r := _row(b, machine, machine.get("git_sha"), b.get("datetime"))) is not None:
            rows.append(r)
    return rows, truncated


def load_any(path: Path, cut: bool = False) -> tuple[pd.DataFrame | None, FileNote]:
    """(rows or None, note) for a .json or .jsonl results file, whatever state it is in; cut: its
    run was stopped by a time cap (its rows are then a partial set)."""
    path = Path(path)
    if not path.exists():
        return None, FileNote(str(path), "missing", detail="no such file (its run wrote nothing)")
    if path.stat().st_size == 0:
        return None, FileNote(str(path), "empty", detail="0 bytes" + (" (run stopped by its time cap)" if cut else ""))
    try:
        if path.suffix == ".jsonl":
            rows, truncated = load_jsonl(path)
            df = _frame(rows) if rows else None
        else:
            df, truncated = load(path), False
    except (ValueError, KeyError, TypeError) as error:  # JSONDecodeError is a ValueError
        return None, FileNote(str(path), "unreadable", detail=f"{type(error).__name__}: {str(error)[:200]}")
    n = 0 if df is None else len(df)
    if n == 0:
        detail = "no timed result" + (" (run stopped by its time cap)" if cut else "")
        return None, FileNote(str(path), "empty", detail=detail)
    if cut or truncated:
        why = ["run stopped by its time cap"] if cut else []
        why += ["last line cut off"] if truncated else []
        return df, FileNote(str(path), "partial", n, "; ".join(why))
    return df, FileNote(str(path), "ok", n)


def load_all(paths, cut=()) -> tuple[pd.DataFrame, list[FileNote]]:
    """All rows of the files that hold any, and one note per file."""
    cut = {str(Path(c)) for c in cut}
    frames, notes = [], []
    for path in paths:
        df, note = load_any(Path(path), cut=str(Path(path)) in cut)
        notes.append(note)
        if df is not None:
            frames.append(df)
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), notes


def files_table(notes: list[FileNote]) -> str:
    """Markdown table of the result files: rows read and state."""
    table = pd.DataFrame([{"file": Path(n.path).name, "status": n.status, "rows": n.rows, "detail": n.detail}
                          for n in notes])
    return table.to_markdown(index=False)


def speedups(df: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Median time of `baseline` divided by each provider's, per LIF case and mode."""
    lif = df[df.kernel == "lif_scan"]
    table = lif.pivot_table(index=ID_COLUMNS, columns="provider", values="median_s")
    if baseline not in table:
        return pd.DataFrame()
    return table.rdiv(table[baseline], axis=0).drop(columns=baseline).round(2)


KERNEL_COLUMNS = {"kernel_s": "kernel alone (ms)", "e2e_s": "lif_scan (ms)", "copy_s": "copy, same bytes (ms)",
                  "frac_copy_kernel": "kernel: fraction of copy bw", "frac_copy_e2e": "lif_scan: fraction of copy bw",
                  "host_us": "host time per call (us)"}
HOST_COLUMNS = {"fwd_pre_us": "fwd: before launch", "fwd_post_us": "fwd: after launch",
                "bwd_pre_us": "bwd: before launch", "bwd_post_us": "bwd: after launch", "total_us": "total"}


def kernel_table(df: pd.DataFrame) -> str:
    """Kernel-only beside end-to-end (test_kernel_time.py), one row per shape and mode."""
    rows = df[df.kernel == "lif_kernel"]
    if rows.empty:
        return ""
    table = rows.set_index(ID_COLUMNS)[[c for c in KERNEL_COLUMNS if c in rows]].astype(float)
    for c in ("kernel_s", "e2e_s", "copy_s"):
        if c in table:
            table[c] = table[c] * 1e3
    return table.rename(columns=KERNEL_COLUMNS).to_markdown(floatfmt=".4g")


def host_table(df: pd.DataFrame) -> str:
    """lif_scan's host time per call with the launches stubbed out (bench/host_time.py), in us."""
    rows = df[df.kernel == "host_time"]
    if rows.empty:
        return ""
    cols = [c for c in HOST_COLUMNS if c in rows]
    return rows[["device", "shape", *cols]].rename(columns=HOST_COLUMNS).to_markdown(index=False, floatfmt=".1f")


def markdown(df: pd.DataFrame, notes: list[FileNote] | None = None) -> str:
    parts = []
    if notes:
        incomplete = [n for n in notes if n.status != "ok"]
        parts += [f"### Result files: {len(notes) - len(incomplete)} complete, {len(incomplete)} missing, empty, "
                  f"partial or unreadable\n", files_table(notes), ""]
    if df.empty:
        return "\n".join(parts + ["No results."])
    parts += [f"Device: {df.device.iloc[0]}; torch {df.torch.iloc[0]}, triton {df.triton.iloc[0]}, "
              f"spikingjelly {df.spikingjelly.iloc[0]}; git {str(df.git_sha.iloc[0])[:10]}; {df.datetime.iloc[0]}\n"]
    if text := kernel_table(df):
        parts += ["### Triton kernels alone and lif_scan as called (device time, L2 flushed; copy of the same bytes "
                  "in the same run)\n", text, ""]
    if text := host_table(df):
        parts += ["### lif_scan host time per training call, Triton launches stubbed out (us)\n", text, ""]
    lif = df[df.kernel == "lif_scan"]
    if len(lif):
        ms = lif.pivot_table(index=ID_COLUMNS, columns="provider", values="median_s") * 1e3
        parts += ["### LIF scan: median time (ms)\n", ms.round(3).to_markdown(), ""]
        for baseline in ("naive", "spikingjelly"):
            ratio = speedups(df, baseline)
            if len(ratio):
                parts += [f"### LIF scan: speed-up over {baseline} (its median / provider's median)\n",
                          ratio.to_markdown(), ""]
        if lif.gbps.notna().any():
            gbps = lif.pivot_table(index=ID_COLUMNS, columns="provider", values="gbps")
            parts += ["### LIF scan: GB/s on the minimal-bytes model\n", gbps.round(1).to_markdown(), ""]
        if lif.frac_copy_bw.notna().any():
            frac = lif.pivot_table(index=ID_COLUMNS, columns="provider", values="frac_copy_bw")
            parts += ["### LIF scan: fraction of the measured copy bandwidth\n", frac.round(3).to_markdown(), ""]
    mem = df[df.kernel == "lif_saved_bytes"]
    if len(mem):
        table = mem.pivot_table(index=["shape", "N"], columns="provider", values="saved_bytes_per_elem")
        parts += ["### Bytes saved for backward per neuron and timestep\n", table.round(3).to_markdown(), ""]
    if text := library_tables(df):
        parts += [text, ""]
    other = df[~df.kernel.isin(["lif_scan", "lif_saved_bytes", "lif_kernel", "host_time", "library_bench"])]
    for kernel, group in other.groupby("kernel"):
        cols = [c for c in group.columns if group[c].notna().any() and c not in
                ("torch", "triton", "spikingjelly", "cuda_driver", "python", "git_sha", "datetime", "device", "name")]
        parts += [f"### {kernel}\n", group[cols].to_markdown(index=False), ""]
    return "\n".join(parts)


README_START, README_END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"
LIBRARY_START, LIBRARY_END = "<!-- library-table:start -->", "<!-- library-table:end -->"
LIBRARY_ORDER = ("cpu", "torch", "triton", "naive", "spikingjelly", "snntorch", "norse", "sinabs", "rockpool")


def library_tables(df: pd.DataFrame) -> str:
    """The library benchmark (bench/test_library_bench.py): median ms per scope, n, threads and
    mode, one column per library; the same as multiples of ours (`cpu`, else `triton`); each
    peer's check against ours and the bytes autograd keeps for the LIF layer's backward."""
    rows = df[df.kernel == "library_bench"]
    if rows.empty:
        return ""
    index = ["scope", "n", "threads", "mode"]
    ms = rows.pivot_table(index=index, columns="provider", values="median_s") * 1e3
    ms = ms[[c for c in LIBRARY_ORDER if c in ms] + [c for c in ms if c not in LIBRARY_ORDER]]
    parts = [f"### SNN library benchmark (Linear(n, n) + LIF, T = {int(rows['T'].iloc[0])}, batch "
             f"{int(rows['batch'].iloc[0])}): median time (ms)\n", ms.round(1).to_markdown(), ""]
    ours = "cpu" if "cpu" in ms else ("triton" if "triton" in ms else None)
    if ours:
        parts += [f"### SNN library benchmark: time as a multiple of `{ours}`'s (same run)\n",
                  ms.div(ms[ours], axis=0).round(2).to_markdown(), ""]
    checks = ["spike_mismatch", "first_mismatch_step", "dx_rel_err", "saved_bytes_lif", "library_version"]
    check = rows.groupby(["provider", "n"])[[c for c in checks if c in rows]].first().reset_index()
    parts += ["### SNN library benchmark: each library against ours before timing (spikes and dL/dx of the LIF "
              "layer on the case's input; bytes autograd keeps for the LIF layer's backward)\n",
              check.to_markdown(index=False, floatfmt=".3g"), ""]
    return "\n".join(parts + [published_tables()])


def published_tables() -> str:
    """Open Neuromorphic's published GPU numbers (bench/published_onm.py), labelled as theirs."""
    from bench import published_onm as onm

    old = pd.DataFrame({name: {f"n={n} {p}": t * 1e3 for (n, p), t in times.items()}
                        for name, times in onm.FORWARD_BACKWARD_2023.items()}).T
    new = pd.DataFrame({"fwd+bwd (ms)": pd.Series(onm.TOTAL_16K_2024) * 1e3,
                        "max memory (GB)": pd.Series(onm.MEMORY_16K_2024)})
    return "\n".join([
        "### Published by Open Neuromorphic (theirs, not measured here; GPU): 2023, batch 10, NVIDIA RTX 2070, "
        "T = 500, ms per pass\n", old.round(2).to_markdown(), "",
        "### Published by Open Neuromorphic (theirs; GPU): 2024 page, n = 16384, batch 16, NVIDIA RTX 4090 per the "
        "page (its 07/11/2023 note names an RTX 3090), forward+backward ms and max memory; its Norse row runs "
        "LIFBoxCell once over all 500 x 16 rows, not a scan over time (docs/performance.md)\n",
        new.round(2).to_markdown(), ""])


def library_plot(df: pd.DataFrame, path: Path) -> bool:
    """Forward+backward time of the LIF layer alone (sum of the medians) per library and n, one
    bar group per thread count; False if the run has no library benchmark."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = df[df.kernel == "library_bench"]
    rows = rows[rows.scope == "lif"] if "scope" in rows else rows.iloc[:0]
    if rows.empty:
        return False
    total = rows.pivot_table(index=["n", "threads"], columns="provider", values="median_s", aggfunc="sum")
    total = total[[c for c in LIBRARY_ORDER if c in total]]
    fig, ax = plt.subplots(figsize=(7, 4))
    (total * 1e3).plot.bar(ax=ax, logy=True)
    ax.set_xlabel("(n, CPU threads); batch 16, T = 500")
    ax.set_ylabel("LIF layer forward + backward (ms, log)")
    ax.set_title(f"SNN library benchmark, LIF layer alone\n{rows.device.iloc[0]}", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    fig.tight_layout()
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=120))
    plt.close(fig)
    return True


def readme_summary(df: pd.DataFrame, name: str) -> str:
    """The performance page's summary (docs/performance.md): forward+backward speed-ups and saved bytes."""
    lines = [f"Measured by `pytest bench/ --benchmark-only` on {df.device.iloc[0]} (torch {df.torch.iloc[0]}, "
             f"git {str(df.git_sha.iloc[0])[:10]}); full tables in `bench/results/{name}.md`.\n"]
    for baseline in ("naive", "spikingjelly"):
        ratio = speedups(df, baseline)
        if len(ratio):
            ratio = ratio.xs("fwdbwd", level="mode")
            lines += [f"Forward+backward with the IM term, speed-up over {baseline}:\n", ratio.to_markdown(), ""]
    lif = df[(df.kernel == "lif_scan") & (df["mode"] == "fwdbwd")]
    if lif.frac_copy_bw.notna().any():
        frac = lif.pivot_table(index="shape", columns="provider", values="frac_copy_bw")
        lines += ["Forward+backward, fraction of the copy bandwidth measured in the same run (minimal-bytes "
                  "model):\n", frac.round(3).to_markdown(), ""]
    cold = df[df.kernel == "cold_start"]
    if len(cold):
        cols = [c for c in ("provider", "import_s", "first_call_s", "new_shape_s", "warm_s") if c in cold]
        lines += ["Cold start in a fresh process, seconds (import; first forward+backward; first call on a new "
                  "shape; warm call):\n", cold[cols].to_markdown(index=False, floatfmt=".3g"), ""]
    mem = df[df.kernel == "lif_saved_bytes"]
    if len(mem):
        table = mem.pivot_table(index="shape", columns="provider", values="saved_bytes_per_elem")
        lines += ["Bytes saved for backward per neuron and timestep:\n", table.round(3).to_markdown(), ""]
    steps = df[df.kernel == "training_step"]
    if len(steps) and "images_per_s" in steps:
        table = steps.pivot_table(index="shape", columns="provider", values="images_per_s")
        lines += ["Training step (forward, backward, SGD), images/s:\n", table.round(1).to_markdown(), ""]
    costs = df[df.kernel == "esg_vs_dspike"]
    if len(costs):
        cols = ["shape", "forwards", "selection_s", "train_step_s", "selection_in_train_steps",
                "dspike_epoch_overhead", "esg_epoch_overhead"]
        lines += ["Dspike temperature selection vs ESG (per epoch of the paper's dataset at this batch size):\n",
                  costs[cols].to_markdown(index=False, floatfmt=".3g"), ""]
    return "\n".join(lines)


def update_readme(path: Path, summary: str, start: str = README_START, end: str = README_END) -> None:
    """Replace the text between a page's markers (docs/performance.md; by default bench-table's) by summary."""
    text = path.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{path} has no {start} ... {end} section to fill")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    write_atomic(path, f"{head}{start}\n{summary}\n{end}{tail}")


def plot(df: pd.DataFrame, path: Path) -> bool:
    """GB/s against N of the forward+backward LIF scan, one line per provider, for the T and dtype
    with the most sizes measured (the T=4 fp32 sweep in a full run); False if nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lif = df[(df.kernel == "lif_scan") & (df["mode"] == "fwdbwd") & df.gbps.notna()]
    if lif.empty:
        return False
    (T, dtype), sweep = max(lif.groupby(["T", "dtype"]), key=lambda kv: (kv[1].N.nunique(), kv[0] == (4, "float32")))
    fig, ax = plt.subplots(figsize=(6, 4))
    for provider, group in sweep.groupby("provider"):
        group = group.groupby("N", as_index=False).gbps.median().sort_values("N")
        ax.plot(group.N, group.gbps, marker="o", label=provider)
    ax.set_xscale("log", base=2)
    ax.set_xlabel(f"neurons per timestep N (T = {T}, {dtype})")
    ax.set_ylabel("GB/s on the minimal-bytes model")
    ax.set_title(f"LIF scan forward+backward with u_mean\n{sweep.device.iloc[0]}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=120))
    plt.close(fig)
    return True


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", type=Path, nargs="+", help="--benchmark-json or --bench-jsonl files (any state)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--name", required=True, help="file stem, e.g. <device>-<date>")
    parser.add_argument("--cut", type=Path, action="append", default=[],
                        help="a results file whose run was stopped by its time cap (reported as partial)")
    parser.add_argument("--readme", type=Path,
                        help="also write the summary into this page's bench-table section (docs/performance.md)")
    args = parser.parse_args(argv)
    df, notes = load_all(args.json, args.cut)
    for note in notes:
        if note.status != "ok":
            print(f"report: {note.path}: {note.status}" + (f" ({note.detail})" if note.detail else ""), file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(df, notes)
    write_atomic(args.out / f"{args.name}.md", text)
    if df.empty:
        print(text)
        raise SystemExit(f"report: none of the {len(notes)} results files held a timed result")
    write_atomic(args.out / f"{args.name}.csv", df.to_csv(index=False))
    plot(df, args.out / f"{args.name}-lif_scan.png")
    library = library_plot(df, args.out / f"{args.name}-library.png")
    if args.readme:
        # A run of the library benchmark alone fills its own section and leaves the suite's summary as it is.
        if (df.kernel != "library_bench").any():
            update_readme(args.readme, readme_summary(df, args.name))
        if library:
            rows = df[df.kernel == "library_bench"]
            load = (f"; 1-minute load average {rows.load_1min.min():.2f}-{rows.load_1min.max():.2f} across the "
                    f"tests" if "load_1min" in rows and rows.load_1min.notna().any() else "")
            summary = (f"Measured by `pytest bench/test_library_bench.py --benchmark-only` on {df.device.iloc[0]} "
                       f"(the session's default thread count; each row's CPU threads are its third index){load} "
                       f"(torch {df.torch.iloc[0]}, git {str(df.git_sha.iloc[0])[:10]}); plot "
                       f"`bench/results/{args.name}-library.png`.\n\n{library_tables(df)}")
            update_readme(args.readme, summary, LIBRARY_START, LIBRARY_END)
    print(text)
    return df


@exits.one_line_errors
def command(argv=None) -> int:
    """`python bench/report.py ...`: main, ending with one line `error: ...` and its exit code (not a
    traceback) when --out cannot be written (read-only, full)."""
    main(argv)
    return exits.DONE


if __name__ == "__main__":
    sys.exit(command())
