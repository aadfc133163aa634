"""Turn a pytest-benchmark JSON file into a long-format CSV, a markdown table of speed-ups and
PNG plots.

    python bench/report.py results.json [more.json ...] --out bench/results --name cpu-2026-11-28

Writes <out>/<name>.csv (one row per benchmark: kernel, provider, mode, T, N, dtype, median and
quartiles, GB/s, device, versions, git sha), <out>/<name>.md and <out>/<name>-*.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

STANDARD_COLUMNS = ("min_bytes", "gbps", "frac_copy_bw", "copy_gbps", "saved_bytes", "saved_bytes_per_elem")
ID_COLUMNS = ["shape", "mode"]  # the shape id names the model or sweep, T, N and dtype


def load(path: Path) -> pd.DataFrame:
    """One row per benchmark of the JSON file."""
    data = json.loads(Path(path).read_text())
    machine, commit = data.get("machine_info", {}), data.get("commit_info", {})
    rows = []
    for b in data["benchmarks"]:
        info, stats = b.get("extra_info", {}), b["stats"]
        if "kernel" not in info:
            continue
        rows.append({
            **{k: info.get(k) for k in ("kernel", "provider", "mode", "T", "N", "dtype", "shape")},
            "median_s": stats["median"], "q25_s": stats["q1"], "q75_s": stats["q3"], "rounds": stats["rounds"],
            **{k: v for k, v in info.items() if k not in ("kernel", "provider", "mode", "T", "N", "dtype", "shape")},
            "torch": machine.get("torch"), "triton": machine.get("triton"),
            "spikingjelly": machine.get("spikingjelly"), "cuda_driver": machine.get("cuda_driver"),
            "python": machine.get("python_version"), "git_sha": commit.get("id"),
            "datetime": data.get("datetime"), "name": b["name"],
        })
    if not rows:
        raise ValueError(f"{path}: no benchmark carries the fields of bench/record.py (was it run with --benchmark-disable?)")
    df = pd.DataFrame(rows)
    for column in STANDARD_COLUMNS:
        if column not in df:
            df[column] = None
    return df


def speedups(df: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Median time of `baseline` divided by each provider's, per LIF case and mode."""
    lif = df[df.kernel == "lif_scan"]
    table = lif.pivot_table(index=ID_COLUMNS, columns="provider", values="median_s")
    if baseline not in table:
        return pd.DataFrame()
    return table.rdiv(table[baseline], axis=0).drop(columns=baseline).round(2)


def markdown(df: pd.DataFrame) -> str:
    parts = [f"Device: {df.device.iloc[0]}; torch {df.torch.iloc[0]}, triton {df.triton.iloc[0]}, "
             f"spikingjelly {df.spikingjelly.iloc[0]}; git {str(df.git_sha.iloc[0])[:10]}; {df.datetime.iloc[0]}\n"]
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
    other = df[~df.kernel.isin(["lif_scan", "lif_saved_bytes"])]
    for kernel, group in other.groupby("kernel"):
        cols = [c for c in group.columns if group[c].notna().any() and c not in
                ("torch", "triton", "spikingjelly", "cuda_driver", "python", "git_sha", "datetime", "device", "name")]
        parts += [f"### {kernel}\n", group[cols].to_markdown(index=False), ""]
    return "\n".join(parts)


README_START, README_END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"


def readme_summary(df: pd.DataFrame, name: str) -> str:
    """The README's performance section: forward+backward speed-ups and saved bytes."""
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


def update_readme(path: Path, summary: str) -> None:
    """Replace the text between the README's bench-table markers by summary."""
    text = path.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{path} has no {README_START} ... {README_END} section to fill")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    path.write_text(f"{head}{README_START}\n{summary}\n{README_END}{tail}")


def plot(df: pd.DataFrame, path: Path) -> bool:
    """GB/s against N for the T=4 fp32 forward+backward sweep; False if there is nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = df[(df.kernel == "lif_scan") & (df["mode"] == "fwdbwd") & (df["T"] == 4) & (df.dtype == "float32")
               & df["shape"].str.startswith("sweep") & df.gbps.notna()]
    if sweep.empty:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for provider, group in sweep.groupby("provider"):
        group = group.sort_values("N")
        ax.plot(group.N, group.gbps, marker="o", label=provider)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("neurons per timestep N (T = 4, fp32)")
    ax.set_ylabel("GB/s on the minimal-bytes model")
    ax.set_title(f"LIF scan forward+backward with u_mean\n{sweep.device.iloc[0]}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", type=Path, nargs="+", help="files written by pytest --benchmark-json")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--name", required=True, help="file stem, e.g. <device>-<date>")
    parser.add_argument("--readme", type=Path, help="also write the summary into this README's bench-table section")
    args = parser.parse_args(argv)
    df = pd.concat([load(path) for path in args.json], ignore_index=True)
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / f"{args.name}.csv", index=False)
    (args.out / f"{args.name}.md").write_text(markdown(df))
    plot(df, args.out / f"{args.name}-lif_scan.png")
    if args.readme:
        update_readme(args.readme, readme_summary(df, args.name))
    print(markdown(df))
    return df


if __name__ == "__main__":
    main()
