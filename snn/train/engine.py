"""`run(config) -> Results`: a whole training run, resumable, on one process or under torchrun.

    from snn.train import Config, run
    results = run(Config(epochs=2, input_size=16, out="runs/digits"))
    results.final_test_acc, results.best_val_epoch, results.best_test_acc, results.model

Every epoch: train (Dspike selection first when asked), step the cosine LR and ESG, evaluate
the validation and test splits, append a metrics row, then write <out>/best.pt (when validation
accuracy improved) and <out>/last.pt atomically, and rewrite the metrics files. Before the run
folder is created, every setting is checked (with one forward of a test sample); failures are
the exceptions listed in run(), and under torchrun they end every rank together.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, DistributedSampler, Sampler, Subset

from .. import models
from ..data import build_datasets, make_loader
from ..dspike import FlatFiniteDifference, first_conv, select_temperature
from ..esg import ESG
from ..neuron import lif_layers
from . import checkpoint, distributed, metrics, runlock
from .config import Config, ConfigError
from .distributed import Context
from .loop import NonFiniteLoss, StepSettings, evaluate, model_input, train_epoch
from .stop import Interrupted, Signals, name as signal_name

CUDA_WORKERS = 8  # default data-loader workers per process on CUDA (CPU runs load in the main process)
RUN_FILES = ("config.json", "last.pt", "best.pt", "metrics.csv", "metrics.jsonl", "results.json")  # written atomically


@dataclass
class Results:
    """What a run produced. Accuracies are fractions in [0, 1]; epochs are 1-based.

    final_test_acc: test accuracy after the last epoch. best_val_acc / best_val_epoch: the epoch
    chosen on the held-out validation split (its weights are <out>/best.pt) and test_acc_at_best_val,
    the test accuracy of that epoch (None without a validation split). best_test_acc /
    best_test_epoch: the best test accuracy over epochs, the figure the authors' code reports
    (selected on the test set, hence optimistic). model: the trained network (bare, last epoch).
    """

    out: Path
    epochs: int
    final_test_acc: float
    best_val_acc: Optional[float]
    best_val_epoch: Optional[int]
    test_acc_at_best_val: Optional[float]
    best_test_acc: float
    best_test_epoch: int
    history: list[dict] = field(repr=False)
    model: nn.Module = field(repr=False)

    @classmethod
    def from_history(cls, out: Path, history: list[dict], model: nn.Module) -> "Results":
        best_val_acc, best_val_epoch = metrics.best(history, "val_acc")
        best_test_acc, best_test_epoch = metrics.best(history, "test_acc")
        return cls(out=out, epochs=len(history), final_test_acc=history[-1]["test_acc"], best_val_acc=best_val_acc,
                   best_val_epoch=best_val_epoch,
                   test_acc_at_best_val=None if best_val_epoch is None else history[best_val_epoch - 1]["test_acc"],
                   best_test_acc=best_test_acc, best_test_epoch=best_test_epoch, history=history, model=model)

    def to_dict(self) -> dict:
        """JSON-ready summary (without the model and the history)."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()
                if k not in ("model", "history")}

    def report(self) -> str:
        lines = [f"test accuracy at the last epoch ({self.epochs}): {100 * self.final_test_acc:.2f}%"]
        if self.best_val_epoch is not None:
            lines.append(f"best validation accuracy {100 * self.best_val_acc:.2f}% at epoch {self.best_val_epoch} "
                         f"(test accuracy there {100 * self.test_acc_at_best_val:.2f}%), weights in "
                         f"{self.out / 'best.pt'}")
        lines.append(f"best test accuracy over epochs (the authors' protocol; selected on the test set, so "
                     f"optimistic): {100 * self.best_test_acc:.2f}% at epoch {self.best_test_epoch}")
        return "\n".join(lines)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_data(cfg: Config, ctx: Context):
    """build_datasets on rank 0 first (it may download or write caches), then on the other ranks.

    Raises ConfigError for options build_datasets rejects, DatasetNotFound for missing data (on the
    other ranks: distributed.PeerFailed)."""
    kwargs = dict(root=cfg.data_root, T=cfg.T, download=cfg.download, val_fraction=cfg.val_fraction,
                  seed=cfg.seed, **cfg.dataset_options())

    def build():
        try:
            return build_datasets(cfg.dataset, **kwargs)
        except (TypeError, ValueError) as e:  # an option or value the dataset does not accept
            raise ConfigError(str(e)) from None
        except (RuntimeError, MemoryError) as e:
            if not _out_of_memory(e):
                raise
            raise ConfigError(f"the {cfg.dataset} data does not fit in memory with these settings "
                              f"({cfg.dataset_options() or 'defaults'}): {_first_line(e)}; use a smaller "
                              f"--input-size") from None

    data = distributed.together(build, ctx, main_only=True)
    return distributed.together(lambda: data if ctx.main else build(), ctx)


