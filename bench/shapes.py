"""The shapes the LIF benchmarks run on."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

BATCH = 128
SIZE = "default"  # "tiny" with --bench-tiny (bench/conftest.py): the rehearsal's shapes on any device


def tiny() -> bool:
    """True when the suite runs its tiny shapes (--bench-tiny): the GPU run rehearsed on CPU."""
    return SIZE == "tiny"


@dataclass(frozen=True)
class LifCase:
    T: int
    N: int  # neurons per timestep
    dtype: torch.dtype
    id: str
    modes: tuple = ("fwd", "bwd", "fwdbwd")


@functools.lru_cache(maxsize=None)
def model_lif_sizes(name: str) -> tuple[tuple[str, int], ...]:
    """(layer name, neurons per sample) of every LIF layer of the width-1.0 model on 32x32 input,
    recorded with forward pre-hooks during one batch-1, T=1 forward on CPU."""
    import snn
    from snn import models

    model = models.build(name, num_classes=10, norm="tdbn").eval()
    sizes = []
    hooks = [m.register_forward_pre_hook(lambda mod, args, n=n: sizes.append((n, args[0][0, 0].numel())))
             for n, m in model.named_modules() if isinstance(m, snn.LIF)]
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32), T=1)
    for h in hooks:
        h.remove()
    return tuple(sizes)


def lif_cases(full: bool) -> list[LifCase]:
    """The reduced CPU set; with `full`, also a sweep of N at T=4 (fp32 and bf16) and N = 2^23 at
    T in {6, 10} for the bandwidth target (every mode), and the distinct LIF layer sizes of
    CIFARNet and ResNet-19 at batch 128 for T in {2, 4, 6, 10} (fp32; bf16 at T=4), forward+backward.
    With --bench-tiny (`tiny()`), two tiny cases instead, whatever `full` says."""
    if tiny():
        return [LifCase(2, 256, torch.float32, "tiny-T2-N256-fp32"),
                LifCase(2, 1000, torch.bfloat16, "tiny-T2-N1000-bf16")]
    cases = [
        LifCase(4, 1 << 16, torch.float32, "sweep-T4-N65536-fp32"),
        LifCase(4, 1 << 20, torch.float32, "sweep-T4-N1048576-fp32"),
        LifCase(4, 1 << 20, torch.bfloat16, "sweep-T4-N1048576-bf16"),
    ]
    if not full:
        return cases
    for log2n in range(16, 25, 2):
        for dtype, tag in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
            case = LifCase(4, 1 << log2n, dtype, f"sweep-T4-N{1 << log2n}-{tag}")
            if all(c.id != case.id for c in cases):
                cases.append(case)
    cases += [LifCase(T, 1 << 23, torch.float32, f"sweep-T{T}-N{1 << 23}-fp32") for T in (6, 10)]
    layers: dict[int, list[str]] = {}  # neurons per sample -> models with such a LIF layer
    for model in ("cifarnet", "resnet19"):
        for _, n in model_lif_sizes(model):
            if model not in layers.setdefault(n, []):
                layers[n].append(model)
    for n, models in sorted(layers.items(), reverse=True):
        N, tag = BATCH * n, "+".join(models)
        cases += [LifCase(T, N, torch.float32, f"{tag}-B{BATCH}-T{T}-N{N}-fp32", modes=("fwdbwd",))
                  for T in (2, 4, 6, 10)]
        cases.append(LifCase(4, N, torch.bfloat16, f"{tag}-B{BATCH}-T4-N{N}-bf16", modes=("fwdbwd",)))
    return cases
