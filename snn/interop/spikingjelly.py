"""SpikingJelly models onto `snn.LIF`: `convert(model)` swaps every multi-step LIF / IF neuron of a
SpikingJelly 2.0 model, in place, for an `snn.LIF` with the same equations, so that the model runs
on this project's fused kernels and trains with `snn.im_loss` and `snn.ESG`.

SpikingJelly (spikingjelly.activation_based, version 2.0) is an optional dependency:
`pip install 'imloss-snn[spikingjelly]'`. Its neurons, for input X(t) and post-reset V(t-1):

    LIFNode, decay_input=True    H(t) = V(t-1) + (X(t) - (V(t-1) - V_reset)) / tau
    LIFNode, decay_input=False   H(t) = V(t-1) - (V(t-1) - V_reset) / tau + X(t)
    ParametricLIFNode            the same with 1 / tau = sigmoid(w)
    IFNode                       H(t) = V(t-1) + X(t)
    spike S(t) = 1[H(t) >= v_threshold];  V(t) = H(t) (1 - S(t)) + V_reset S(t)   (hard reset)
                                          V(t) = H(t) - v_threshold S(t)          (v_reset=None, soft)
    V(0) = V_reset (0 for the soft reset).

With V_reset = 0 (the only hard reset accepted) this is `kernels.lif_scan` with u(t) = H(t):

    decay = 1 - 1/tau (LIF), 1 - sigmoid(w) (PLIF), 1 (IF);   vth = v_threshold
    input  X(t) / tau (LIF with decay_input=True; ConvertedLIF's x * input_gain), X(t) otherwise
    reset  'hard' for v_reset=0.0, 'soft' for v_reset=None;   detach_reset as given

so a converted layer's `u_mean` is the mean of SpikingJelly's pre-reset H, in its units, which is
what IM-Loss restricts (SpikingJelly's own `v_seq` is post-reset). The surrogates that have an
exact equivalent (d/dx of SpikingJelly's primitive function g(x), x = H - v_threshold):

    surrogate.Sigmoid(alpha)              g = sigmoid(alpha x) = 0.5 tanh(alpha x / 2) + 0.5
                                          -> 'tanh' with alpha / 2
    surrogate.Rect(alpha)                 alpha on |x| < 0.5 / alpha  -> 'rect' with 1 / alpha
    surrogate.PiecewiseLeakyReLU(w, c=0)  1 / (2w) on |x| < w        -> 'rect' with 2 w

SpikingJelly's multi-step `layer.Dropout` / `layer.Dropout2d` keep their mask until reset_net;
they become a `SequenceDropout`, which draws the same mask once per call.

Everything else is refused before the model is touched (`ConversionError`, naming each module's
path and setting); nothing is converted approximately. Refused: any other neuron or stateful
SpikingJelly module (including subclasses of the three nodes, which may change their equations),
v_reset other than 0.0 and None, step_mode='s', a learnable tau (ParametricLIFNode whose w
requires grad), store_v_seq=True (its consumers read a v_seq the converted layer does not
produce), an explicit neuron precision, forward hooks on a node (e.g. a SpikingJelly monitor), a
node inside a memopt checkpoint wrapper (which calls the node's functional forward itself), any
other surrogate or one with spiking=False, settings `kernels.LIFParams` rejects, and a model
already wrapped by torch.compile (convert first, then compile).

State: SpikingJelly nodes keep V between calls until `functional.reset_net`; `snn.LIF` starts
every call from u = 0 over the whole [T, B, ...] input. A converted model therefore needs no
`reset_net` (calling it is harmless) and computes what the original computes with `reset_net`
before every forward. Feeding a converted model one time step per call (T = 1, stepping through
a sequence) restarts the membrane at every call: it is not the original's behaviour; pass the
whole sequence in one call.

Numerics: the mapping is exact in real arithmetic and spikes are bit-exact for IF and for
decay_input=False with tau = 2, where both sides round the same products; otherwise SpikingJelly
evaluates V + (X - V) / tau where lif_scan evaluates decay * V + X * gain, so membranes differ by
fp32 rounding (an ulp or two) and a spike can differ only where H lies within that of threshold.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kernels import BACKENDS, LIFParams

from ..neuron import LIF

INSTALL_HINT = "pip install 'imloss-snn[spikingjelly]' (spikingjelly==2.0.0)"
SUPPORTED_NODES = ("LIFNode", "IFNode", "ParametricLIFNode")


class ConversionError(ValueError):
    """A SpikingJelly model has settings with no exact `snn.LIF` equivalent (one line per module)."""


class ConvertedLIF(LIF):
    """The `snn.LIF` that replaces a SpikingJelly node: it scales its input by input_gain before
    the scan, and, like SpikingJelly's multi-step nodes, takes any `[T, B, ...]` shape.

    input_gain: 1/tau for decay_input=True (sigmoid(w) for ParametricLIFNode), whose charge
    H = V + (X - V) / tau leaks the input too, while `kernels.lif_scan` has no input scale; 1.0
    otherwise. Other arguments as `snn.LIF`.
    forward: x [T, B, ...] with any number of dimensions >= 2 (ValueError otherwise) -> spikes of
    x's shape. An input `snn.LIF` takes as it is ([T, B, C, H, W], [T, B, F], or the rank of
    sample_dims) goes through unchanged; any other is scanned as [T, B, -1] (the scan is per
    neuron, so nothing changes) and reshaped back. u_mean is the mean of the pre-reset membrane H."""

    def __init__(self, input_gain: float = 1.0, **lif_kwargs):
        super().__init__(**lif_kwargs)
        if isinstance(input_gain, bool) or not isinstance(input_gain, (int, float)) or not 0 < input_gain <= 1:
            raise ValueError(f"input_gain must be a real number in (0, 1] (1/tau of decay_input=True, else 1), "
                             f"got {input_gain!r}")
        self.input_gain = float(input_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            raise ValueError(f"a converted SpikingJelly layer takes a time-major tensor [T, B, ...] with at least 2 "
                             f"dimensions (the whole sequence in one call), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        if self.input_gain != 1.0:
            x = x * self.input_gain
        if self.sample_dims is not None or x.dim() in (3, 5):
            return super().forward(x)
        return super().forward(x.reshape(x.shape[0], x.shape[1], -1)).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"input_gain={self.input_gain:g}, " + super().extra_repr()


@dataclass(frozen=True)
class Mapping:
    """The `snn.LIF` settings equivalent to one SpikingJelly node (input_gain 1.0: no scaling)."""

    params: LIFParams
    input_gain: float = 1.0

    def build(self, *, im: bool, backend: str) -> LIF:
        kwargs = dict(dataclasses.asdict(self.params), im=im, backend=backend)
        return ConvertedLIF(self.input_gain, **kwargs)


class SequenceDropout(nn.Module):
    """SpikingJelly's multi-step `layer.Dropout` / `layer.Dropout2d` without state: one mask per
    call, drawn as SpikingJelly draws it (`F.dropout` / `F.dropout2d` of ones shaped like one time
    step, the same random numbers) and shared by the call's T steps. SpikingJelly keeps its mask
    until `reset_net`; a converted model has no reset_net, and a kept mask would then never change.

    p: the drop probability; channels: drop whole channels (Dropout2d). forward: x [T, B, ...] ->
    x * mask in training, x in eval."""

    def __init__(self, p: float, channels: bool = False):
        super().__init__()
        self.p, self.channels = float(p), channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        drop = F.dropout2d if self.channels else F.dropout
        return x * drop(torch.ones_like(x[0]), self.p, training=True)

    def extra_repr(self) -> str:
        return f"p={self.p}" + (", channels=True" if self.channels else "")


@dataclass(frozen=True)
class DropoutMapping:
    """The stateless equivalent of one SpikingJelly multi-step dropout layer."""

    p: float
    channels: bool

    def build(self, *, im: bool, backend: str) -> nn.Module:
        return SequenceDropout(self.p, self.channels)


def dropout_mapping_of(module: nn.Module) -> DropoutMapping:
    """The `SequenceDropout` settings of a SpikingJelly layer.Dropout / Dropout2d.

    Raises ConversionError for step_mode='s' (its mask is meant to live across calls)."""
    from spikingjelly.activation_based import layer

    if module.step_mode != "m":
        raise ConversionError(f"step_mode={module.step_mode!r} (a single-step dropout keeps its mask across the calls "
                              f"of one sequence; use step_mode='m')")
    hooks = _hooks(module)
    if hooks:
        raise ConversionError(f"{' and '.join(hooks)} registered would be lost")
    return DropoutMapping(module.p, type(module) is layer.Dropout2d)


def _sj():
    try:
        from spikingjelly.activation_based import base, neuron, surrogate
    except ImportError as error:
        raise ImportError(f"snn.interop.spikingjelly needs SpikingJelly 2.0: {INSTALL_HINT}") from error
    return base, neuron, surrogate


def _positive_real(value) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            and value > 0)


def surrogate_of(fn) -> tuple[str, float]:
    """(surrogate, alpha) of `kernels.lif_scan` equal to SpikingJelly surrogate fn.

    Raises ConversionError naming the surrogate when it has no exact equivalent."""
    _, _, surrogate = _sj()
    name = type(fn).__name__
    if not isinstance(fn, surrogate.SurrogateFunctionBase):
        raise ConversionError(f"surrogate_function {fn!r} is not a SpikingJelly surrogate")
    if not fn.spiking:
        raise ConversionError(f"surrogate_function {name}(spiking=False) emits its primitive function, not spikes")
    accepted = "surrogate.Sigmoid, surrogate.Rect, surrogate.PiecewiseLeakyReLU with c=0"
    params = dict(fn._sg_params)
    if not all(_positive_real(v) or (k == "c") for k, v in params.items()):
        raise ConversionError(f"surrogate_function {name}({params}) needs positive real parameters "
                              f"(a tensor or learnable parameter has no snn.LIF equivalent)")
    if type(fn) is surrogate.Sigmoid:  # sigmoid(a x) = 0.5 tanh(a x / 2) + 0.5
        return "tanh", fn.alpha / 2
    if type(fn) is surrogate.Rect:  # height a on |x| < 0.5 / a = rect of width 1 / a
        width = 1 / fn.alpha
        if float(torch.tensor(1 / width, dtype=torch.float32)) != float(torch.tensor(fn.alpha, dtype=torch.float32)):
            raise ConversionError(f"surrogate_function Rect(alpha={fn.alpha}): 1 / (1 / alpha) does not round "
                                  f"back to alpha in fp32, so the rect height would differ")
        return "rect", width
    if type(fn) is surrogate.PiecewiseLeakyReLU:
        if fn.c != 0:
            raise ConversionError(f"surrogate_function PiecewiseLeakyReLU(w={fn.w}, c={fn.c}): a nonzero slope "
                                  f"outside the window has no snn.LIF equivalent (c=0 maps to 'rect')")
        return "rect", 2 * fn.w
    raise ConversionError(f"surrogate_function {name} has no exact snn.LIF surrogate (accepted: {accepted})")


def _hooks(node: nn.Module) -> list[str]:
    kinds = {"forward hooks": node._forward_hooks, "forward pre-hooks": node._forward_pre_hooks,
             "backward hooks": node._backward_hooks}
    return [kind for kind, hooks in kinds.items() if hooks]


def mapping_of(node: nn.Module) -> Mapping:
    """The exact `snn.LIF` settings of one SpikingJelly node (module docstring for the table).

    Raises ConversionError listing every setting of node with no exact equivalent."""
    _, neuron, _ = _sj()
    kind = type(node)
    if kind not in (neuron.LIFNode, neuron.IFNode, neuron.ParametricLIFNode):
        raise ConversionError(f"{kind.__module__}.{kind.__qualname__} has no snn.LIF equivalent (converted: exactly "
                              f"neuron.{', neuron.'.join(SUPPORTED_NODES)}; a subclass may change their equations)")
    problems = []
    if node.step_mode != "m":
        problems.append(f"step_mode={node.step_mode!r} (a single-step node is driven one time step per call "
                        f"and keeps its state; snn.LIF scans a whole [T, B, ...] call: use step_mode='m')")
    if node.v_reset is not None and node.v_reset != 0.0:
        problems.append(f"v_reset={node.v_reset} (accepted: 0.0, the hard reset, or None, the soft reset)")
    if node.store_v_seq:
        problems.append("store_v_seq=True (its consumers read node.v_seq, which snn.LIF does not produce)")
    if node._neuron_precision is not None:
        problems.append(f"neuron precision {node._neuron_precision} (snn.LIF computes in fp32)")
    hooks = _hooks(node)
    if hooks:
        problems.append(f"{' and '.join(hooks)} registered (e.g. a SpikingJelly monitor) would be lost")
    if kind is neuron.ParametricLIFNode and node.w.requires_grad:
        problems.append("a learnable tau (ParametricLIFNode.w requires grad; freeze it with w.requires_grad_(False) "
                        "to convert its current value)")
    try:
        surrogate, alpha = surrogate_of(node.surrogate_function)
    except ConversionError as error:
        problems.append(str(error))
        surrogate, alpha = "tanh", 1.0
    if problems:
        raise ConversionError("; ".join(problems))
    if kind is neuron.IFNode:
        leak, decay_input = 0.0, False
    elif kind is neuron.LIFNode:
        leak, decay_input = 1.0 / node.tau, node.decay_input
    else:  # frozen PLIF: 1 / tau = sigmoid(w), evaluated in fp32 as SpikingJelly does
        leak, decay_input = float(node.w.detach().float().sigmoid()), node.decay_input
    try:
        params = LIFParams(vth=node.v_threshold, decay=1.0 - leak, surrogate=surrogate, alpha=alpha,
                           reset="soft" if node.v_reset is None else "hard", detach_reset=node.detach_reset)
    except (TypeError, ValueError) as error:
        raise ConversionError(f"no snn.LIF accepts these settings: {error}") from None
    return Mapping(params, leak if decay_input else 1.0)


def _checkpoint_wrapper(path: str, modules: dict[str, nn.Module]) -> str | None:
    """The path of an ancestor of path that is a checkpoint wrapper (memopt), if any."""
    parts = path.split(".")
    for i in range(len(parts)):
        ancestor = ".".join(parts[:i])
        if hasattr(modules.get(ancestor), "_checkpoint_wrapped_module"):
            return ancestor or "<model>"
    return None


def plan(model: nn.Module) -> dict[nn.Module, Mapping | DropoutMapping]:
    """Every stateful SpikingJelly module of model with its replacement's settings (a `Mapping`
    for a neuron, a `DropoutMapping` for a multi-step layer.Dropout / Dropout2d), model untouched.

    Raises ConversionError with one line per refused module (its path and the settings), or when
    model has no SpikingJelly neuron; TypeError when model is not an nn.Module."""
    base, _, _ = _sj()
    from spikingjelly.activation_based import layer

    dropouts = (layer.Dropout, layer.Dropout2d)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, torch._dynamo.eval_frame.OptimizedModule):
        raise ConversionError("model is wrapped by torch.compile: convert the original module, then compile it")
    modules = dict(model.named_modules())
    mappings, refused = {}, []
    for path, module in modules.items():
        if not isinstance(module, base.MemoryModule):
            continue
        where = path or "<model>"
        wrapper = _checkpoint_wrapper(path, modules)
        try:
            if wrapper is not None:
                raise ConversionError(f"inside the checkpoint wrapper {wrapper!r}, whose forward calls the "
                                      f"node's functional forward itself (convert before checkpointing)")
            mappings[module] = (dropout_mapping_of(module) if type(module) in dropouts else mapping_of(module))
        except ConversionError as error:
            refused.append(f"  {where} ({type(module).__name__}): {error}")
    if refused:
        raise ConversionError("cannot convert exactly; nothing was changed:\n" + "\n".join(refused))
    if not any(isinstance(m, Mapping) for m in mappings.values()):
        raise ConversionError(f"model ({type(model).__name__}) has no SpikingJelly neuron to convert "
                              f"(looked for neuron.{', neuron.'.join(SUPPORTED_NODES)})")
    return mappings


def convert(model: nn.Module, *, backend: str = "auto", im: bool = True) -> nn.Module:
    """Replace every SpikingJelly LIFNode / IFNode / ParametricLIFNode (frozen w) of model, in
    place, by a `ConvertedLIF` (an `snn.LIF`) with the same equations (see the module docstring),
    and every multi-step layer.Dropout / Dropout2d by a stateless `SequenceDropout`, keeping every
    other module, weight and the train/eval mode; returns model, ready for `snn.im_loss(model)`
    and `snn.ESG(model, ...)`.

    backend: the LIFs' `kernels.lif_scan` backend, one of kernels.BACKENDS. im: each converted
    LIF's `im` flag (set `.im = False` afterwards on layers IM-Loss should leave alone, e.g. inside
    residual branches). A node registered at several paths becomes one LIF at all of them.
    The converted model is stateless per call: input [T, B, ...] with the whole sequence (any
    shape a SpikingJelly multi-step node takes).

    Raises ConversionError (a ValueError) before changing anything when any stateful module has
    no exact equivalent, with its path and setting; ValueError / TypeError for backend or im;
    ImportError when SpikingJelly is not installed.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if not isinstance(im, bool):
        raise TypeError(f"im must be a bool, got {im!r}")
    mappings = plan(model)
    replacements = {old: m.build(im=im, backend=backend).train(old.training) for old, m in mappings.items()}
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):  # every name, also a module registered twice
            if child in replacements:
                setattr(parent, name, replacements[child])
    from spikingjelly.activation_based import functional  # reset_net caches the modules it resets

    functional.invalidate_reset_cache(model)
    return model


__all__ = ["convert", "plan", "mapping_of", "surrogate_of", "dropout_mapping_of", "ConversionError", "ConvertedLIF",
           "SequenceDropout", "Mapping", "DropoutMapping"]
