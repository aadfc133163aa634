"""The command line of `python -m snn.train` (and `torchrun ... -m snn.train`)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import traceback
from typing import Optional

from .. import exits
from ..data import DATASETS
from ..models import MODELS, NORMS
from . import presets
from .config import DEVICES, LIF_BACKENDS, OPTIMIZERS, SURROGATE_FORMS, Config
from .engine import run
from .stop import Interrupted

DEFAULTS = {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
            for f in dataclasses.fields(Config)}

DESCRIPTION = """\
Train a spiking network with IM-Loss and ESG (Guo et al., NeurIPS 2022).

Without a preset the run is a small CPU job on scikit-learn's bundled digits (no download): spiking
CIFARNet at width 0.25, T=2, tdBN, ESG, IM-Loss weight 2, SGD lr 0.1, batch 64, 4 epochs, cosine LR.
Flags override the preset's fields; every default below is that of the digits run."""

_SIGNALLED = " / ".join(str(exits.signalled(s)) for s in exits.STOP_SIGNALS)
EPILOG = f"""\
presets (the recipe of the authors' released code, docs/design.md "Training recipe": SGD momentum
0.9, weight decay 1e-4, lr 0.1, cosine annealing, batch 128, 100 epochs; with the paper's tdBN,
ESG K 1..10 and IM-Loss weight 2; architecture and T as reported in the paper's Table 2):
{presets.describe()}

outputs in --out: config.json, last.pt (after every epoch), best.pt (best validation accuracy),
metrics.csv and metrics.jsonl (one row per epoch: losses, accuracies, K, Dspike b and its cost,
seconds, images/s, peak memory, per-layer spike rates on the test set), spike_rates.csv (epoch, layer,
index, rate: each LIF layer's spike rate on the test set after each epoch), results.json and
spike_rates.png (those rates plotted per layer, one line per epoch; written at the end of the run).

exit codes (each failure prints one line "error: ...", under torchrun on every rank, naming it, the
rank that failed first):
  {exits.DONE:<9} done
  {exits.FAILED:<9} a run file could not be written (full disk, ...; the previous checkpoint is kept), or
            another process of the run failed
  {exits.USAGE:<9} bad settings (found before the run folder is created: also a --model MODULE:FACTORY that
            does not import, fails or returns no nn.Module, or has no snn.LIF for IM-Loss to restrict,
            an empty class folder of --dataset folder, and an --out that cannot be made, locked or
            written, a symbolic-link loop included), missing or corrupt data, an
            unreadable or damaged checkpoint, a run directory that already holds a run (pass --resume)
            or is in use by another process, or a process group that cannot be joined
  {exits.DIVERGED:<9} training diverged: non-finite loss, gradient or weights (the last checkpoint, with
            finite weights, is kept)
  {_SIGNALLED}
            stopped by SIGHUP / SIGINT (Ctrl-C) / SIGTERM (also when sent to the whole process group,
            data-loader workers included) at the next step, after saving a checkpoint that --resume
            continues; a signal during a checkpoint write takes effect once the write is complete;
            before training (joining the process group included) it stops at once

examples:
  python -m snn.train                                     # digits on CPU
  python -m snn.train --preset paper-cifar10 --data-root ~/data --out runs/r19-c10
  python -m snn.train --preset paper-cifar10 --data-root ~/data --out runs/r19-c10 --resume
  python -m snn.train --preset paper-cifar10 --data-root ~/data --out runs/r19-c10-more \\
      --init-from runs/r19-c10/last.pt --epochs 50 --lr 0.01     # train a finished run further
  python -m snn.train --model resnet19 --dataset cifar10 --T 4 --epochs 300 --batch-size 128 \\
      --lr 0.1 --norm tdbn --surrogate esg --im-lambda 2 --data-root ~/data --out runs/r19
  torchrun --nproc_per_node=8 -m snn.train --preset paper-imagenet --data-root /data --out runs/r34
  python -m snn.train --model mypkg.nets:make --dataset folder --data-root ~/pictures --input-size 64 \\
      --out runs/mine                                    # your own network on your own image folders"""


