"""The pre-run phase of a training run: everything before the run folder exists.

`prepare(cfg, ctx, signals, held) -> Setup` checks every setting (with one forward and backward of
a batch of test samples, `preflight`), builds the data, model, optimizer, schedules and loaders,
and only then takes the run folder. The builders are public for scripts that need the run's
data or initial model without training (reproduce/).
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, DistributedSampler, Subset

from .. import models
from ..data import build_datasets, make_loader
from ..data.split import TransformedSubset
from ..dspike import DspikeSchedule
from ..esg import ESG
from . import distributed, factory, runfolder
from .config import Config, ConfigError
from .distributed import Context
from .loop import StepSettings, model_input
from .state import Training
from .stop import Signals

CUDA_WORKERS = 8  # default data-loader workers per process on CUDA (CPU runs load in the main process)


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
    """The configured network for the dataset's info (a DatasetInfo, or anything with its
    num_classes, in_channels and size): one of snn.models, or a factory's (snn.train.factory).
    Raises ConfigError for settings it rejects, also a factory that cannot be used or a factory
    model without the snn.LIF layers IM-Loss, ESG or Dspike need."""
    surrogate = cfg.surrogate_spec
    if factory.is_factory(cfg.model):
        settings = dict(num_classes=info.num_classes, in_channels=info.in_channels, input_size=info.size[0], T=cfg.T,
                        vth=cfg.vth, decay=cfg.decay, surrogate=surrogate.lif, alpha=surrogate.alpha,
                        detach_reset=cfg.detach_reset, backend=cfg.backend)
        try:
            model = factory.build(cfg.model, settings, cfg.time_major)
            factory.check_trainable(model, cfg.model, cfg.im_lambda, surrogate.schedule)
        except factory.FactoryError as e:
            raise ConfigError(str(e)) from None
        return model
    try:
        return models.build(cfg.model, info.num_classes, in_channels=info.in_channels, norm=cfg.norm,
                            width=cfg.width, input_size=info.size[0], vth=cfg.vth, decay=cfg.decay,
                            surrogate=surrogate.lif, alpha=surrogate.alpha, detach_reset=cfg.detach_reset,
                            backend=cfg.backend, bias=cfg.bias)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model {cfg.model}: {e}") from None


def model_info(info) -> dict:
    """What a checkpoint records of the data so that snn.load rebuilds the model without it: the
    class count and names, input channels and size (H, W), and the data kind ('static' images,
    'events' frames)."""
    return {"num_classes": info.num_classes, "in_channels": info.in_channels, "size": list(info.size),
            "kind": info.kind, "classes": list(info.classes)}


def preflight(model: nn.Module, sample: torch.Tensor, settings: StepSettings, cfg: Config, batch: int = 1) -> None:
    """A forward and backward of one batch of `batch` copies of a test sample, so that settings the
    model cannot run with (a backend this device lacks, an input too small for the architecture, a
    first batch that does not fit in memory) fail before anything is written. Changes no state:
    eval mode (normalization statistics untouched), gradients dropped, RNG states restored.

    sample: one dataset input ([C, H, W] or [T, 2, H, W]). Raises ConfigError with the reason."""
    training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[settings.device] if settings.device.type == "cuda" else []), \
                torch.autocast(settings.device.type, dtype=torch.bfloat16, enabled=settings.amp):
            x = model_input(sample.unsqueeze(0).expand(batch, *sample.shape).contiguous(), settings)
            model(x, T=settings.T).float().sum().backward()
    except (RuntimeError, ValueError, TypeError, MemoryError) as e:
        if _out_of_memory(e):
            raise ConfigError(f"the first training batch ({batch} x {tuple(sample.shape)}, {cfg.model}, T={cfg.T}) "
                              f"does not fit in {settings.device.type} memory: {_first_line(e)}; lower --batch-size or "
                              f"--input-size") from None
        raise ConfigError(f"{cfg.model} cannot run with these settings (input {tuple(sample.shape)}, backend "
                          f"{cfg.backend!r}, device {settings.device.type}): {type(e).__name__}: "
                          f"{str(e).strip()}") from None
    finally:
        model.train(training)
        model.zero_grad(set_to_none=True)
        if settings.device.type == "cuda":
            torch.cuda.empty_cache()


def build_optimizer(cfg: Config, model: nn.Module) -> torch.optim.Optimizer:
    """SGD (momentum, L2 weight decay) or Adam (L2 weight decay), over every parameter."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def build_training(cfg: Config, model: nn.Module) -> Training:
    """model with a fresh optimizer, cosine LR over cfg.epochs, ESG or Dspike schedule as the
    surrogate asks, and the training loader's generator seeded with cfg.seed."""
    optimizer = build_optimizer(cfg, model)
    schedule = cfg.surrogate_spec.schedule
    return Training(model, optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs),
                    ESG(model, cfg.epochs, cfg.k_min, cfg.k_max) if schedule == "esg" else None,
                    DspikeSchedule(model, b0=cfg.dspike_b0, db=cfg.dspike_db, eps=cfg.dspike_eps, T=cfg.T,
                                   chunk=cfg.dspike_chunk) if schedule == "dspike" else None,
                    torch.Generator().manual_seed(cfg.seed))