def _first_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"


def _out_of_memory(error: BaseException) -> bool:
    """Whether error is an allocation failure (CPU or CUDA)."""
    return isinstance(error, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(error, RuntimeError) and any(m in str(error) for m in ("can't allocate memory", "out of memory")))


def build_model(cfg: Config, info) -> nn.Module:
    """The configured network for the dataset's info; raises ConfigError for settings it rejects."""
    s = cfg.surrogate_spec
    try:
        return models.build(cfg.model, info.num_classes, in_channels=info.in_channels, norm=cfg.norm,
                            width=cfg.width, input_size=info.size[0], vth=cfg.vth, decay=cfg.decay, surrogate=s.lif,
                            alpha=s.alpha, detach_reset=cfg.detach_reset, backend=cfg.backend,
                            bias=cfg.bias)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model {cfg.model}: {e}") from None


def preflight(model: nn.Module, sample: torch.Tensor, s: StepSettings, cfg: Config, batch: int = 1) -> None:
    """A forward and backward of one batch of `batch` copies of a test sample, so that settings the
    model cannot run with (a backend this device lacks, an input too small for the architecture, a
    first batch that does not fit in memory) fail before anything is written. Changes no state:
    eval mode (normalization statistics untouched), gradients dropped, RNG states restored.

    sample: one dataset input ([C, H, W] or [T, 2, H, W]). Raises ConfigError with the reason."""
    training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[s.device] if s.device.type == "cuda" else []), \
                torch.autocast(s.device.type, dtype=torch.bfloat16, enabled=s.amp):
            x = model_input(sample.unsqueeze(0).expand(batch, *sample.shape).contiguous(), s)
            model(x, T=s.T).float().sum().backward()
    except (RuntimeError, ValueError, TypeError, MemoryError) as e:
        if _out_of_memory(e):
            raise ConfigError(f"the first training batch ({batch} x {tuple(sample.shape)}, {cfg.model}, T={cfg.T}) does "
                              f"not fit in {s.device.type} memory: {_first_line(e)}; lower --batch-size or "
                              f"--input-size") from None
        raise ConfigError(f"{cfg.model} cannot run with these settings (input {tuple(sample.shape)}, backend "
                          f"{cfg.backend!r}, device {s.device.type}): {type(e).__name__}: {str(e).strip()}") from None
    finally:
        model.train(training)
        model.zero_grad(set_to_none=True)
        if s.device.type == "cuda":
            torch.cuda.empty_cache()


def build_optimizer(cfg: Config, model: nn.Module) -> torch.optim.Optimizer:
    """SGD (momentum, L2 weight decay) or Adam (L2 weight decay), over every parameter."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def shard(dataset: Dataset, ctx: Context) -> Dataset:
    """This rank's every world-th sample, no padding (evaluation counts each sample once)."""
    return Subset(dataset, range(ctx.rank, len(dataset), ctx.world)) if ctx.distributed else dataset


