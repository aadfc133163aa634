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
    surrogate.ATan(alpha)                 arctan(pi/2 alpha x) / pi + 1/2   -> 'atan' with alpha

A ParametricLIFNode keeps its parameter w, under the same name, in the converted layer (its
state_dict loads strictly both ways), trainable when it was: the layer passes lif_scan the
decay 1 - sigmoid(w) as a tensor, whose gradient the fused backward computes, and scales its
input by sigmoid(w) (decay_input=True), so w receives SpikingJelly's gradient.

SpikingJelly's multi-step `layer.Dropout` / `layer.Dropout2d` keep their mask until reset_net;
they become a `SequenceDropout`, which draws the same mask once per call.

Everything else is refused before the model is touched (`ConversionError`, naming each module's
path and setting); nothing is converted approximately. Refused: any other neuron or stateful
SpikingJelly module (including subclasses of the three nodes, which may change their equations),
v_reset other than 0.0 and None, step_mode='s' at conversion (convert in multi-step mode, then
switch with set_step_mode), a module registered at several paths, store_v_seq=True (its
consumers read a v_seq the converted layer does not produce), an explicit neuron precision,
forward hooks on a node (e.g. a SpikingJelly monitor), a node inside a memopt checkpoint wrapper
(which calls the node's functional forward itself), any other surrogate or one with
spiking=False, settings `kernels.LIFParams` rejects, and a model already wrapped by
torch.compile (convert first, then compile).

State: SpikingJelly nodes keep V between calls until `functional.reset_net`. A converted layer in
multi-step mode (step_mode='m', as converted) starts every call from V = 0 over the whole
[T, B, ...] input, so a converted model needs no `reset_net` and computes what the original
computes with `reset_net` before every forward. After `functional.set_step_mode(model, 's')` each
converted layer takes one [B, ...] step per call and keeps its membrane and spikes (with their
autograd graph) until `reset_net`: equal to the original stepping, gradients included. One node
used twice within a forward carries its membrane from the first use into the second in
SpikingJelly: a module registered at two paths is refused by convert, and a second multi-step
call of one converted layer within one forward of the model raises (single-step mode carries
the state exactly). Input ranks follow `snn.LIF`: [T, B, C, H, W] or [T, B, F] ([B, C, H, W] or
[B, F] per step), or the rank recorded from `convert(model, example=x)`; a batch is never taken
for time.

Numerics: the mapping is exact in real arithmetic and spikes are bit-exact for IF and for
decay_input=False with tau = 2, where both sides round the same products; otherwise SpikingJelly
evaluates V + (X - V) / tau where lif_scan evaluates decay * V + X * gain, so membranes differ by
fp32 rounding (an ulp or two) and a spike can differ only where H lies within that of threshold.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
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


try:  # a SpikingJelly MemoryModule, so that functional.reset_net / set_step_mode / detach_net treat the
    # converted layers as their own (resetting them, checking step_mode) without a warning per layer
    from spikingjelly.activation_based.base import MemoryModule as _StatefulBase
except ImportError:  # without SpikingJelly there is nothing to convert; the classes still import
    _StatefulBase = nn.Module

STEP_MODES = ("m", "s")


def _check_step_mode(value) -> str:
    if value not in STEP_MODES:
        raise ValueError(f"step_mode must be 'm' (a whole [T, B, ...] sequence per call) or 's' (one time step "
                         f"[B, ...] per call, state kept until functional.reset_net), got {value!r}")
    return value


class ForwardScope:
    """The forwards of one converted model, so that its layers can tell a second call of one
    layer within one forward (SpikingJelly carries that node's membrane from the first call into
    the second; a multi-step converted layer would restart it, so the call is refused).

    convert registers `enter` as the model's forward pre-hook and `leave` as its forward hook
    (always called, also when the forward raises); the layers hold this object. Inside
    torch.compile'd code nothing is counted (a traced counter would recompile every call)."""

    def __init__(self):
        self.forward = 0  # how many forwards of the model have started
        self.active = False

    def enter(self, module, args) -> None:
        if not torch.compiler.is_compiling():
            self.forward += 1
            self.active = True

    def leave(self, module, args, output) -> None:
        if not torch.compiler.is_compiling():
            self.active = False


class ResetRule(str):
    """A layer's reset rule ('hard' or 'soft': a str, equal to it everywhere a setting is read)
    that, called, resets the layer's state. SpikingJelly's functional.reset_net calls
    `module.reset()` on every module that has one, and `snn.LIF` already names its reset rule
    `reset`: this lets the one attribute be both. It holds its layer weakly, so a stored copy
    never keeps a layer alive."""

    def __new__(cls, rule: str, layer: nn.Module):
        obj = super().__new__(cls, rule)
        obj._layer = weakref.ref(layer)
        return obj

    def __call__(self) -> None:
        layer = self._layer()
        if layer is not None:
            layer.reset_state()

    def __reduce__(self):  # a copy or pickle is the plain setting
        return str, (str(self),)


class ConvertedLIF(LIF, _StatefulBase):
    """The `snn.LIF` that replaces a SpikingJelly node: it scales its input by input_gain before
    the scan and, like the node, runs in SpikingJelly's two step modes.

    input_gain: 1/tau for decay_input=True, whose charge H = V + (X - V) / tau leaks the input
    too, while `kernels.lif_scan` has no input scale; 1.0 otherwise. step_mode: 'm' (default) or
    's', also set by `functional.set_step_mode` (ValueError for any other value).
    w: None, or a ParametricLIFNode's 0-d parameter (1/tau = sigmoid(w), Fang et al. 2021),
    registered here as `w` (trainable when it requires grad): the decay is then 1 - sigmoid(w),
    recomputed every forward, and with decay_input the input gain is sigmoid(w) (input_gain must
    then be left at 1.0). Other arguments as `snn.LIF`; `decay` reads the current 1 - sigmoid(w)
    and cannot be assigned (assign w).

    forward, step_mode='m': x [T, B, *sample] -> spikes of x's shape, the whole sequence from
      V = 0 (no state between calls). step_mode='s': x [B, *sample], one time step -> spikes
      [B, *sample]; the membrane and spikes (with their autograd graph, so backward is exact
      BPTT) are kept until `reset()` (what `functional.reset_net` calls), exactly as the node
      steps. The input rank follows `snn.LIF` (`LIF._check_input`): *sample is [C, H, W] or [F]
      unless sample_dims is set (`convert(model, example=x)` sets it from one example call).
    Raises ValueError for a rank the layout does not allow, for a single-step input whose shape
    differs from the previous step's, and RuntimeError for a multi-step call while single-step
    state is held, or a second multi-step call of this layer within one forward of the
    converted model (see ForwardScope).
    u_mean is the mean of the pre-reset membrane H of the call (one step in 's' mode)."""

    def __init__(self, input_gain: float = 1.0, step_mode: str = "m", w: torch.Tensor | None = None,
                 decay_input: bool = False, **lif_kwargs):
        if w is not None:
            if not isinstance(w, torch.Tensor) or w.shape != () or not w.dtype.is_floating_point:
                raise TypeError(f"w must be a 0-d floating tensor (a ParametricLIFNode's w), got {w!r}")
            if input_gain != 1.0:
                raise ValueError("with w, the input gain is sigmoid(w) (decay_input=True): leave input_gain at 1.0")
            lif_kwargs["decay"] = float(1 - w.detach().sigmoid())  # validated as a setting below
        super().__init__(**lif_kwargs)
        if isinstance(input_gain, bool) or not isinstance(input_gain, (int, float)) or not 0 < input_gain <= 1:
            raise ValueError(f"input_gain must be a real number in (0, 1] (1/tau of decay_input=True, else 1), "
                             f"got {input_gain!r}")
        self.input_gain = float(input_gain)
        if w is None:
            self.register_parameter("w", None)
        else:
            # the node's own Parameter when given one: an optimizer built before convert still trains it
            self.w = w if isinstance(w, nn.Parameter) else nn.Parameter(w.detach().clone(),
                                                                         requires_grad=w.requires_grad)
        self.decay_input = bool(decay_input) and w is not None
        self._step_mode = _check_step_mode(step_mode)
        self.where = "<model>"  # the path in the converted model, for messages
        self.scope: ForwardScope | None = None
        self._scope_forward = 0  # the scope's forward that last called this layer
        self._u_prev: torch.Tensor | None = None  # single-step state: H(t-1) and S(t-1), with their graph
        self._o_prev: torch.Tensor | None = None

    @property
    def decay(self) -> float:
        """The membrane decay: the setting, or 1 - sigmoid(w) now for a converted ParametricLIFNode."""
        return self._decay if self.w is None else float(1 - self.w.detach().sigmoid())

    @decay.setter
    def decay(self, value: float) -> None:
        if self.w is not None:
            raise AttributeError(f"converted layer {self.where!r}: its decay is 1 - sigmoid(w) (a ParametricLIFNode); "
                                 f"assign w instead")
        LIF.decay.fset(self, value)

    def _leak(self) -> float | torch.Tensor:
        return self._decay if self.w is None else 1 - self.w.sigmoid()

    def _gain(self, x: torch.Tensor) -> torch.Tensor:
        """x times the input gain: sigmoid(w) for a ParametricLIFNode with decay_input, else input_gain."""
        if self.decay_input:
            return x * self.w.sigmoid()
        return x * self.input_gain if self.input_gain != 1.0 else x

    @property
    def step_mode(self) -> str:
        return self._step_mode

    @step_mode.setter
    def step_mode(self, value: str) -> None:
        self._step_mode = _check_step_mode(value)

    def supported_step_mode(self) -> tuple[str, ...]:
        return STEP_MODES

    @property
    def reset(self) -> "ResetRule":
        """The reset rule, 'hard' or 'soft' as in `snn.LIF`; calling it, as SpikingJelly's
        functional.reset_net does, forgets the single-step state (see ResetRule)."""
        return ResetRule(self._reset, self)

    @reset.setter
    def reset(self, value: str) -> None:
        LIF.reset.fset(self, value)

    def reset_state(self) -> None:
        """Forget the single-step state: the next step starts from V = 0."""
        self._u_prev = self._o_prev = None

    def detach(self) -> None:
        """Cut the single-step state's autograd graph (SpikingJelly's detach_net: truncated BPTT)."""
        if self._u_prev is not None:
            self._u_prev, self._o_prev = self._u_prev.detach(), self._o_prev.detach()

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        for key in ("_u_prev", "_o_prev"):  # a copy does not own the original's graph
            if state.get(key) is not None:
                state[key] = state[key].detach()
        return state

    def _sample_dims_hint(self) -> str:
        return (f"declare it: convert(model, example=x) records every node's sample rank from one call, or set "
                f"this layer's sample_dims = k ({self.where!r}: k sample dimensions after [T, B])")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._step_mode == "s":
            return self._step(x)
        self._check_input(x)
        if self._u_prev is not None:
            raise RuntimeError(f"converted layer {self.where!r} holds the membrane of single-step calls; call "
                               f"functional.reset_net(model) before a multi-step call (a multi-step call scans "
                               f"its whole sequence from V = 0)")
        scope = self.scope
        if scope is not None and scope.active and not torch.compiler.is_compiling():
            if self._scope_forward == scope.forward:
                raise RuntimeError(
                    f"converted layer {self.where!r} is called a second time within one forward: SpikingJelly "
                    f"carries the node's membrane from the first call into the second, which a multi-step "
                    f"converted layer cannot do. Give each use its own node (copy.deepcopy) before convert, or "
                    f"run the model in single-step mode (functional.set_step_mode(model, 's')), where the "
                    f"state carries exactly")
            self._scope_forward = scope.forward
        return super().forward(self._gain(x))

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        """One time step: x'(t) = gain x(t) + decay V(t-1), V(t-1) the post-reset membrane of the
        previous step (H (1 - S) hard, H - vth S soft, S detached with detach_reset), scanned as
        T = 1, whose u(0) is its input: u(0) = H(t)."""
        self._check_input(x, time_major=False)
        x = self._gain(x)
        if self._u_prev is not None:
            if self._u_prev.shape != x.shape:
                raise ValueError(f"converted layer {self.where!r} got a step of shape {tuple(x.shape)} after one of "
                                 f"{tuple(self._u_prev.shape)}: call functional.reset_net(model) between sequences")
            o = self._o_prev.detach() if self.detach_reset else self._o_prev
            v = self._u_prev * (1.0 - o) if self._reset == "hard" else self._u_prev - self.vth * o
            x = x + self._leak() * v
        spikes = super().forward(x.unsqueeze(0))[0]
        self._u_prev, self._o_prev = x, spikes
        return spikes

    def extra_repr(self) -> str:
        gain = "input_gain=sigmoid(w)" if self.decay_input else f"input_gain={self.input_gain:g}"
        return (f"{gain}, " + ("step_mode='s', " if self._step_mode == "s" else "") + super().extra_repr()
                + (", decay=1-sigmoid(w)" if self.w is not None else ""))


@dataclass(frozen=True)
class Mapping:
    """The `snn.LIF` settings equivalent to one SpikingJelly node (input_gain 1.0: no scaling).
    plif: the ParametricLIFNode whose w the layer takes over (decay and gain from sigmoid(w)),
    else None."""

    params: LIFParams
    input_gain: float = 1.0
    plif: nn.Module | None = dataclasses.field(default=None, compare=False, repr=False)

    def build(self, *, im: bool, backend: str, sample_dims: int | None = None) -> LIF:
        kwargs = dict(dataclasses.asdict(self.params), im=im, backend=backend, sample_dims=sample_dims)
        if self.plif is not None:
            return ConvertedLIF(w=self.plif.w, decay_input=self.plif.decay_input, **kwargs)
        return ConvertedLIF(self.input_gain, **kwargs)


class SequenceDropout(_StatefulBase):
    """SpikingJelly's `layer.Dropout` / `layer.Dropout2d` in its two step modes, drawing its mask as
    SpikingJelly draws it (`F.dropout` / `F.dropout2d` of ones shaped like one time step, the same
    random numbers). step_mode='m': one mask per call, shared by the call's T steps (SpikingJelly
    keeps its mask until `reset_net`; a converted multi-step model has no reset_net, and a kept
    mask would then never change). step_mode='s': the mask of the first training step is kept
    until `reset()` (`functional.reset_net`), as SpikingJelly does.

    p: the drop probability; channels: drop whole channels (Dropout2d); step_mode: 'm' or 's'
    (ValueError otherwise). forward: x [T, B, ...] ('m') or [B, ...] ('s') -> x * mask in
    training, x in eval; ValueError for a single-step input whose shape differs from the kept
    mask's."""

    def __init__(self, p: float, channels: bool = False, step_mode: str = "m"):
        super().__init__()
        self.p, self.channels = float(p), channels
        self._step_mode = _check_step_mode(step_mode)
        self._mask: torch.Tensor | None = None

    step_mode = ConvertedLIF.step_mode
    supported_step_mode = ConvertedLIF.supported_step_mode

    def reset(self) -> None:
        """Forget the single-step mask (SpikingJelly's reset_net calls this: the next training
        step draws a new one)."""
        self._mask = None

    def detach(self) -> None:
        """Nothing to detach: the mask has no graph."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        drop = F.dropout2d if self.channels else F.dropout
        if self._step_mode == "m":
            return x * drop(torch.ones_like(x[0]), self.p, training=True)
        if self._mask is None:
            self._mask = drop(torch.ones_like(x), self.p, training=True)
        elif self._mask.shape != x.shape:
            raise ValueError(f"SequenceDropout got a step of shape {tuple(x.shape)} while it keeps a mask of shape "
                             f"{tuple(self._mask.shape)}: call functional.reset_net(model) between sequences")
        return x * self._mask

    def extra_repr(self) -> str:
        return (f"p={self.p}" + (", channels=True" if self.channels else "")
                + (", step_mode='s'" if self._step_mode == "s" else ""))


@dataclass(frozen=True)
class DropoutMapping:
    """The stateless equivalent of one SpikingJelly multi-step dropout layer."""

    p: float
    channels: bool

    def build(self, *, im: bool, backend: str, sample_dims: int | None = None) -> nn.Module:
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
    accepted = "surrogate.Sigmoid, surrogate.ATan, surrogate.Rect, surrogate.PiecewiseLeakyReLU with c=0"
    params = dict(fn._sg_params)
    if not all(_positive_real(v) or (k == "c") for k, v in params.items()):
        raise ConversionError(f"surrogate_function {name}({params}) needs positive real parameters "
                              f"(a tensor or learnable parameter has no snn.LIF equivalent)")
    if type(fn) is surrogate.Sigmoid:  # sigmoid(a x) = 0.5 tanh(a x / 2) + 0.5
        return "tanh", fn.alpha / 2
    if type(fn) is surrogate.ATan:  # the same function: arctan(pi/2 a x) / pi + 1/2
        return "atan", fn.alpha
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
        problems.append(f"step_mode={node.step_mode!r} (convert the model in multi-step mode, "
                        f"functional.set_step_mode(model, 'm'); afterwards set_step_mode(model, 's') steps the "
                        f"converted layers exactly)")
    if node.v_reset is not None and node.v_reset != 0.0:
        problems.append(f"v_reset={node.v_reset} (accepted: 0.0, the hard reset, or None, the soft reset)")
    if node.store_v_seq:
        problems.append("store_v_seq=True (its consumers read node.v_seq, which snn.LIF does not produce)")
    if node._neuron_precision is not None:
        problems.append(f"neuron precision {node._neuron_precision} (snn.LIF computes in fp32)")
    hooks = _hooks(node)
    if hooks:
        problems.append(f"{' and '.join(hooks)} registered (e.g. a SpikingJelly monitor) would be lost")
    if kind is neuron.ParametricLIFNode and (node.w.shape != () or not node.w.dtype.is_floating_point):
        problems.append(f"ParametricLIFNode.w of shape {tuple(node.w.shape)} and dtype {node.w.dtype} (one "
                        f"floating w per layer is converted)")
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
    else:  # PLIF: 1 / tau = sigmoid(w), evaluated in w's dtype as SpikingJelly does; the layer keeps w
        leak, decay_input = float(node.w.detach().sigmoid()), node.decay_input
    try:
        params = LIFParams(vth=node.v_threshold, decay=1.0 - leak, surrogate=surrogate, alpha=alpha,
                           reset="soft" if node.v_reset is None else "hard", detach_reset=node.detach_reset)
    except (TypeError, ValueError) as error:
        raise ConversionError(f"no snn.LIF accepts these settings: {error}") from None
    if kind is neuron.ParametricLIFNode:
        return Mapping(params, plif=node)
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
    every_path: dict[nn.Module, list[str]] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        every_path.setdefault(module, []).append(path or "<model>")
    mappings, refused = {}, []
    for path, module in modules.items():
        if not isinstance(module, base.MemoryModule) or isinstance(module, (ConvertedLIF, SequenceDropout)):
            continue
        where = path or "<model>"
        wrapper = _checkpoint_wrapper(path, modules)
        try:
            if len(every_path[module]) > 1:
                raise ConversionError(
                    f"one module registered at {len(every_path[module])} paths ({', '.join(every_path[module])}): "
                    f"SpikingJelly carries its state from one use into the next within a forward, which a "
                    f"converted multi-step layer cannot; give each use its own module (copy.deepcopy)")
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


def residual_branches(model: nn.Module) -> list[str]:
    """Paths of the SpikingJelly nodes of model that lie inside the residual branch of a block of
    SpikingJelly's model zoo, the layers this project's own ResNets leave out of IM-Loss (im=False,
    `snn.models.resnet`: a branch learns a small perturbation of what the shortcut carries).

        spiking_resnet.BasicBlock   sn1            (sn2 fires on branch + shortcut: the block's output)
        spiking_resnet.Bottleneck   sn1, sn2       (sn3: the output)
        sew_resnet.BasicBlock       sn1, sn2       (the output is the sum; downsample_sn is the shortcut's)
        sew_resnet.Bottleneck       sn1, sn2, sn3
        ms_resnet blocks (MS-ResNet, MaxResNet)  spike1, spike2  (the membrane shortcut has no neuron)

    Only these exact block classes are recognized (a subclass may route its layers differently);
    the stem, head and shortcut neurons are not listed. model: any nn.Module (TypeError
    otherwise); [] when it holds no such block. Raises ImportError without SpikingJelly."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _sj()
    from spikingjelly.activation_based.model import ms_resnet, sew_resnet, spiking_resnet

    inside = {spiking_resnet.BasicBlock: ("sn1",), spiking_resnet.Bottleneck: ("sn1", "sn2"),
              sew_resnet.BasicBlock: ("sn1", "sn2"), sew_resnet.Bottleneck: ("sn1", "sn2", "sn3")}
    for name in ("_MSBlock", "_MaxResNetBlock", "_MaxResNetMaxBlock"):
        if hasattr(ms_resnet, name):
            inside[getattr(ms_resnet, name)] = ("spike1", "spike2")
    paths = []
    for path, block in model.named_modules():
        for name in inside.get(type(block), ()):
            if block._modules.get(name) is not None:
                paths.append(f"{path}.{name}" if path else name)
    return paths


def _sample_ranks(model: nn.Module, example, nodes) -> dict[nn.Module, int]:
    """The sample rank (input dimensions after [T, B]) each node in nodes sees when model runs on
    example once, in eval mode without grad; the model's modes and state are restored after."""
    from spikingjelly.activation_based import functional

    ranks = {}

    def record(node, args, out) -> None:
        if args and isinstance(args[0], torch.Tensor):
            ranks.setdefault(node, args[0].dim() - 2)

    hooks = [node.register_forward_hook(record) for node in nodes]
    modes = {m: m.training for m in model.modules()}
    try:
        functional.reset_net(model)
        model.eval()
        with torch.no_grad():
            model(*example) if isinstance(example, tuple) else model(example)
    except Exception as error:
        raise ValueError(f"convert(example=...): the model's forward on the example failed ({type(error).__name__}: "
                         f"{error}); pass one input the model takes, [T, B, ...] for a multi-step model") from error
    finally:
        for h in hooks:
            h.remove()
        for m, training in modes.items():
            m.training = training
        functional.reset_net(model)
    return ranks


def convert(model: nn.Module, *, backend: str = "auto", im: bool = True, example=None) -> nn.Module:
    """Replace every SpikingJelly LIFNode / IFNode / ParametricLIFNode (its w kept, trainable) of model, in
    place, by a `ConvertedLIF` (an `snn.LIF`) with the same equations (see the module docstring),
    and every multi-step layer.Dropout / Dropout2d by a `SequenceDropout`, keeping every other
    module, weight and the train/eval mode; returns model, ready for `snn.im_loss(model)` and
    `snn.ESG(model, ...)`. A model that is itself one node cannot be replaced in place: the new
    layer is returned (the node is left as it was).

    backend: the LIFs' `kernels.lif_scan` backend, one of kernels.BACKENDS. im: True gives every
    converted LIF im=True except those inside the residual branches of SpikingJelly's zoo ResNets
    (`residual_branches`), as this project's ResNets do; False gives all im=False.
    example: None, or one input of model ([T, B, ...], a tuple for several arguments): convert
    then runs model once on it (eval mode, no grad, state reset after) and gives each converted
    layer the sample rank its node saw as `sample_dims`, which layouts other than [T, B, C, H, W]
    and [T, B, F] need (e.g. [T, B, C, N] in a Spikformer); without it those layers refuse such
    inputs rather than guess which dimension is time.

    The converted model computes, per call, what the original computes with reset_net before
    the call: multi-step ('m'), the whole [T, B, ...] sequence in one call; after
    `functional.set_step_mode(model, 's')`, one [B, ...] step per call with state kept until
    `functional.reset_net(model)`, equal to SpikingJelly step by step (gradients included).

    Raises ConversionError (a ValueError) before changing anything when any stateful module has
    no exact equivalent (also one module registered at several paths), with its path and
    setting; ValueError for a bad backend or an example the model's forward fails on;
    TypeError for im; ImportError when SpikingJelly is not installed.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if not isinstance(im, bool):
        raise TypeError(f"im must be a bool, got {im!r}")
    mappings = plan(model)
    ranks = _sample_ranks(model, example, [m for m, spec in mappings.items() if isinstance(spec, Mapping)]) \
        if example is not None else {}
    paths = {m: path for path, m in model.named_modules()}
    branch = set(residual_branches(model))
    replacements = {}
    for old, spec in mappings.items():
        new = spec.build(im=im and paths[old] not in branch, backend=backend, sample_dims=ranks.get(old))
        if isinstance(new, ConvertedLIF):
            new.where = paths[old] or "<model>"
        replacements[old] = new.train(old.training)
    if model in replacements:  # a bare node: there is no parent to hold the new layer
        return replacements[model]
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if child in replacements:
                setattr(parent, name, replacements[child])
    scope = ForwardScope()
    for new in replacements.values():
        if isinstance(new, ConvertedLIF):
            new.scope = scope
    model.register_forward_pre_hook(scope.enter)
    model.register_forward_hook(scope.leave, always_call=True)
    from spikingjelly.activation_based import functional  # reset_net caches the modules it resets

    functional.invalidate_reset_cache(model)
    return model


__all__ = ["convert", "plan", "mapping_of", "surrogate_of", "dropout_mapping_of", "residual_branches",
           "ConversionError", "ConvertedLIF", "SequenceDropout", "ForwardScope", "Mapping", "DropoutMapping"]