def shard(dataset: Dataset, ctx: Context) -> Dataset:
    """This rank's every world-th sample, no padding (evaluation counts each sample once)."""
    return Subset(dataset, range(ctx.rank, len(dataset), ctx.world)) if ctx.distributed else dataset


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


def _check_splits(cfg: Config, train_set, val_set, test_set) -> None:
    """ConfigError when the training or test split has no sample (e.g. a val_fraction that holds
    out every training sample of a small set)."""
    for split, data in (("training", train_set), ("test", test_set)):
        if len(data) == 0:
            raise ConfigError(f"the {split} split of {cfg.dataset} has no samples (val_fraction {cfg.val_fraction:g} "
                              f"holds out {0 if val_set is None else len(val_set)} of the training samples); "
                              f"lower --val-fraction or use more data")


@dataclass
class Setup:
    """What every epoch of one run uses, built once by prepare."""

    cfg: Config
    ctx: Context
    signals: Signals
    out: Path
    settings: StepSettings
    training: Training
    train_set: TransformedSubset
    sampler: DistributedSampler
    local_batch: int
    workers: int
    val_loader: Optional[torch.utils.data.DataLoader]
    test_loader: torch.utils.data.DataLoader
    description: str  # the line logged when training begins

    @property
    def last_path(self) -> Path:
        return self.out / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.out / "best.pt"


def prepare(cfg: Config, ctx: Context, signals: Signals, held: contextlib.ExitStack) -> Setup:
    """Check every setting (one forward and backward of a test sample included), build the data,
    model, optimizer, schedules and loaders, then take the run folder (its lock, into held).

    Raises what snn.train.run lists for settings, data and the run folder."""
    out = Path(cfg.out) if cfg.out is not None else Path("runs") / cfg.run_name()
    if cfg.batch_size % ctx.world:
        raise ConfigError(f"batch_size (the global batch) must be divisible by the {ctx.world} processes, "
                          f"got {cfg.batch_size}")
    settings = step_settings(cfg, ctx.device)
    distributed.together(lambda: runfolder.check_out(out, cfg), ctx, main_only=True)
    cuda = ctx.device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    workers = (CUDA_WORKERS if cuda else 0) if cfg.workers is None else cfg.workers

    seed_everything(cfg.seed)
    train_set, val_set, test_set, info = build_data(cfg, ctx)
    _check_splits(cfg, train_set, val_set, test_set)

    def checked_model():
        net = build_model(cfg, info)
        if cfg.init_from is not None and not (cfg.resume and (out / "last.pt").exists()):
            # a resumed run takes its weights from its own last.pt: the source may be gone or replaced
            runfolder.init_weights(net, Path(cfg.init_from))
        net = net.to(ctx.device, memory_format=torch.channels_last if settings.channels_last
                     else torch.preserve_format)
        preflight(net, test_set[0][0], settings, cfg, batch=min(cfg.batch_size // ctx.world, len(train_set)))
        return net

    model = distributed.together(checked_model, ctx)
    training = build_training(cfg, model)
    training.model_info = model_info(info)
    sampler = DistributedSampler(train_set, num_replicas=ctx.world, rank=ctx.rank, shuffle=True, seed=cfg.seed)
    local_batch = cfg.batch_size // ctx.world
    val_loader = None if val_set is None else make_loader(shard(val_set, ctx), local_batch, train=False,
                                                          workers=workers, pin_memory=cuda)
    test_loader = make_loader(shard(test_set, ctx), local_batch, train=False, workers=workers, pin_memory=cuda)

    distributed.together(lambda: runfolder.take_folder(held, out, cfg), ctx, main_only=True)
    description = (
        f"{cfg.model} ({'' if factory.is_factory(cfg.model) else f'width {cfg.width:g}, '}"
        f"{models.count_parameters(model):,} parameters) on {cfg.dataset} "
        f"{info.size[0]}x{info.size[1]}: {len(train_set)} train / {0 if val_set is None else len(val_set)} val / "
        f"{len(test_set)} test, T={cfg.T}, surrogate {cfg.surrogate}, IM-Loss weight {cfg.im_lambda:g}, "
        f"{cfg.optimizer} lr {cfg.lr:g}, batch {cfg.batch_size} on {ctx.world} x {ctx.device.type}"
        f"{', bf16 autocast' if settings.amp else ''}; writing {out}")
    return Setup(cfg, ctx, signals, out, settings, training, train_set, sampler, local_batch, workers, val_loader,
                 test_loader, description)
