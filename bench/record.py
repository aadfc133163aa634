"""What every benchmark records in `benchmark.extra_info`."""

from __future__ import annotations

import torch


def record(benchmark, *, min_bytes: float | None = None, copy_bandwidth: float | None = None, **fields) -> None:
    """Store fields plus achieved GB/s (from min_bytes and the median) and the fraction of the
    copy bandwidth measured in the same run (frac_copy_bw: the copy-bandwidth floor's time over
    this median). With --benchmark-disable nothing is timed and only the fields are stored."""
    info = {k: (str(v).replace("torch.", "") if isinstance(v, torch.dtype) else v) for k, v in fields.items()}
    if min_bytes is not None:
        info["min_bytes"] = min_bytes
    stats = getattr(benchmark, "stats", None)
    if stats is not None and min_bytes is not None:
        median = stats.stats.median
        info["gbps"] = min_bytes / median / 1e9
        if copy_bandwidth:
            info["copy_gbps"] = copy_bandwidth / 1e9
            info["frac_copy_bw"] = min_bytes / median / copy_bandwidth
    benchmark.extra_info.update(info)