def _data_option(text: str) -> tuple[str, object]:
    """'KEY=VALUE' -> (key, value), VALUE read as an int, a float, true/false, or kept as text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    if value.lower() in ("true", "false"):
        return key, value.lower() == "true"
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m snn.train", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                argument_default=argparse.SUPPRESS)

    def add(group, flag, help, **kw):
        dest = kw.pop("dest", flag.lstrip("-").replace("-", "_"))
        default = DEFAULTS.get(dest)
        flag_like = kw.get("action") in ("store_true", argparse.BooleanOptionalAction)
        shown = "" if flag_like or default is None or default == {} else f" (default: {default})"
        group.add_argument(flag, dest=dest, help=help + shown, **kw)

    p.add_argument("--preset", choices=tuple(presets.PRESETS), help="start from a paper recipe (see below)")
    g = p.add_argument_group("model")
    add(g, "--model", f"architecture: one of {', '.join(MODELS)}, or MODULE:FACTORY, your own network: a function "
        "in an importable module returning an nn.Module (called with those of num_classes, in_channels, "
        "input_size, T, vth, decay, surrogate, alpha, detach_reset, backend it names); docs/own-models.md",
        metavar="NAME")
    add(g, "--time-major", "a MODULE:FACTORY model takes [T, B, ...] sequences (default: when its forward has no T "
        "parameter and it sets no time_major attribute)", action=argparse.BooleanOptionalAction)
    add(g, "--width", "multiplier of every hidden channel / feature count (1 = the paper's network)", type=float)
    add(g, "--norm", "normalization after each conv: tdBN, BatchNorm over T*B, or none", choices=NORMS)
    add(g, "--bias", "biases on the hidden conv / FC layers that no norm follows (default: only with a norm, "
        "i.e. the hidden FCs of cifarnet and vgg16; --norm none is bias-free unless --bias)",
        action=argparse.BooleanOptionalAction)
    add(g, "--T", "timesteps (frames per sample for event data)", type=int, dest="T")
    g = p.add_argument_group("data")
    add(g, "--dataset", "dataset (digits needs no files; synthetic is for tests; folder: any ImageFolder tree in "
        "--data-root, DIR/<class>/*.png, 20%% of each class held out as the test split)", choices=DATASETS)
    add(g, "--data-root", "folder holding the datasets (default: ./data)", metavar="DIR")
    add(g, "--download", "fetch a missing CIFAR dataset (needs internet)", action="store_true")
    add(g, "--input-size", "image side: digits, folder and cifar10-dvs resize to it, imagenet crops to it (default: "
        "the dataset's own: 32, 32, 48, 224)", type=int, metavar="N")
    add(g, "--data-option", "extra dataset option, repeatable (e.g. verify=false for cifar, cache_dir=DIR for "
        "cifar10-dvs; for folder: channels=1, mean=0.5, std=0.25 or per channel mean=0.4,0.5,0.6, test_fraction=0.1)",
        type=_data_option, action="append", metavar="KEY=VALUE", dest="data_options")
    add(g, "--val-fraction", "fraction of each training class held out for validation and best-checkpoint "
        "selection (0: none)", type=float)
    g = p.add_argument_group("neurons and surrogate gradient")
    add(g, "--surrogate", f"one of {SURROGATE_FORMS}: ESG (the paper), fixed tanh slope K, tdBN's rectangle, "
        "or Dspike with per-epoch finite-difference temperature selection", metavar="MODE")
    add(g, "--k-min", "ESG's K at the first epoch (eq. 15)", type=float)
    add(g, "--k-max", "ESG's K towards the last epoch (eq. 15)", type=float)
    add(g, "--dspike-b0", "Dspike's initial temperature b", type=float)
    add(g, "--dspike-db", "Dspike's candidate step: b - db, b, b + db each epoch", type=float)
    add(g, "--dspike-eps", "central finite-difference step on the first layer's weights", type=float)
    add(g, "--dspike-chunk", "first-layer weights evaluated per batched forward of the selection", type=int)
    add(g, "--vth", "firing threshold", type=float)
    add(g, "--decay", "membrane decay per timestep", type=float)
    add(g, "--detach-reset", "stop the gradient through the reset term", action="store_true")
    add(g, "--backend", "LIF scan backend (auto: Triton on CUDA, the native cpu kernel on CPU when built, else torch)",
        choices=LIF_BACKENDS)
    g = p.add_argument_group("optimization")
    add(g, "--im-lambda", "weight of IM-Loss in CE + lambda * IM (paper: 2; 0 disables it)", type=float)
    add(g, "--optimizer", "optimizer, with cosine annealing of the learning rate over the epochs",
        choices=OPTIMIZERS)
    add(g, "--lr", "initial learning rate", type=float)
    add(g, "--momentum", "SGD momentum", type=float)
    add(g, "--weight-decay", "L2 weight decay", type=float)
    add(g, "--clip-grad", "clip the gradient's global L2 norm to this value (default: no clipping)",
        type=float, metavar="NORM")
    add(g, "--epochs", "training epochs (also ESG's N and the cosine period)", type=int)
    add(g, "--batch-size", "global batch size (split evenly across torchrun processes)", type=int)
    add(g, "--seed", "seeds python, numpy, torch, the data order and the validation split", type=int)
    g = p.add_argument_group("runtime")
    add(g, "--device", "where to train (auto: CUDA when available)", choices=DEVICES)
    add(g, "--amp", "bf16 autocast (default: on with CUDA)", action=argparse.BooleanOptionalAction)
    add(g, "--channels-last", "channels_last memory format (default: on with CUDA; refused on CPU, where oneDNN "
        "has computed wrong weight gradients with it)",
        action=argparse.BooleanOptionalAction)
    add(g, "--workers", "data-loader worker processes (default: 8 on CUDA, 0 on CPU)", type=int)
    add(g, "--out", "run directory (default: runs/MODEL-DATASET-SURROGATE-TT-seedS)", metavar="DIR")
    add(g, "--resume", "continue the run in --out from its last.pt (exactly, on CPU); starts fresh when "
        "there is none", action="store_true")
    add(g, "--init-from", "start a new run from the model weights of a checkpoint written by snn.train "
        "(last.pt or best.pt of another run; optimizer, LR schedule, ESG and epochs start afresh): fine-tuning, "
        "or training a finished run further", metavar="CKPT")
    add(g, "--progress", "progress bar with ETA and images/s", action=argparse.BooleanOptionalAction)
    return p


def config_from_args(argv=None) -> Config:
    """Parse the command line into a Config (on a bad value argparse prints the reason and exits
    with exits.USAGE)."""
    parser = build_parser()
    given = vars(parser.parse_args(argv))
    preset = given.pop("preset", None)
    if "data_options" in given:
        given["data_options"] = dict(given["data_options"])
    try:
        return Config.from_preset(preset, **given) if preset else Config(**given)
    except (TypeError, ValueError) as e:
        parser.error(str(e))


def main(argv=None) -> int:
    """Run the command line; returns the exit code."""
    report = Report()
    try:
        run(config_from_args(argv), report=report)
    except (Exception, KeyboardInterrupt) as e:
        return report(e)
    return exits.DONE


class Report:
    """Says once, on stderr, why this process stops, and gives its exit code: one line
    "error: ..." / "interrupted: ..." for the failures of the exit-code table (under torchrun the
    ranks other than 0 name themselves: "error (rank N): ..."), the traceback for anything else (a
    bug) with exit code 1. run() calls it before this rank leaves the process group, so that the line of the
    rank that failed comes before the lines of the ranks it stops; main() calls it again with what
    run() raised, which is said only once."""

    def __init__(self):
        self._said: list[BaseException] = []

    def __call__(self, error: BaseException) -> Optional[int]:
        """Say why error stops this process (once) -> its exit code; None, saying nothing, for a
        BaseException that is neither an Exception nor a KeyboardInterrupt (SystemExit, ...)."""
        if not isinstance(error, (Exception, KeyboardInterrupt)):
            return None
        code, line = _outcome(error)
        if any(said is error for said in self._said):
            return code
        self._said.append(error)
        if line is None:
            traceback.print_exception(error, file=sys.stderr)
            sys.stderr.flush()
            return code
        rank = os.environ.get("RANK", "0")
        kind, _, message = line.partition(": ")
        exits.say(line if rank == "0" else f"{kind} (rank {rank}): {message}")
        return code


def _outcome(error: BaseException) -> tuple[int, Optional[str]]:
    """(exit code, the line "kind: message" that says why, or None for a bug, whose traceback is kept)."""
    if isinstance(error, Interrupted):  # SIGHUP / SIGINT / SIGTERM, after saving what resumes
        return error.exit_code, f"interrupted: {error}"
    if isinstance(error, KeyboardInterrupt):  # Ctrl-C before run() took the signals over
        return exits.signalled(signal.SIGINT), ("interrupted: stopped on SIGINT before the run started; nothing "
                                                "was written")
    code = exits.of(error)
    return (exits.FAILED, None) if code is None else (code, f"error: {error}")
