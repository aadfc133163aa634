"""Your own network in the training engine: `--model MODULE:FACTORY` (Config(model="MODULE:FACTORY")).

FACTORY is an attribute path in the importable module MODULE (`mypkg.nets:make`,
`mypkg.nets:Zoo.small`); called with the keywords of FACTORY_KWARGS that its signature names
(all of them when it takes **kwargs), it returns an nn.Module, which trains like the paper's
architectures: IM-Loss on its `snn.LIF` layers (a converted SpikingJelly model's included),
ESG / Dspike on them, checkpoints, resume, signals, DDP.

Its input convention is one of two:
- `model(x, T=T)` with x [B, C, H, W] (event data: [T, B, 2, H, W]) -> logits [B, num_classes],
  like `snn.models.SpikingNet`: when the module's forward has a parameter named T;
- time-major `model(x_seq)` with x_seq [T, B, C, H, W] -> [T, B, num_classes] (averaged over T
  here) or [B, num_classes]: otherwise (a converted SpikingJelly model, an nn.Sequential).
A module attribute `time_major` (bool), and above it Config.time_major (`--time-major` /
`--no-time-major`), states it explicitly.

The module is wrapped in `FactoryModel` (its parameters under the prefix `net.`), which always
takes [B, C, H, W] and T, so that the engine, `snn.load` and the user call it one way.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Optional

import torch
from torch import nn

from ..esg import ESG_ALPHA
from ..layers import as_sequence
from ..neuron import lif_layers

# What a factory may ask for by naming it in its signature: the data's shape and the run's LIF settings.
FACTORY_KWARGS = ("num_classes", "in_channels", "input_size", "T", "vth", "decay", "surrogate", "alpha",
                  "detach_reset", "backend")
_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def is_factory(model: str) -> bool:
    """Whether a Config.model names a factory (MODULE:FACTORY) rather than one of snn.models.MODELS."""
    return isinstance(model, str) and ":" in model


def check_spec(spec: str) -> str:
    """spec itself when it has the form MODULE:FACTORY (dotted names), else ValueError; nothing is imported."""
    if not _SPEC.match(spec):
        raise ValueError(f"model must be a name of snn.models or MODULE:FACTORY (e.g. mypkg.nets:make), got {spec!r}")
    return spec


class FactoryError(ValueError):
    """A factory that cannot be used: it does not import, is not callable, fails, or returns no
    nn.Module. The message names the factory and the reason."""


def resolve(spec: str):
    """The callable that MODULE:FACTORY names; FactoryError saying why not (import failure, missing attribute)."""
    module_name, _, path = check_spec(spec).partition(":")
    try:
        obj = importlib.import_module(module_name)
    except Exception as e:  # any error while importing the user's module: its own, or ModuleNotFoundError
        missing = isinstance(e, ModuleNotFoundError) and (e.name == module_name
                                                            or module_name.startswith(f"{e.name}."))
        advice = ("put it on PYTHONPATH or install its package" if missing
                  else "the module was found; fix the error its import raises")
        raise FactoryError(f"model factory {spec}: module {module_name!r} does not import ({type(e).__name__}: "
                           f"{_first_line(e)}); {advice}") from None
    for part in path.split("."):
        if not hasattr(obj, part):
            raise FactoryError(f"model factory {spec}: {module_name} has no attribute {path!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise FactoryError(f"model factory {spec}: {path} is a {type(obj).__name__}, not a callable")
    return obj


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def call(factory, spec: str, settings: dict) -> nn.Module:
    """factory(**the entries of settings its signature names) -> the module it returns.

    settings: FACTORY_KWARGS -> values. Raises FactoryError when the call fails or returns anything
    but an nn.Module."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin without a signature: call it with nothing
        params = {}
    takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in settings.items() if takes_all or k in params}
    try:
        module = factory(**kwargs)
    except Exception as e:  # the user's code failed: report it in one line, with what it was called with
        raise FactoryError(f"model factory {spec}({', '.join(kwargs)}) failed: {type(e).__name__}: "
                           f"{_first_line(e)}") from None
    if not isinstance(module, nn.Module):
        raise FactoryError(f"model factory {spec} returned a {type(module).__name__}, not a torch.nn.Module")
    return module


