"""The LIF layer alone of the SNN library benchmark, forward + backward, every library interleaved
in one process and repeated, printed as a markdown table of medians with their spread:

    python -m bench.library_ratios --n 512 4096 --threads 1 --repeats 3

On a shared machine the load drifts between runs; interleaving the libraries round by round
exposes them to the same drift, so their ratios are steadier than times from separate runs.
Each library's spikes are checked against ours first (bench/library_peers.compare). --old-torch
REV also times the `torch` backend's backward as of git revision REV (the file
kernels/lif/fused_torch.py of that revision), as `torch@REV`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from .library_peers import PEERS, compare


def _old_torch_backend(rev: str):
    """A Peer like `torch` whose backend module is fused_torch.py as of `rev`."""
    from kernels.lif import fused_torch

    source = subprocess.run(["git", "show", f"{rev}:kernels/lif/fused_torch.py"], capture_output=True, text=True,
                            check=True).stdout
    path = os.path.join(tempfile.mkdtemp(), "fused_torch_old.py")
    with open(path, "w") as f:
        f.write(source.replace("from .layout", "from kernels.lif.layout").replace("from .params",
                                                                                 "from kernels.lif.params"))
    spec = importlib.util.spec_from_file_location("fused_torch_old", path)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)

    def build(n):
        layer = PEERS["torch"].build(n)

        def run(x):  # the old fwd / bwd swapped in for this call and its backward (run by the caller)
            fused_torch.fwd, fused_torch.bwd = old.fwd, old.bwd
            return layer(x)
        return run
    return build, (fused_torch.fwd, fused_torch.bwd)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[512, 4096])
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peers", nargs="+", default=["cpu", "torch", "spikingjelly", "snntorch", "norse", "naive"])
    parser.add_argument("--old-torch", metavar="REV")
    args = parser.parse_args(argv)
    peers = {name: PEERS[name].build for name in args.peers if PEERS[name].unavailable("cpu") is None}
    restore = None
    if args.old_torch:
        peers[f"torch@{args.old_torch}"], restore = _old_torch_backend(args.old_torch)
    from kernels.lif import fused_torch

    print(f"load before: {os.getloadavg()}", file=sys.stderr)
    for threads in args.threads:
        torch.set_num_threads(threads)
        for n in args.n:
            torch.manual_seed(0)
            with torch.no_grad():
                x = torch.nn.Linear(n, n)(torch.randn(500, 16, n))
            for name in args.peers:
                if name in peers:
                    print(f"check {name} n={n}: {compare(PEERS[name], x)}", file=sys.stderr)
            times = {name: [] for name in peers}
            for _ in range(args.repeats):
                for name, build in peers.items():
                    layer = build(n)
                    xr = x.detach().requires_grad_()
                    start = time.perf_counter()
                    out = layer(xr)
                    mid = time.perf_counter()
                    out.sum().backward()
                    end = time.perf_counter()
                    if restore:
                        fused_torch.fwd, fused_torch.bwd = restore
                    times[name].append((mid - start, end - mid))
            ref = statistics.median(f + b for f, b in times[args.peers[0]])
            print(f"\n| n = {n}, {threads} thread(s), load {os.getloadavg()[0]:.2f} | fwd ms | bwd ms | fwd+bwd ms "
                  f"(min-max) | x {args.peers[0]} |\n|---|---|---|---|---|")
            for name, ts in times.items():
                tot = [f + b for f, b in ts]
                print(f"| {name} | {statistics.median(f for f, _ in ts) * 1e3:.0f} | "
                      f"{statistics.median(b for _, b in ts) * 1e3:.0f} | {statistics.median(tot) * 1e3:.0f} "
                      f"({min(tot) * 1e3:.0f}-{max(tot) * 1e3:.0f}) | {statistics.median(tot) / ref:.2f} |", flush=True)


if __name__ == "__main__":
    main()