class DspikeSelector:
    """Dspike's per-epoch temperature choice, run on rank 0 and broadcast to every rank.

    Called on an epoch's first training batch. The candidates are b and b +- db with db shrunk
    to b / 2 when b <= 2 db, so every candidate stays > 0. The loss is the cross-entropy, in fp32.
    When the finite difference is flat (no spike flips under +-eps: FlatFiniteDifference), b stays and the epoch's row says so (dspike_skipped); its cost is still logged.
    """

    def __init__(self, model: nn.Module, cfg: Config, ctx: Context):
        self.model, self.cfg, self.ctx = model, cfg, ctx
        self.layers = [m for m in lif_layers(model) if m.surrogate == "dspike"]
        self.b = cfg.dspike_b0
        self.cost: dict = {}

    def set_b(self, b: float) -> None:
        self.b = b
        for m in self.layers:
            m.alpha = b

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        outcome = None
        if self.ctx.main:
            start, b = time.perf_counter(), self.b
            try:
                b = select_temperature(self.model, x, y, F.cross_entropy, b=self.b,
                                       db=min(self.cfg.dspike_db, self.b / 2), eps=self.cfg.dspike_eps,
                                       T=self.cfg.T, chunk=self.cfg.dspike_chunk).b
                skipped = None
            except FlatFiniteDifference as e:  # the finite difference carried no direction: keep b
                skipped = str(e)
            outcome = {"b": b, "dspike_seconds": time.perf_counter() - start,
                       "dspike_forwards": 2 * first_conv(self.model).weight.numel(), "dspike_skipped": skipped}
        outcome = distributed.broadcast_object(outcome, self.ctx)
        if outcome["dspike_skipped"] is not None:
            _log(self.ctx, f"Dspike selection kept b = {self.b:g}: {outcome['dspike_skipped']}")
        self.set_b(outcome.pop("b"))
        self.cost = outcome


CHECKPOINT_KEYS = ("config", "epoch", "model", "optimizer", "scheduler", "esg", "dspike_b", "loader_generator",
                   "rng", "history")  # what Training.state writes and a resume needs


@dataclass
class Training:
    """The objects whose state a checkpoint holds, besides the RNGs and the history."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    esg: Optional[ESG]
    selector: Optional[DspikeSelector]
    generator: torch.Generator  # the training loader's: drives its worker seeds

    def state(self, cfg: Config, history: list[dict], rng: list[dict]) -> dict:
        """The checkpoint after len(history) epochs; rng: capture_rng() of every rank."""
        return {"config": cfg.identity(), "epoch": len(history), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "esg": None if self.esg is None else self.esg.state_dict(),
                "dspike_b": None if self.selector is None else self.selector.b,
                "loader_generator": self.generator.get_state(), "rng": rng, "history": history}

    def load(self, state: dict) -> None:
        """Restore everything state() saved except the RNGs and the history."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.esg is not None:
            self.esg.load_state_dict(state["esg"])
        if self.selector is not None:
            self.selector.set_b(state["dspike_b"])
        self.generator.set_state(state["loader_generator"])


def _log(ctx: Context, message: str) -> None:
    if ctx.main:
        print(message, flush=True)


def _surrogate_k(cfg: Config, esg: Optional[ESG]) -> Optional[float]:
    """The tanh surrogate's K for the coming epoch (ESG's or the fixed tanh:K), None for rect / dspike."""
    if esg is not None:
        return esg.k
    s = cfg.surrogate_spec
    return s.alpha if s.lif == "tanh" else None


def _check_resumable(saved: dict, cfg: Config, path: Path) -> None:
    """Refuse to resume a checkpoint trained with other settings, naming the fields that differ.

    A run trained for other epochs cannot be resumed either: its cosine LR period and ESG's N are
    its epochs, so the message points to --init-from, which starts a new run from its weights."""
    mine = cfg.identity()
    differ = [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in mine.items() if saved.get(k, None) != v]
    if differ:
        further = (f". To train it further, start a new run from its weights: --init-from {path} --epochs N "
                   f"--out NEW_FOLDER" if any(d.startswith("epochs:") for d in differ) else "")
        raise ConfigError(f"cannot resume {path}: it was trained with other settings ({'; '.join(differ)}); "
                          f"use the same settings or another --out{further}")


