"""`snn.load(path)`: a trained network back from a run's best.pt / last.pt, for inference.

    model = snn.load("runs/digits/best.pt", backend="torch")   # eval mode, on the CPU
    logits = model(images, T=model.T)                          # images [B, C, H, W] -> [B, K]

The checkpoint records the run's settings (the model: an architecture of snn.models or a
factory MODULE:FACTORY, its LIF settings) and the data's shape (classes, channels, size), so
the model is rebuilt without the dataset; only the weights are read (the optimizer and the rest
stay in the file).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Union

import torch
from torch import nn

from kernels import BACKENDS

from .. import checks
from ..neuron import lif_layers
from . import checkpoint, factory
from .checkpoint import CheckpointError
from .config import RUNTIME_FIELDS, Config, ConfigError


class CannotRebuild(CheckpointError):
    """A readable checkpoint whose model cannot be rebuilt here; the message says why (a factory
    that does not import, settings this version does not know, a checkpoint without the data's
    shape) and what to do. Exit code 2, as every CheckpointError."""


def load(path: Union[str, Path], *, backend: str = "auto", device: Union[str, torch.device] = "cpu") -> nn.Module:
    """The model of an snn.train checkpoint with its trained weights, in eval mode on device.

    path: a run's best.pt or last.pt. backend: the LIF backend every snn.LIF of the model uses
    (one of kernels.BACKENDS; the one it trained with does not matter). device: where to put it.
    -> the network: forward(x, T) with x [B, C, H, W] (or [T, B, C, H, W] event frames) ->
    logits [B, num_classes]; a factory's module is wrapped (snn.train.factory.FactoryModel, the
    module itself is `.net`). Attributes set on it: T (the run's timesteps), classes (the class
    names in label order), config (the run's snn.train.Config).
    Raises CheckpointError for a missing, unreadable or damaged file (naming it), CannotRebuild
    when the model cannot be rebuilt (why, in one line), ValueError for a bad backend.
    """
    checks.choice("backend", backend, BACKENDS)
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; give the best.pt or last.pt of a run folder")
    state = checkpoint.load(path, keys=("config", "model"))
    cfg = _config(state["config"], path, backend)
    info = state.get("model_info")
    if info is None:
        raise CannotRebuild(f"cannot rebuild the model of {path}: the checkpoint does not record the data's shape "
                            f"(classes, channels, size), as checkpoints written before snn.load did not; build it with "
                            f"snn.train.prepare.build_model, then load_state_dict(checkpoint.load(path)['model'])")
    from .prepare import build_model  # here: prepare imports the data builders, which only training needs

    shape = SimpleNamespace(num_classes=info["num_classes"], in_channels=info["in_channels"], size=tuple(info["size"]))
    try:
        model = build_model(cfg, shape)
    except ConfigError as e:
        hint = ("; the factory's module must be importable here, as when it trained (PYTHONPATH)"
                if factory.is_factory(cfg.model) else "")
        raise CannotRebuild(f"cannot rebuild the model of {path}: {e}{hint}") from None
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:  # the factory now builds another network than the one trained
        raise CannotRebuild(f"cannot rebuild the model of {path}: its weights do not fit the model {cfg.model} builds "
                            f"now ({str(e).splitlines()[0]}); use the code it was trained with") from None
    for layer in lif_layers(model):
        layer.backend = backend
    model.T, model.classes, model.config = cfg.T, tuple(info["classes"]), cfg
    return model.to(device).eval()


def _config(saved: dict, path: Path, backend: str) -> Config:
    """The run's Config from the identity a checkpoint stores, with backend; CannotRebuild naming
    the fields this version does not know or refuses."""
    known = {f.name for f in dataclasses.fields(Config)} - set(RUNTIME_FIELDS)
    unknown = sorted(set(saved) - known)
    if unknown:
        raise CannotRebuild(f"cannot rebuild the model of {path}: it records settings this version of snn does not "
                            f"know ({', '.join(unknown)}); load it with the version that trained it")
    try:
        return Config(**saved, backend=backend)
    except (TypeError, ValueError) as e:
        raise CannotRebuild(f"cannot rebuild the model of {path}: its settings are refused here ({e})") from None
