#!/usr/bin/env python
"""The paper's qualitative claims that can be checked without its datasets, measured, each with
HOLDS or DOES NOT HOLD at the budget it ran at.

    python reproduce/claims.py                    # smoke on CPU (minutes on 2 cores; reuses fig2/fig4/table1 runs)
    python reproduce/claims.py --budget paper --data-root ~/data

Per claim: where the paper states it, its words, what was measured, the numbers and the verdict.
Every threshold is fixed below, before any measurement (THRESHOLDS); a claim that does not hold is
written as such with its numbers. Runs are those of the other scripts where they coincide (same
settings, same run folder): Fig. 2's (no norm, ESG, IM-Loss; = Table 1's "w/ IM-Loss & ESG"),
Fig. 4's (tdBN, IM-Loss, k = 1 / k = 10 / ESG), plus a no-norm ESG run without IM-Loss and without
warm start. Writes results/claims-<budget>.{csv,md}.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from reproduce._common import dspike_cost
from reproduce._common.budget import Budget, git_sha, is_main
from reproduce._common.script import command, start
from snn.exits import one_line_errors
from snn.files import write_atomic
from reproduce._common.training import ROW_ERRORS, Setting, config, data_label, sync, train, trained_model_on_batch
from reproduce.fig2_spike_rate import initial_rates
from reproduce.fig3_surrogate import kernel_grad
from snn.esg import ESG, esg_k
from snn.im_loss import im_loss
from snn.neuron import LIF
from snn.train import Config, Results
from snn.train.prepare import build_optimizer

SCRIPT = "claims"
HOLDS, FAILS = "HOLDS", "DOES NOT HOLD"
ARCHS = {"cifarnet": ("CIFARNet", "paper-cifarnet"), "resnet19": ("ResNet-19", "paper-cifar10")}
IM_SCRATCH = {"norm": "none", "surrogate": "esg", "im_lambda": 2.0}  # Fig. 2 = Table 1 "w/ IM-Loss & ESG"
NO_IM_SCRATCH = {"norm": "none", "surrogate": "esg", "im_lambda": 0.0}  # Table 1 "w/ ESG" without its warm start
CURVES = {"k = 1": "tanh:1", "k = 10": "tanh:10", "ESG": "esg"}  # Fig. 4: tdBN and IM-Loss (the presets)
THRESHOLDS = {
    "silent": 1e-3,  # a layer is silent below this spike rate (fig2's SILENT: both scripts call the same layers silent)
    "rate band": (0.3, 0.7),  # "an appropriate range (about 50%)" after epoch 1
    "trains": 0.5,  # trains: test accuracy >= chance + this x (1 - chance), i.e. halfway from chance to 100%
    "does not train": 2.0,  # does not train: test accuracy < this x chance
    "esg negligible": 1e-3,  # ESG's per-epoch cost below this fraction of one training step
}
COLUMNS = ["claim", "source", "the paper's statement", "measured", "numbers", "verdict", "budget", "git sha"]
KEYS = ["claim id", "run ids"]


@dataclass(frozen=True)
class Claim:
    """A checked claim: verdict is HOLDS or DOES NOT HOLD."""

    id: str
    claim: str
    source: str
    statement: str
    measured: str
    numbers: str
    verdict: str
    runs: tuple = ()


def verdict(ok: bool) -> str:
    return HOLDS if ok else FAILS


# ---- trained claims ---------------------------------------------------------------------------

def fig2_claims(arch: str, cfg: Config, results: Results) -> list[Claim]:
    """Fig. 2 at epoch 0 (silent deep layers) and after epoch 1 (restricted layers in the band)."""
    name, runs = ARCHS[arch][0], (Path(cfg.out).name,)
    im = {n: m.im for n, m in results.model.named_modules() if isinstance(m, LIF)}
    start_rates = initial_rates(cfg)
    silent = [n for n in im if start_rates[n] < THRESHOLDS["silent"]]
    last = list(im)[-1]
    epoch1 = {k[5:]: v for k, v in results.history[0].items() if k.startswith("rate/")}
    restricted = {n: epoch1[n] for n in im if im[n]}
    low, high = THRESHOLDS["rate band"]
    out_of_band = {n: r for n, r in restricted.items() if not low <= r <= high}
    return [
        Claim(f"fig2-epoch0/{arch}", f"untrained no-norm {name} has silent deep layers", "sec. 4.2, Fig. 2 (epoch 0)",
              "untrained, without normalization: spike rates become 0 in the deeper layers",
              f"test-set spike rate of each of the {len(im)} LIF layers of the initial network (T={cfg.T}); "
              f"holds when the last layer is silent (rate < {THRESHOLDS['silent']:g})",
              f"silent: {len(silent)} of {len(im)} layers ({', '.join(silent) or 'none'}); last layer {last}: "
              f"{start_rates[last]:.2e}; first layer: {start_rates[list(im)[0]]:.3f}",
              verdict(start_rates[last] < THRESHOLDS["silent"]), runs),
        Claim(f"fig2-epoch1/{arch}", f"after one epoch of IM-Loss every restricted layer of {name} fires in "
              f"[{low:g}, {high:g}]", "sec. 4.2, Fig. 2 (epoch 1)",
              "after 1 epoch with IM-Loss the spike rate of each layer is in an appropriate range (about 50%)",
              f"test-set spike rate of the {len(restricted)} IM-Loss layers after epoch 1 (no norm, no bias, ESG, "
              f"IM-Loss weight {cfg.im_lambda:g})",
              f"range {min(restricted.values()):.3f} .. {max(restricted.values()):.3f}; outside the band: "
              + (", ".join(f"{n} {r:.3f}" for n, r in out_of_band.items()) or "none"),
              verdict(not out_of_band), runs),
    ]


def accuracy_at_best_val(results: Results) -> float:
    return results.test_acc_at_best_val if results.best_val_epoch is not None else results.final_test_acc


def scratch_claims(arch: str, im_run: tuple[Config, Results], no_im_run: tuple[Config, Results],
                   classes: int) -> list[Claim]:
    """Sec. 4.2 / Table 1: IM-Loss trains a no-norm network from scratch; without it (and without a
    warm start) the network does not train."""
    name = ARCHS[arch][0]
    chance = 1 / classes
    trains = chance + THRESHOLDS["trains"] * (1 - chance)
    fails = THRESHOLDS["does not train"] * chance
    (cfg_im, res_im), (cfg_no, res_no) = im_run, no_im_run
    acc_im, acc_no = accuracy_at_best_val(res_im), accuracy_at_best_val(res_no)
    epochs = len(res_im.history)
    rule = f"chance {100 * chance:.0f}%"
    return [
        Claim(f"scratch-im/{arch}", f"with IM-Loss, no-norm {name} trains from scratch to well above chance",
              "abstract, sec. 4.2, Table 1",
              "the first work that can directly train deep SNNs from scratch without normalization or warm-start",
              f"test accuracy (epoch of best validation accuracy) of a no-norm, bias-free {name} with IM-Loss "
              f"(weight {cfg_im.im_lambda:g}) and ESG, random initialization, {epochs} epochs; holds at >= "
              f"{100 * trains:.0f}% (halfway from chance to 100%)",
              f"{100 * acc_im:.2f}% ({rule}); train CE {res_im.history[0]['train_ce']:.3f} -> "
              f"{res_im.history[-1]['train_ce']:.3f}", verdict(acc_im >= trains), (Path(cfg_im.out).name,)),
        Claim(f"scratch-no-im/{arch}", f"without IM-Loss and without warm start, no-norm {name} does not train",
              "sec. 5.1, Table 1",
              "networks without normalization or IM-Loss might not be trainable from scratch (hence the warm start)",
              f"the same network and recipe with IM-Loss weight 0, no warm start; holds when test accuracy < "
              f"{100 * fails:.0f}% ({THRESHOLDS['does not train']:g}x chance)",
              f"{100 * acc_no:.2f}% ({rule}); train CE {res_no.history[0]['train_ce']:.3f} -> "
              f"{res_no.history[-1]['train_ce']:.3f}; with IM-Loss: {100 * acc_im:.2f}%",
              verdict(acc_no < fails), (Path(cfg_no.out).name,)),
    ]


def early_epochs(epochs: int) -> int:
    """How many epochs count as "the first epochs": a third of the run, at least one."""
    return max(1, epochs // 3)


def fig4_claims(arch: str, runs: dict[str, tuple[Config, Results]]) -> list[Claim]:
    """Sec. 4.4 / Fig. 4: k = 1 learns faster early than k = 10; ESG ends at least as high as both."""
    name = ARCHS[arch][0]
    curves = {label: [r["test_acc"] for r in res.history] for label, (_, res) in runs.items()}
    n = early_epochs(len(curves["k = 1"]))
    early = {label: statistics.fmean(c[:n]) for label, c in curves.items()}
    final = {label: c[-1] for label, c in curves.items()}
    ids = tuple(Path(cfg.out).name for cfg, _ in runs.values())
    fmt = "; ".join
    return [
        Claim(f"fig4-early/{arch}", f"{name}: k = 1 learns faster in the first epochs than k = 10",
              "sec. 4.4, Fig. 4",
              "SNNs with a small k have stronger updating ability and converge more easily than with a large k",
              f"mean test accuracy over the first {n} epoch(s) (tdBN, IM-Loss, fixed tanh slope k); holds when "
              f"k = 1's is higher",
              fmt(f"{label}: {100 * early[label]:.2f}%" for label in CURVES),
              verdict(early["k = 1"] > early["k = 10"]), ids),
        Claim(f"fig4-esg-end/{arch}", f"{name}: ESG ends at least as high as both fixed k", "sec. 4.4, Fig. 4",
              "ESG maintains the updating ability early and progressively reduces the error to achieve high accuracy",
              "test accuracy after the last epoch; holds when ESG's >= max(k = 1, k = 10)",
              fmt(f"{label}: {100 * final[label]:.2f}%" for label in CURVES),
              verdict(final["ESG"] >= max(final["k = 1"], final["k = 10"])), ids),
    ]


def step_and_esg_seconds(cfg: Config, results: Results, repeats: int = 5,
                         esg_repeats: int = 1000) -> tuple[float, float]:
    """(median wall time of one training step, mean wall time of ESG's per-epoch work).

    The step: forward, CE + IM-Loss, backward, SGD of the trained network on one training batch
    (both from trained_model_on_batch, as for dspike_cost.measure), after one warm-up step. ESG's work
    per epoch: ESG.step(), which computes K and assigns it to every LIF, on that network."""
    trained = trained_model_on_batch(cfg, results)
    model, x, y, device = trained.model, trained.x, trained.y, trained.device
    optimizer = build_optimizer(cfg, model)
    times = []
    for i in range(repeats + 1):
        sync(device)
        begin = time.perf_counter()
        loss = F.cross_entropy(model(x, T=cfg.T), y) + cfg.im_lambda * im_loss(model)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync(device)
        if i:  # the first is the warm-up
            times.append(time.perf_counter() - begin)
    esg = ESG(model, esg_repeats)
    begin = time.perf_counter()
    for _ in range(esg_repeats):
        esg.step()
    return statistics.median(times), (time.perf_counter() - begin) / esg_repeats


def dspike_claim(arch: str, cfg: Config, results: Results) -> Claim:
    """Sec. 5.2: one Dspike temperature selection costs N training steps; ESG costs nothing measurable."""
    name = ARCHS[arch][0]
    cost = dspike_cost.measure(cfg, results)
    step, esg = step_and_esg_seconds(cfg, results)
    n, esg_fraction = cost.seconds / step, esg / step
    ok = n > 1 and esg_fraction < THRESHOLDS["esg negligible"]
    return Claim(f"dspike-cost/{arch}", f"{name}: Dspike's temperature selection costs training steps, ESG nothing",
                 "sec. 5.2", "the Dspike is very time-consuming since it is computed by finite difference; ESG "
                 "needs no such evaluation",
                 f"one snn.dspike.select_temperature ({2 * cost.weights} perturbed forwards of batch {cost.batch}, "
                 f"{cost.chunk} weights per forward) and ESG's step, against the median training step on the same "
                 f"batch ({cost.device}); holds when the selection costs more than one step and ESG less than "
                 f"{THRESHOLDS['esg negligible']:g} of one",
                 f"selection {cost.seconds:.2f} s = N = {n:.1f} training steps of {1e3 * step:.1f} ms"
                 + (" (flat difference: b kept)" if cost.flat else "")
                 + f"; ESG {1e6 * esg:.1f} us per epoch = {esg_fraction:.1e} of a step",
                 verdict(ok), (Path(cfg.out).name,))


# ---- exact claims -----------------------------------------------------------------------------

def eq15_claim(epochs: int = 10, k_min: float = 1.0, k_max: float = 10.0) -> Claim:
    """Eq. 15 as printed, i = 0 .. N - 1: K ends at K(N - 1) < K_max."""
    ks = [esg_k(i, epochs, k_min, k_max) for i in range(epochs)]
    last = ((10 ** ((epochs - 1) / epochs) - 1) * k_max + (10 - 10 ** ((epochs - 1) / epochs)) * k_min) / 9
    return Claim("eq15-kmax", "ESG's K ends at K_max", "sec. 4.4, eq. 15",
                 "ESG starts with K_min at the early stage of training and ends with K_max at the end of training",
                 f"K(i) of eq. 15 as printed, by snn.esg.esg_k, for the epochs i = 0 .. N - 1 of N = {epochs} "
                 f"(K_min {k_min:g}, K_max {k_max:g}); holds when the last epoch's K equals K_max",
                 f"K = {', '.join(f'{k:.2f}' for k in ks)}; last K({epochs - 1}) = {ks[-1]:.4f} (closed form "
                 f"{last:.4f}), {100 * ks[-1] / k_max:.1f}% of K_max; K_max would need i = N",
                 verdict(math.isclose(ks[-1], k_max)))


def fig3_claim(vth: float = 0.5, k_values: tuple = (1.0, 10.0), away: float = 0.25) -> Claim:
    """Fig. 3 / eq. 13-14: the surrogate's gradient peaks at k / 2 at x = Vth, and a larger k brings
    the asymptotic function closer to the spike step away from the threshold."""
    peaks = {k: float(kernel_grad(np.array([vth]), k, vth)[0]) for k in k_values}
    gaps = {k: 0.5 * (1 - math.tanh(k * away)) for k in k_values}  # |phi_k - step| at |x - Vth| = away
    ok = all(math.isclose(peaks[k], k / 2, rel_tol=1e-12) for k in k_values) and \
        all(gaps[a] > gaps[b] for a, b in zip(k_values, k_values[1:]))
    return Claim("fig3-surrogate", "the asymptotic function's gradient peaks at k / 2 at Vth and sharpens with k",
                 "sec. 4.4, eq. 13-14, Fig. 3",
                 "a large k gives gradients very close to those of the spike activity; a small k updates more weights",
                 f"kernels.lif_scan's tanh surrogate gradient at u = Vth = {vth:g} (float64), and "
                 f"|phi_k - step| = (1 - tanh(k d)) / 2 at distance d = {away:g} from Vth",
                 "; ".join(f"k = {k:g}: peak {peaks[k]:.6f} (k/2 = {k / 2:g}), gap {gaps[k]:.4f}" for k in k_values),
                 verdict(ok))


# ---- the script -------------------------------------------------------------------------------

GROUPS = ("fig2-epoch0", "fig2-epoch1", "scratch-im", "scratch-no-im", "fig4-early", "fig4-esg-end", "dspike-cost")
IDS = [f"{group}/{arch}" for arch in ARCHS for group in GROUPS] + ["eq15-kmax", "fig3-surrogate"]  # report order


def run_claims(budget: Budget, args, selected: list[str], report: Callable[[Claim], None]) -> None:
    """Train (or reuse) what the selected claims need and report each claim as it is measured."""
    def want(group: str, arch: str) -> bool:
        return f"{group}/{arch}" in selected

    def trained(arch: str, method: dict) -> tuple[Config, Results]:
        cfg = config(Setting(ARCHS[arch][1], arch, 4, method), budget, args.data_root, args.runs)
        print(f"  {arch}: {cfg.norm}, {cfg.surrogate}, IM {cfg.im_lambda:g} on {cfg.dataset} "
              f"({Path(cfg.out).name}) ...", flush=True)
        return cfg, train(cfg)

    for arch in ARCHS:
        if any(want(g, arch) for g in ("fig2-epoch0", "fig2-epoch1", "scratch-im", "scratch-no-im")):
            im_run = trained(arch, IM_SCRATCH)
            for claim in fig2_claims(arch, *im_run):
                if claim.id in selected:
                    report(claim)
            if want("scratch-im", arch) or want("scratch-no-im", arch):
                no_im_run = trained(arch, NO_IM_SCRATCH)
                classes = [m for m in im_run[1].model.modules() if isinstance(m, torch.nn.Linear)][-1].out_features
                for claim in scratch_claims(arch, im_run, no_im_run, classes):
                    if claim.id in selected:
                        report(claim)
        if want("fig4-early", arch) or want("fig4-esg-end", arch):
            runs = {label: trained(arch, {"surrogate": s}) for label, s in CURVES.items()}
            for claim in fig4_claims(arch, runs):
                if claim.id in selected:
                    report(claim)
        if want("dspike-cost", arch):
            report(dspike_claim(arch, *trained(arch, {"surrogate": CURVES["ESG"]})))
    for claim in (eq15_claim(), fig3_claim()):
        if claim.id in selected:
            report(claim)


@one_line_errors
def main(argv: Optional[list[str]] = None) -> int:
    started = start(SCRIPT, __doc__, argv, IDS, ("cifar10",))
    if started is None:
        return 0
    args, budget, selected = started
    sha, rows = git_sha(), []
    stem = Path(args.out) / f"{SCRIPT}-{budget.tag}"
    data = data_label(Setting("paper-cifar10", "resnet19", 4), budget)

    def report(claim: Claim) -> None:
        rows.append({"claim": claim.claim, "source": claim.source, "the paper's statement": claim.statement,
                     "measured": claim.measured, "numbers": claim.numbers, "verdict": claim.verdict,
                     "budget": budget.tag, "git sha": sha, "claim id": claim.id, "run ids": " ".join(claim.runs)})
        print(f"  {claim.id}: {claim.verdict}: {claim.numbers}", flush=True)
        write(stem, rows, budget, data, command(SCRIPT, argv), sha)

    try:
        run_claims(budget, args, selected, report)
    except ROW_ERRORS as e:  # a missing dataset or a diverged run: the claims measured so far stay written
        print(f"claims: stopped: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return 1
    table = pd.DataFrame(rows, columns=COLUMNS + KEYS)
    print()
    print(table[["claim", "numbers", "verdict"]].to_markdown(index=False))
    print(f"\nwritten: {stem}.csv, {stem}.md")
    return 0


def write(stem: Path, rows: list[dict], budget: Budget, data: str, cmd: str, sha: str) -> None:
    """claims-<budget>.{csv,md}, rewritten after every claim (on torchrun rank 0 only)."""
    if not is_main():
        return
    frame = pd.DataFrame(rows, columns=COLUMNS + KEYS)
    write_atomic(stem.with_suffix(".csv"), frame.to_csv(index=False))
    scale = (f"**{budget.tag.upper()} budget**: measured on {data}, not on the paper's datasets, at "
             f"reduced width and epochs; a verdict says whether the claim holds AT THIS SCALE, not whether the "
             f"paper's claim is true." if budget.reduced else "**paper budget**: the paper's datasets and recipe.")
    thresholds = "; ".join(f"{k}: {v}" for k, v in THRESHOLDS.items())
    lines = [f"# The paper's claims, checked ({budget.tag})", "", f"Budget `{budget.tag}`: {budget.description}.", "",
             scale, "", frame[COLUMNS].to_markdown(index=False), "",
             f"- Thresholds, fixed in `reproduce/claims.py` before measuring (never tuned to a result): {thresholds}.",
             "- no norm: no normalization and no bias in any hidden layer (the classifier FC has one); every run "
             "starts from the engine's random initialization (no warm start) unless a claim says otherwise.",
             "- Spike rates are over the whole test set; accuracies are test accuracy at the epoch of best "
             "accuracy on a held-out 10% validation split, except Fig. 4's, which read the test curve.",
             "", f"Written {time.strftime('%Y-%m-%d %H:%M %Z')} by `{cmd}` at git {sha}."]
    write_atomic(stem.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