def _init_weights(model: nn.Module, path: Path) -> None:
    """Load the model weights of the snn.train checkpoint at path into model (--init-from).

    Raises checkpoint.CheckpointError for a missing, unreadable or damaged file, ConfigError when
    its weights do not fit this model (naming the missing, unexpected or mis-shaped entries)."""
    if not path.is_file():
        raise ConfigError(f"--init-from {path}: no such file; give the last.pt or best.pt of an earlier run")
    weights = checkpoint.load(path, keys=("model",))["model"]
    mine = model.state_dict()
    missing, unexpected = sorted(set(mine) - set(weights)), sorted(set(weights) - set(mine))
    shapes = [f"{k} {tuple(weights[k].shape)} vs {tuple(mine[k].shape)}" for k in sorted(set(mine) & set(weights))
              if weights[k].shape != mine[k].shape]
    if missing or unexpected or shapes:
        parts = [f"{what}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}" for what, keys in
                 (("missing", missing), ("unexpected", unexpected), ("other shapes (checkpoint vs model)", shapes))
                 if keys]
        raise ConfigError(f"--init-from {path}: its weights do not fit this model ({'; '.join(parts)}); use the "
                          f"checkpoint's --model, --width, --norm, --bias and dataset")
    model.load_state_dict(weights)


@dataclass
class Resumed:
    """What _resume restored besides tr: the history, the best.pt record and a partial epoch."""

    history: list[dict] = field(default_factory=list)
    best: Optional[dict] = None  # {"epoch", "model_digest"} of best.pt, see _best_record
    partial: Optional[dict] = None  # loop.train_epoch's stopped result of the interrupted epoch, plus "dspike"


def _best_record(state: dict) -> dict:
    """What last.pt records about best.pt: its epoch and the digest of its weights."""
    return {"epoch": state["epoch"], "model_digest": checkpoint.digest(state["model"])}


def _check_best(state: dict, path: Path, ctx: Context) -> None:
    """Check that best.pt (beside path) holds the weights last.pt's record names; rebuild it from
    last.pt when the record names last.pt's own epoch (a kill fell between the two writes), else
    raise CheckpointError saying what is wrong. Only rank 0 reads or writes it."""
    record = state.get("best")
    if record is None or not ctx.main:
        return
    best_path = path.parent / "best.pt"
    problem = None
    if not best_path.exists():
        problem = "is missing"
    else:
        try:
            best = checkpoint.load(best_path, keys=("epoch", "model"))
        except checkpoint.CheckpointError as e:
            problem = f"cannot be used ({e})"
        else:
            if best["epoch"] != record["epoch"] or checkpoint.digest(best["model"]) != record["model_digest"]:
                problem = (f"holds epoch {best['epoch']} with other weights than this run's best epoch "
                           f"{record['epoch']} (replaced or from another run)")
    if problem is None:
        return
    if record["epoch"] == state["epoch"] and state.get("partial") is None:  # due right after last.pt: same weights
        checkpoint.save(best_path, state)
        _log(ctx, f"rebuilt {best_path} from {path} (epoch {state['epoch']}): it {problem}")
        return
    raise checkpoint.CheckpointError(
        f"{best_path} {problem}: {path} records the best validation epoch {record['epoch']} there, and its weights "
        f"cannot be rebuilt; restore the original {best_path.name}, or start a new run in another --out")


