"""DataLoader construction for the datasets of build_datasets."""

from __future__ import annotations

import os
from typing import Optional

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..checks import boolean as check_bool, integer as check_int


def own_process_group(worker_id: int) -> None:
    """Every loader's worker_init_fn: the worker leaves its parent's process group for one of its
    own. A signal sent to the run's process group (a scheduler, `timeout`, torchrun's agent,
    Ctrl-C at a terminal) then reaches the main process only, which stops the run at a step
    boundary and saves what --resume needs (snn.train.stop); killed by it, the workers would take
    the run down with a worker error. The workers keep the default signal handling, so the loader's
    shutdown (and multiprocessing's, which sends SIGTERM at interpreter exit) still ends them, and
    they exit by themselves when the main process is gone (the loader's watchdog)."""
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)


def make_loader(dataset: Dataset, batch_size: int, *, train: bool, workers: int = 0,
                sampler: Optional[Sampler] = None, generator: Optional[torch.Generator] = None,
                pin_memory: bool = False, drop_last: bool = False) -> DataLoader:
    """Batches (inputs [B, C, H, W] or [B, T, 2, H, W] float32, labels [B] int64).

    train: reshuffle every epoch, unless a sampler is given (a DistributedSampler: it then owns the
    order, and the trainer calls its set_epoch). generator: drives the shuffle and the seeds of the
    worker processes (augmentation draws from torch's RNG, which each worker seeds from it, unless
    the dataset's seed_augmentation makes it a function of the sample, as the trainer does);
    None uses torch's global RNG. workers > 0 keeps the worker processes across epochs.
    pin_memory: page-locked batches for faster copies to a CUDA device.
    """
    check_int("batch_size", batch_size, 1)
    check_bool("train", train)
    check_int("workers", workers, 0)
    check_bool("pin_memory", pin_memory)
    check_bool("drop_last", drop_last)
    if sampler is not None and not isinstance(sampler, Sampler):
        raise TypeError(f"sampler must be a torch.utils.data.Sampler or None, got {type(sampler).__name__}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return DataLoader(dataset, batch_size=batch_size, shuffle=train and sampler is None, sampler=sampler,
                      num_workers=workers, persistent_workers=workers > 0, pin_memory=pin_memory,
                      drop_last=drop_last, generator=generator,
                      worker_init_fn=own_process_group if workers > 0 else None)