def takes_T(module: nn.Module) -> bool:
    """Whether module's forward has a parameter named T (the [B, C, H, W] + T convention)."""
    try:
        return "T" in inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False


class FactoryModel(nn.Module):
    """A factory's module behind the engine's calling convention: forward(x, T=None) -> logits [B, K].

    x: [B, C, H, W] (T required: direct encoding, the image at every step) or [T, B, C, H, W].
    time_major: call net on the [T, B, ...] sequence (and average a [T, B, K] output over T);
    else net(x, T=T). Raises ValueError when net's output is not [B, K] (or [T, B, K] time-major)."""

    def __init__(self, net: nn.Module, time_major: bool, spec: str):
        super().__init__()
        self.net, self.time_major, self.spec = net, time_major, spec

    def forward(self, x: torch.Tensor, T: Optional[int] = None) -> torch.Tensor:
        if self.time_major:
            seq = as_sequence(x, T)
            out = self.net(seq)
            if isinstance(out, torch.Tensor) and out.dim() == 3 and out.shape[0] == seq.shape[0]:
                out = out.mean(0)  # [T, B, K]: the rate-coded logits, as snn.models average them
        else:
            out = self.net(x, T=T)
        batch = x.shape[1] if x.dim() == 5 else x.shape[0]
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != batch:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            layout = "[T, B, K] or [B, K] for a [T, B, ...] input" if self.time_major else "[B, K]"
            raise ValueError(f"model {self.spec} returned {shape} for an input of shape {tuple(x.shape)}; "
                             f"expected logits {layout}")
        return out

    def extra_repr(self) -> str:
        return f"spec={self.spec!r}, time_major={self.time_major}"


def build(spec: str, settings: dict, time_major: Optional[bool] = None) -> FactoryModel:
    """The FactoryModel of spec: resolve, call with settings (see call), and decide time_major
    (given; else the module's `time_major` attribute; else whether its forward lacks T).
    Every LIF's backend is set to settings['backend'] (the run's --backend applies to them all).
    Raises FactoryError."""
    net = call(resolve(spec), spec, settings)
    if time_major is None:
        stated = getattr(net, "time_major", None)
        time_major = stated if isinstance(stated, bool) else not takes_T(net)
    for layer in lif_layers(net):
        layer.backend = settings["backend"]
    return FactoryModel(net, time_major, spec)


def check_trainable(model: nn.Module, spec: str, im_lambda: float, schedule: Optional[str]) -> None:
    """FactoryError when the run asks for something the model's snn.LIF layers cannot give:
    IM-Loss (im_lambda > 0) without an IM-restricted LIF, ESG without a LIF whose surrogate it
    schedules, Dspike without a Dspike LIF."""
    layers = lif_layers(model)
    if im_lambda > 0 and not any(m.im for m in layers):
        what = "no snn.LIF layer" if not layers else "no snn.LIF layer with im=True"
        raise FactoryError(f"model {spec} has {what}, so IM-Loss (--im-lambda {im_lambda:g}) has nothing to restrict; "
                           f"build it with snn.LIF (or convert a SpikingJelly model with "
                           f"snn.interop.spikingjelly.convert), or pass --im-lambda 0")
    if schedule == "esg":
        unruled = sorted({m.surrogate for m in layers} - set(ESG_ALPHA))
        if not layers or unruled:
            why = "no snn.LIF layer" if not layers else f"snn.LIF layers with surrogate(s) {unruled}"
            raise FactoryError(f"model {spec} has {why}, which ESG cannot schedule (rules: {', '.join(ESG_ALPHA)}); "
                               f"pass a fixed surrogate, e.g. --surrogate tanh:4")
    if schedule == "dspike" and not any(m.surrogate == "dspike" for m in layers):
        raise FactoryError(f"model {spec} has no snn.LIF with the 'dspike' surrogate for --surrogate dspike to "
                           f"tune; build its LIFs with surrogate=surrogate (a factory argument), or pick another "
                           f"--surrogate")