def _resume(tr: Training, cfg: Config, ctx: Context, path: Path) -> Resumed:
    """Load path (when it exists) into tr and the RNGs, after checking best.pt against it.

    Raises checkpoint.CheckpointError for a file that is unreadable, damaged or not a checkpoint,
    or a best.pt that is not the one last.pt records (see _check_best)."""
    if not path.exists():
        _log(ctx, f"nothing to resume in {path.parent} (no {path.name}); starting from scratch")
        return Resumed()
    state = checkpoint.load(path, keys=CHECKPOINT_KEYS)
    _check_resumable(state["config"], cfg, path)
    _check_best(state, path, ctx)
    tr.load(state)
    rng = state["rng"]
    if len(rng) != ctx.world:
        _log(ctx, f"note: {path} was written by {len(rng)} processes, this run has {ctx.world}; the data order "
                  f"and random streams differ from an uninterrupted run")
    checkpoint.restore_rng(rng[ctx.rank] if len(rng) == ctx.world else rng[0])
    partial = state.get("partial")
    if partial is not None and tr.selector is not None:
        tr.selector.cost = partial["dspike"]
    where = f"epoch {state['epoch']}/{cfg.epochs}" if partial is None else \
        f"step {partial['step']}/{partial['steps']} of epoch {state['epoch'] + 1}/{cfg.epochs}"
    _log(ctx, f"resumed {path} after {where}")
    return Resumed(list(state["history"]), state.get("best"), partial)


LONGEST_RUN_FILE = len(".metrics.jsonl.12345678.tmp")  # a temporary file of write_atomic, the longest name


def _check_path_length(out: Path, existing: Path) -> None:
    """ConfigError when a folder name of out, or the path of a run file in it, is longer than the
    file system takes (NAME_MAX, PATH_MAX of the deepest existing folder)."""
    name_max, path_max = (os.pathconf(existing, k) for k in ("PC_NAME_MAX", "PC_PATH_MAX"))
    for part in out.absolute().parts:
        if len(os.fsencode(part)) > name_max:
            raise ConfigError(f"cannot use --out {out}: the name {part[:40]}... has {len(os.fsencode(part))} bytes, "
                              f"more than the {name_max} this file system allows; choose a shorter --out")
    longest = len(os.fsencode(out.absolute())) + 1 + LONGEST_RUN_FILE
    if longest >= path_max:
        raise ConfigError(f"cannot use --out {out}: its files' paths would have {longest} bytes, more than the "
                          f"{path_max - 1} this system allows; choose a shorter --out")


def _exists(path: Path) -> bool:
    """path.exists(), False for a name the file system cannot even look up (too long)."""
    try:
        return path.exists()
    except OSError:
        return False


def _check_out(out: Path, cfg: Config) -> None:
    """Before anything is built: refuse an --out that holds a run without --resume, or that cannot
    be a folder (ConfigError; FileExistsError for the former)."""
    existing = next(p for p in (out, *out.parents) if _exists(p))
    _check_path_length(out, existing)
    if (out / "last.pt").exists() and not cfg.resume:
        raise FileExistsError(f"{out / 'last.pt'} exists: pass --resume to continue that run, or choose another --out")
    if not existing.is_dir():
        raise ConfigError(f"cannot use --out {out}: {existing} is a file, not a folder; choose another --out")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot use --out {out}: {existing} is not writable; choose another --out")


def _open_out(out: Path, cfg: Config, history: list[dict]) -> None:
    """In the run folder, whose lock this process holds: remove the temporary files of writes a
    kill interrupted, write config.json, and rebuild the metrics files from the checkpoint's history."""
    for stale in checkpoint.remove_partial_writes(out, RUN_FILES):
        print(f"removed {stale}, left by an interrupted write", flush=True)
    checkpoint.write_atomic(out / "config.json", lambda f: f.write((json.dumps(cfg.to_dict(), indent=2) + "\n").encode()))
    if history:
        metrics.write(out, history)


def _finite_state(model: nn.Module, ctx: Context) -> bool:
    """Whether every parameter and floating-point buffer of model is finite on every rank."""
    bad = any(not torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point())
    return distributed.all_max(float(bad), ctx) == 0


def step_settings(cfg: Config, device: torch.device) -> StepSettings:
    """The per-forward settings: bf16 autocast and channels_last default to on with CUDA only.

    Raises ConfigError for channels_last on CPU: torch 2.14.1's oneDNN was observed computing a wrong
    weight gradient for a 1x1 stride-2 convolution with a channels_last input (ResNet shortcuts)."""
    cuda = device.type == "cuda"
    if cfg.channels_last and not cuda:
        raise ConfigError("--channels-last is refused on CPU: torch's oneDNN backend has computed wrong weight "
                          "gradients for 1x1 stride-2 convolutions (the ResNet shortcut) with channels_last inputs; "
                          "train on CPU without it (the default), or use it on CUDA")
    return StepSettings(T=cfg.T, device=device, amp=cuda if cfg.amp is None else cfg.amp,
                        channels_last=cuda if cfg.channels_last is None else cfg.channels_last,
                        im_lambda=cfg.im_lambda, clip_grad=cfg.clip_grad)


def run(config: Config) -> Results:
    """Train config.model on config.dataset as configured; see the module docstring and Config.

    Under torchrun (WORLD_SIZE > 1) every rank calls run; the process group is joined here when
    the caller has not, and left at the end. Every setting is checked before the run folder is
    created. Raises ConfigError for settings that cannot run (also found by one forward of a test
    sample), DatasetNotFound for missing data, FileExistsError when <out>/last.pt exists but
    config.resume is False, checkpoint.CheckpointError for an unusable last.pt to resume,
    loop.NonFiniteLoss when the loss, a gradient or a weight stops being finite (the last
    checkpoint, whose weights are finite, stays), checkpoint.WriteError when a run file cannot be
    written, distributed.PeerFailed on the other ranks when one rank fails in a shared step,
    runlock.RunFolderBusy (a ConfigError) when another process holds the run folder, and
    stop.Interrupted on SIGINT / SIGTERM (after writing a checkpoint that --resume continues, when
    the signal came while training). An exception on one rank ends every rank (see distributed).
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be a snn.train.Config, got {type(config).__name__}")
    ctx = distributed.setup(config.device)
    try:
        with Signals() as signals:
            results = _run(config, ctx, signals)
        distributed.barrier(ctx)
    except BaseException as e:
        distributed.abort(ctx)
        if ctx.distributed and distributed.lost_peer(e):
            raise distributed.PeerFailed(f"another process of the run stopped, so rank {ctx.rank} stopped too; the "
                                         f"failing process's log says why") from None
        raise
    distributed.teardown(ctx)
    return results


def _take_folder(held: contextlib.ExitStack, out: Path, cfg: Config) -> None:
    """Hold out's lock until the run ends (created now, after every setting was checked), and check
    again, under the lock, that it holds no run unless resuming (another process may have
    started one since _check_out)."""
    held.enter_context(runlock.hold(out))
    if (out / "last.pt").exists() and not cfg.resume:
        raise FileExistsError(f"{out / 'last.pt'} exists: pass --resume to continue that run, or choose another --out")


class _SkipBatches(Sampler):
    """sampler without its first `skip` indices: the rest of an interrupted epoch."""

    def __init__(self, sampler: Sampler, skip: int):
        self.sampler, self.skip = sampler, skip

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.skip, None)

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)


def _check_splits(cfg: Config, train_set, val_set, test_set) -> None:
    """ConfigError when the training or test split has no sample (e.g. a val_fraction that holds
    out every training sample of a small set)."""
    for split, data in (("training", train_set), ("test", test_set)):
        if len(data) == 0:
            raise ConfigError(f"the {split} split of {cfg.dataset} has no samples (val_fraction {cfg.val_fraction:g} "
                              f"holds out {0 if val_set is None else len(val_set)} of the training samples); "
                              f"lower --val-fraction or use more data")


def _run(cfg: Config, ctx: Context, signals: Signals) -> Results:
    with contextlib.ExitStack() as held:  # the run folder's lock, on rank 0, from _take_folder to the end
        return _train(cfg, ctx, signals, held)


def _train(cfg: Config, ctx: Context, signals: Signals, held: contextlib.ExitStack) -> Results:
    out = Path(cfg.out) if cfg.out is not None else Path("runs") / cfg.run_name()
    signals.immediate = "before training began; no checkpoint was written"
    last_path, best_path = out / "last.pt", out / "best.pt"
    if cfg.batch_size % ctx.world:
        raise ConfigError(f"batch_size (the global batch) must be divisible by the {ctx.world} processes, "
                          f"got {cfg.batch_size}")
    settings = step_settings(cfg, ctx.device)
    distributed.together(lambda: _check_out(out, cfg), ctx, main_only=True)
    cuda = ctx.device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    workers = (CUDA_WORKERS if cuda else 0) if cfg.workers is None else cfg.workers

    seed_everything(cfg.seed)
    train_set, val_set, test_set, info = build_data(cfg, ctx)
    _check_splits(cfg, train_set, val_set, test_set)

    def checked_model():
        net = build_model(cfg, info)
        if cfg.init_from is not None:
            _init_weights(net, Path(cfg.init_from))
        net = net.to(ctx.device, memory_format=torch.channels_last if settings.channels_last
                     else torch.preserve_format)
        preflight(net, test_set[0][0], settings, cfg, batch=min(cfg.batch_size // ctx.world, len(train_set)))
        return net

    model = distributed.together(checked_model, ctx)
    optimizer = build_optimizer(cfg, model)
    surrogate = cfg.surrogate_spec
    tr = Training(model, optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs),
                  ESG(model, cfg.epochs, cfg.k_min, cfg.k_max) if surrogate.schedule == "esg" else None,
                  DspikeSelector(model, cfg, ctx) if surrogate.schedule == "dspike" else None,
                  torch.Generator().manual_seed(cfg.seed))
    sampler = DistributedSampler(train_set, num_replicas=ctx.world, rank=ctx.rank, shuffle=True, seed=cfg.seed)
    local_batch = cfg.batch_size // ctx.world
    val_loader = None if val_set is None else make_loader(shard(val_set, ctx), local_batch, train=False,
                                                          workers=workers, pin_memory=cuda)
    test_loader = make_loader(shard(test_set, ctx), local_batch, train=False, workers=workers, pin_memory=cuda)

    distributed.together(lambda: _take_folder(held, out, cfg), ctx, main_only=True)
    resumed = distributed.together(lambda: _resume(tr, cfg, ctx, last_path), ctx) if cfg.resume else Resumed()
    history, best_record, partial = resumed.history, resumed.best, resumed.partial
    distributed.together(lambda: _open_out(out, cfg, history), ctx, main_only=True)
    net = distributed.wrap(model, ctx)
    _log(ctx, f"{cfg.model} (width {cfg.width:g}, {models.count_parameters(model):,} parameters) on {cfg.dataset} "
              f"{info.size[0]}x{info.size[1]}: {len(train_set)} train / {0 if val_set is None else len(val_set)} val / "
              f"{len(test_set)} test, T={cfg.T}, surrogate {cfg.surrogate}, IM-Loss weight {cfg.im_lambda:g}, "
              f"{cfg.optimizer} lr {cfg.lr:g}, batch {cfg.batch_size} on {ctx.world} x {ctx.device.type}"
              f"{', bf16 autocast' if settings.amp else ''}; writing {out}")

    signals.immediate = None  # from here a signal stops the run at the next step boundary
    for epoch in range(len(history), cfg.epochs):
        sampler.set_epoch(epoch)
        epoch_generator = tr.generator.get_state()  # the loader draws its workers' seed from it
        order = sampler if partial is None else _SkipBatches(sampler, partial["step"] * local_batch)
        loader = make_loader(train_set, local_batch, train=True, workers=workers, sampler=order,
                             generator=tr.generator, pin_memory=cuda)  # fresh workers, seeded from the generator
        row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], "K": _surrogate_k(cfg, tr.esg)}
        metrics.reset_peak_memory(ctx.device)
        trained = train_epoch(net, model, loader, optimizer, settings, ctx, epoch, cfg.epochs, select=tr.selector,
                              progress=cfg.progress and ctx.main, stop=lambda: signals.signum or 0,
                              resume_from=partial)
        partial = None
        if "stopped" in trained:
            _stop_mid_epoch(trained, tr, cfg, ctx, history, best_record, epoch_generator, last_path)
        if not _finite_state(model, ctx):  # e.g. weights overflowed by a huge step: never checkpoint them
            raise NonFiniteLoss("non-finite weights or normalization statistics", epoch + 1, cfg.epochs)
        tr.scheduler.step()
        if tr.esg is not None:
            tr.esg.step()
        start = time.perf_counter()
        val_acc = None if val_loader is None else evaluate(model, val_loader, settings, ctx)[0]
        test_acc, rates = evaluate(model, test_loader, settings, ctx, rates=True)
        images = trained.pop("images")
        row.update(trained, val_acc=val_acc, test_acc=test_acc, eval_seconds=time.perf_counter() - start,
                   images_per_s=images / trained["epoch_seconds"],
                   peak_mem_mib=distributed.all_max(metrics.peak_memory_mib(ctx.device), ctx),
                   dspike_b=None, dspike_seconds=None, dspike_forwards=None,
                   dspike_skipped=None)
        if tr.selector is not None:
            row.update(dspike_b=tr.selector.b, **tr.selector.cost)
        row.update({f"rate/{name}": rate for name, rate in rates.items()})
        previous_best, _ = metrics.best(history, "val_acc")
        history.append(row)
        rng = distributed.gather_objects(checkpoint.capture_rng(), ctx)
        state = tr.state(cfg, history, rng)
        improved = val_acc is not None and (previous_best is None or val_acc > previous_best)
        if improved and ctx.main:  # rank 0 writes the files, and the record
            best_record = _best_record(state)
        state["best"] = best_record

        def write_epoch():
            checkpoint.save(last_path, state)
            if improved:  # after last.pt, which records it: a kill in between is repaired on resume
                checkpoint.save(best_path, state)
            metrics.write(out, history)

        distributed.together(write_epoch, ctx, main_only=True)
        _log(ctx, metrics.summary(row, cfg.epochs))
        signum = int(distributed.all_max(float(signals.signum or 0), ctx))
        if signum and epoch + 1 < cfg.epochs:
            raise Interrupted(signum, f"stopped on {signal_name(signum)} after epoch {epoch + 1}/{cfg.epochs}; "
                                      f"{last_path} holds it: continue with --resume")
    signals.immediate = f"after the last epoch; {last_path} holds every epoch: --resume writes the results"

    results = Results.from_history(out, history, model)

    def write_results():
        metrics.write(out, history)  # also after a resume with nothing left to train
        text = json.dumps(results.to_dict(), indent=2) + "\n"
        checkpoint.write_atomic(out / "results.json", lambda f: f.write(text.encode()))

    distributed.together(write_results, ctx, main_only=True)
    _log(ctx, results.report())
    return results


def _stop_mid_epoch(trained: dict, tr: Training, cfg: Config, ctx: Context, history: list[dict],
                    best_record: Optional[dict], epoch_generator: torch.Tensor, last_path: Path) -> None:
    """Write last.pt with the interrupted epoch's progress (key "partial": train_epoch's stopped
    result; the loader generator as the epoch began, so that --resume replays the same epoch from
    the next step), then raise Interrupted."""
    epoch = len(history) + 1
    rng = distributed.gather_objects(checkpoint.capture_rng(), ctx)
    partial = {k: trained[k] for k in ("step", "steps", "sums", "seconds")}
    partial["dspike"] = None if tr.selector is None else tr.selector.cost
    state = {**tr.state(cfg, history, rng), "loader_generator": epoch_generator, "best": best_record,
             "partial": partial}
    distributed.together(lambda: checkpoint.save(last_path, state), ctx, main_only=True)
    raise Interrupted(trained["stopped"], f"stopped on {signal_name(trained['stopped'])} at step {trained['step']}/"
                                          f"{trained['steps']} of epoch {epoch}/{cfg.epochs}; saved {last_path}: "
                                          f"continue with --resume")
