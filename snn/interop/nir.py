"""NIR graphs in and out: `load` builds a model on this project's kernels from a NIR graph (written
by snnTorch, Norse, Sinabs, Rockpool, ... or by `export`), `export` writes a NIR graph of a model
built from `snn.LIF` and torch layers, for another library or a neuromorphic chip's toolchain.

NIR (the Neuromorphic Intermediate Representation, `pip install 'imloss-snn[nir]'`) stores
continuous-time neurons; every library discretises them its own way. docs/nir.md is the mapping
table, per node and per library. Here, with the user's time step `dt` (no default: snnTorch writes
and reads its graphs with dt = 1e-4, Norse with 1e-3 unless told otherwise):

    LIF  tau dv/dt = (v_leak - v) + r I, spike v > v_threshold, v -> v_reset
         -> forward Euler: u(t) = decay u(t-1) (1 - o(t-1)) + gain I(t),
            decay = 1 - dt / tau, gain = r dt / tau   (snnTorch's and Norse's discretisation)
    IF   dv/dt = r I -> decay = 1, gain = r (Norse's IAF: one step adds r I, no dt)
    Threshold        -> decay = 0: u(t) = I(t), a stateless spike function with a surrogate

with v_leak = 0 and v_reset = 0 (the kernels' hard reset) and one tau, r and threshold per node
(the kernels take scalars). NIR fires at v > v_threshold, the kernels at u >= vth: for an fp32
membrane the two agree exactly when vth is the next fp32 number above v_threshold, which `load`
sets and `export` inverts (so spikes at a membrane exactly on the threshold agree too).

Everything else is refused before anything is built (`NIRError`, one line per node, naming the
node and the parameter): a subtractive reset (NIR's neurons reset to v_reset; snnTorch's export
writes its 'subtract' Leaky as a reset-to-zero LIF, so that information is gone before the graph
reaches a reader), CubaLIF and CubaLI (a synaptic current, a second state the kernels lack), LI
and I (no spikes), Delay, per-neuron parameters, recurrent edges and nested graphs.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kernels import LIFParams

from ..layers import TimeDistributed
from ..neuron import LIF

INSTALL_HINT = "pip install 'imloss-snn[nir]' (nir, nirtorch)"
# r dt / tau within this of 1 is read as 1: a writer storing tau and r = tau / dt in fp32 (snnTorch)
# leaves a few fp32 ulps of rounding in their product, far from any gain a model means
GAIN_ONE = 2.0 ** -20


class NIRError(ValueError):
    """A NIR graph or a model has nodes with no exact equivalent (one line per node and parameter)."""


def _nir():
    try:
        import nir
    except ImportError as e:
        raise ImportError(f"snn.interop.nir needs the NIR package: {INSTALL_HINT}") from e
    return nir


def fires_above(v_threshold: float) -> float:
    """The kernels' vth (fires at u >= vth) equal to NIR's strict v > v_threshold for an fp32 membrane:
    the next fp32 number above v_threshold."""
    t = np.float32(v_threshold)
    return float(np.nextafter(t, np.float32(np.inf)))


def nir_threshold(vth: float) -> float:
    """The inverse of `fires_above`: NIR's v_threshold for the kernels' vth."""
    return float(np.nextafter(np.float32(vth), np.float32(-np.inf)))


class NIRLIF(LIF):
    """An `snn.LIF` that scales its input by input_gain (NIR's r dt / tau) before the scan, so that
    a NIR LIF with any r is one layer; input_gain = 1.0 is a plain `snn.LIF`. Other arguments as
    `snn.LIF`. Input [T, B, *sample] -> spikes of the same shape."""

    def __init__(self, input_gain: float = 1.0, **lif_kwargs):
        super().__init__(**lif_kwargs)
        if isinstance(input_gain, bool) or not isinstance(input_gain, (int, float)) or not math.isfinite(input_gain) \
                or input_gain <= 0:
            raise ValueError(f"input_gain must be a finite positive number, got {input_gain!r}")
        self.input_gain = float(input_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x if self.input_gain == 1.0 else x * self.input_gain)

    def extra_repr(self) -> str:
        return f"input_gain={self.input_gain:g}, " + super().extra_repr()


class SumPool2d(nn.AvgPool2d):
    """NIR's SumPool2d: the window's sum, exactly (divisor 1, so integer spike counts are exact)."""

    def __init__(self, kernel_size, stride, padding):
        super().__init__(kernel_size, stride, padding, divisor_override=1)


class Scale(nn.Module):
    """NIR's Scale: the input times a per-sample array (broadcast over the leading batch dimension)."""

    def __init__(self, scale):
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale, dtype=np.float32)))

    def forward(self, x):
        return x * self.scale


class NIRModel(nn.Module):
    """A NIR graph on this project's kernels: input [T, B, *sample] -> output [T, B, *out].

    Nodes run in a topological order, each over the whole sequence: a neuron (`NIRLIF`) scans it,
    any other node runs on [T*B, ...] (`TimeDistributed`); a node with several incoming edges gets
    their sum (NIR's rule). `nodes` maps each NIR node name to its module (under a key without
    dots, `keys`), `edges` the graph's edges."""

    def __init__(self, modules: dict[str, nn.Module], edges: list[tuple[str, str]], order: list[str],
                 inputs: list[str], outputs: list[str], sample_shapes: dict[str, tuple[int, ...]]):
        super().__init__()
        self.keys = {name: name.replace(".", "_") for name in modules}
        self.nodes = nn.ModuleDict({self.keys[n]: m for n, m in modules.items()})
        self.edges, self.order, self.inputs, self.outputs = list(edges), list(order), list(inputs), list(outputs)
        self.sample_shapes = dict(sample_shapes)  # node -> per-sample input shape, where the graph gives it

    def module(self, name: str) -> nn.Module:
        return self.nodes[self.keys[name]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 3:
            raise ValueError(f"NIRModel input must be a [T, B, *sample] tensor, got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        out: dict[str, torch.Tensor] = {}
        for name in self.order:
            sources = [s for s, d in self.edges if d == name]
            h = x if name in self.inputs else sum(out[s] for s in sources[1:]) + out[sources[0]] \
                if len(sources) > 1 else out[sources[0]]
            m = self.module(name)
            out[name] = m(h) if isinstance(m, LIF) or isinstance(m, nn.Identity) else TimeDistributed(m)(h)
        if len(self.outputs) != 1:
            return tuple(out[o] for o in self.outputs)
        return out[self.outputs[0]]


# ---------------------------------------------------------------- load

def _array(node, field: str) -> np.ndarray:
    return np.asarray(getattr(node, field), dtype=np.float64)


def _uniform(node, field: str, problems: list[str], where: str) -> float | None:
    a = _array(node, field)
    if a.size == 0 or not np.all(np.isfinite(a)):
        problems.append(f"{where}: {field} must be finite, got {a}")
        return None
    if np.any(a != a.flat[0]):
        problems.append(f"{where}: {field} differs between neurons ({a.min():g} .. {a.max():g}); the kernels take "
                        f"one {field} per layer")
        return None
    return float(a.flat[0])


def _neuron_settings(node, kind: str, dt: float, where: str, problems: list[str]) -> dict | None:
    """(vth, decay, input_gain) of the kernels for a NIR LIF / IF / Threshold, or None after
    appending the reasons to problems."""
    n = len(problems)
    fields = {"LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"), "IF": ("r", "v_threshold", "v_reset"),
              "Threshold": ("threshold",)}[kind]
    vals = {f: _uniform(node, f, problems, where) for f in fields}
    if len(problems) > n:
        return None
    for f in ("v_leak", "v_reset"):
        if f in vals and vals[f] != 0.0:
            problems.append(f"{where}: {f}={vals[f]:g}; the kernels' neurons rest at and reset to 0 (accepted: 0)")
    if kind == "LIF":
        tau = vals["tau"]
        if not tau >= dt:
            problems.append(f"{where}: tau={tau:g} < dt={dt:g} gives decay = 1 - dt/tau < 0 (forward Euler)")
            return None
        decay = float(np.float32(1.0 - dt / tau))  # the value the fp32 kernels compute with
        # r dt / tau = r (1 - decay) in real arithmetic; from the rounded decay, a Norse graph's gain is
        # its dt / tau exactly where tau itself was rounded when written
        decay, gain = decay, vals["r"] * (1.0 - decay)
    elif kind == "IF":
        decay, gain = 1.0, vals["r"]
    else:
        decay, gain = 0.0, 1.0
    if not gain > 0:
        problems.append(f"{where}: r={vals.get('r', 1.0):g} gives the input gain {gain:g}; accepted: > 0")
    if len(problems) > n:
        return None
    vth = fires_above(vals["threshold" if kind == "Threshold" else "v_threshold"])
    gain = float(np.float32(gain))
    if abs(gain - 1.0) <= GAIN_ONE:  # a writer's fp32 tau and r = tau / dt, meant as gain 1 (snnTorch's export)
        gain = 1.0
    try:
        LIFParams(vth=vth, decay=decay)
    except ValueError as e:
        problems.append(f"{where}: {e}")
        return None
    return {"vth": vth, "decay": decay, "input_gain": gain}


def _tuple(v, k: int) -> tuple:
    a = np.asarray(v).reshape(-1).tolist()
    return tuple(int(x) for x in (a * k if len(a) == 1 else a))


def _plan_node(nir, name: str, node, dt: float, problems: list[str]):
    """A factory for the module of one NIR node (nothing built yet), or None after appending the
    reasons to problems."""
    where = f"node {name!r} ({type(node).__name__})"
    if isinstance(node, (nir.Input, nir.Output)):
        return nn.Identity
    if isinstance(node, (nir.LIF, nir.IF, nir.Threshold)):
        s = _neuron_settings(node, type(node).__name__, dt, where, problems)
        return None if s is None else (lambda s=s, **kw: NIRLIF(reset="hard", **s, **kw))
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = np.asarray(node.weight, dtype=np.float32)
        b = np.asarray(node.bias, dtype=np.float32) if isinstance(node, nir.Affine) else None
        if w.ndim != 2 or (b is not None and b.shape != (w.shape[0],)):
            problems.append(f"{where}: weight must be [out, in] and bias [out], got {w.shape} and "
                            f"{None if b is None else b.shape}")
            return None

        def linear(w=w, b=b, **kw):
            m = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(w))
                if b is not None:
                    m.bias.copy_(torch.from_numpy(b))
            return m
        return linear
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        k = 1 if isinstance(node, nir.Conv1d) else 2
        w = np.asarray(node.weight, dtype=np.float32)
        b = np.asarray(node.bias, dtype=np.float32)
        if w.ndim != 2 + k or b.shape != (w.shape[0],):
            problems.append(f"{where}: weight must be [C_out, C_in/groups, *kernel] ({2 + k} dimensions) and bias "
                            f"[C_out], got {w.shape} and {b.shape}")
            return None
        padding = node.padding if isinstance(node.padding, str) else _tuple(node.padding, k)
        conv_cls = nn.Conv1d if k == 1 else nn.Conv2d

        def conv(w=w, b=b, **kw):
            m = conv_cls(w.shape[1] * int(node.groups), w.shape[0], w.shape[2:], stride=_tuple(node.stride, k),
                         padding=padding, dilation=_tuple(node.dilation, k), groups=int(node.groups))
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(w))
                m.bias.copy_(torch.from_numpy(b))
            return m
        return conv
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        pad = _tuple(node.padding, 2)
        if isinstance(node, nir.AvgPool2d) and any(pad):
            # whether padded zeros count in the mean is not defined by NIR: refused rather than guessed
            problems.append(f"{where}: padding={pad}; NIR leaves open whether padding counts in the average "
                            f"(accepted: 0)")
            return None
        args = (_tuple(node.kernel_size, 2), _tuple(node.stride, 2), pad)
        return (lambda **kw: nn.AvgPool2d(*args)) if isinstance(node, nir.AvgPool2d) else \
            (lambda **kw: SumPool2d(*args))
    if isinstance(node, nir.Flatten):
        # NIR's dimensions exclude the batch; the module sees [T*B, ...]
        start, end = int(node.start_dim), int(node.end_dim)
        return lambda **kw: nn.Flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end)
    if isinstance(node, nir.Scale):
        scale = np.asarray(node.scale, dtype=np.float32)
        return lambda **kw: Scale(scale)
    reason = {"CubaLIF": "a synaptic current, a second state variable the LIF kernels do not have",
              "CubaLI": "a synaptic current and no spikes", "LI": "a leaky integrator without spikes",
              "I": "an integrator without spikes", "Delay": "a delay line",
              "NIRGraph": "a nested graph (snnTorch and Norse write recurrent layers so)"}
    problems.append(f"{where}: no exact equivalent here ({reason.get(type(node).__name__, 'unknown node type')})")
    return None


def _topological(names: list[str], edges: list[tuple[str, str]]) -> list[str] | None:
    indegree = {n: 0 for n in names}
    for _, d in edges:
        indegree[d] += 1
    ready = [n for n in names if indegree[n] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for s, d in edges:
            if s == n:
                indegree[d] -= 1
                if indegree[d] == 0:
                    ready.append(d)
    return order if len(order) == len(names) else None


def load(graph_or_path, *, dt: float, backend: str = "auto", im: bool = True, surrogate: str = "tanh",
         alpha: float = 1.0) -> NIRModel:
    """A NIR graph (a `nir.NIRGraph`, or the path of a file `nir.write` wrote) -> `NIRModel` on the kernels.

    dt: the time step the graph's writer discretised with, in the graph's time unit (snnTorch 1e-4,
      Norse 1e-3 unless given to its to_nir; `export`'s argument): decay = 1 - dt / tau.
    backend, im: of every neuron (`snn.LIF`); surrogate, alpha: the surrogate the neurons train with
      (NIR stores none).
    Raises NIRError naming every node and parameter without an exact equivalent (module docstring),
    before any module is built; TypeError for a dt that is not a positive finite number."""
    nir = _nir()
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not (math.isfinite(dt) and dt > 0):
        raise TypeError(f"dt must be a positive finite number (the writer's time step), got {dt!r}")
    LIFParams(surrogate=surrogate, alpha=alpha)  # errors name the setting
    graph = nir.read(graph_or_path) if isinstance(graph_or_path, (str, Path)) else graph_or_path
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"graph_or_path must be a nir.NIRGraph or a path, got {type(graph_or_path).__name__}")
    problems: list[str] = []
    factories = {name: _plan_node(nir, name, node, float(dt), problems) for name, node in graph.nodes.items()}
    edges = [tuple(e) for e in graph.edges]
    for s, d in edges:
        for n in (s, d):
            if n not in graph.nodes:
                problems.append(f"edge ({s!r}, {d!r}): no node {n!r}")
    inputs = [n for n, v in graph.nodes.items() if isinstance(v, nir.Input)]
    outputs = [n for n, v in graph.nodes.items() if isinstance(v, nir.Output)]
    if len(inputs) != 1 or not outputs:
        problems.append(f"the graph needs one Input node and at least one Output node, has {inputs} and {outputs}")
    order = None if problems else _topological(list(graph.nodes), edges)
    if order is None and not problems:
        problems.append("the graph has a cycle (a recurrent connection); the kernels' neurons are feed-forward")
    for name in order or []:
        if name not in inputs and not any(d == name for _, d in edges):
            problems.append(f"node {name!r} has no incoming edge")
    if problems:
        raise NIRError("cannot load the NIR graph exactly; nothing was built:\n" + "\n".join(problems))
    kw = {"backend": backend, "im": im, "surrogate": surrogate, "alpha": alpha}
    modules = {}
    for name, make in factories.items():
        modules[name] = make(**kw) if isinstance(graph.nodes[name], (nir.LIF, nir.IF, nir.Threshold)) else make()
    shapes = {}
    for name, node in graph.nodes.items():
        t = getattr(node, "input_type", None) or {}
        shape = t.get("input") if isinstance(t, dict) else None
        if shape is not None and np.size(shape) > 0:
            shapes[name] = tuple(int(v) for v in np.asarray(shape).reshape(-1))
    for name, m in modules.items():
        if isinstance(m, LIF):  # a [T, B, *sample] layout of any rank: the graph is the authority
            m.sample_dims = len(shapes[name]) if name in shapes else None
    return NIRModel(modules, edges, order, inputs, outputs, shapes)


# ---------------------------------------------------------------- export

def _chain(model: nn.Module, prefix: str, inside_td: bool, out: list, problems: list[str]) -> None:
    """The leaves of nested nn.Sequential / TimeDistributed containers, in order, with whether each
    runs on [T*B, ...] (inside a TimeDistributed) or on [T, B, ...]."""
    if isinstance(model, nn.Sequential):
        td = inside_td or isinstance(model, TimeDistributed)
        for name, child in model.named_children():
            _chain(child, f"{prefix}.{name}" if prefix else name, td, out, problems)
    elif isinstance(model, LIF) or not any(True for _ in model.children()):
        out.append((prefix or "module", model, inside_td))
    else:
        problems.append(f"{prefix or 'model'} ({type(model).__name__}): a container whose forward is not a chain "
                        f"of its children (accepted: nn.Sequential, snn.TimeDistributed, NIRModel)")


def _f64(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float64)


def _export_neuron(m: LIF, dt: float, shape: tuple, where: str, problems: list[str]):
    nir = _nir()

    def full(v):  # per-neuron arrays: readers (snnTorch, Norse, nir's type inference) take the shape from them
        return np.full(shape, v, dtype=np.float64)
    if m.reset != "hard":
        problems.append(f"{where}: reset={m.reset!r}; NIR's neurons reset to v_reset (accepted: 'hard')")
        return None
    if isinstance(m.decay, torch.Tensor) or type(m)._leak is not LIF._leak:
        problems.append(f"{where}: a learnable decay; export after training (a fixed decay)")
        return None
    # the fp32 values the kernels compute with
    gain, decay = float(np.float32(getattr(m, "input_gain", 1.0))), float(np.float32(m.decay))
    thr = full(nir_threshold(m.vth))
    if decay == 1.0:
        return nir.IF(r=full(gain), v_threshold=thr, v_reset=full(0.0))
    tau = dt / (1.0 - decay)
    # a reader discretises back with 1 - dt / tau in float64 and computes in fp32: check it gets decay
    if float(np.float32(1.0 - dt / tau)) != decay:
        problems.append(f"{where}: decay={decay!r} does not survive tau = dt / (1 - decay) and back in float64")
        return None
    return nir.LIF(tau=full(tau), r=full(gain * tau / dt), v_leak=full(0.0), v_threshold=thr, v_reset=full(0.0))


def _export_layer(m: nn.Module, sample_shape: tuple, where: str, problems: list[str]):
    nir = _nir()

    def arr(p):
        return p.detach().cpu().numpy().astype(np.float32)
    if isinstance(m, nn.Linear):
        return nir.Linear(weight=arr(m.weight)) if m.bias is None else nir.Affine(weight=arr(m.weight),
                                                                                  bias=arr(m.bias))
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        if m.padding_mode != "zeros":
            problems.append(f"{where}: padding_mode={m.padding_mode!r} (accepted: 'zeros')")
            return None
        bias = arr(m.bias) if m.bias is not None else np.zeros(m.out_channels, np.float32)
        cls, k = (nir.Conv1d, 1) if isinstance(m, nn.Conv1d) else (nir.Conv2d, 2)
        return cls(input_shape=sample_shape[1:] if k == 2 else sample_shape[1], weight=arr(m.weight),
                   stride=m.stride if k == 2 else m.stride[0], padding=m.padding if k == 2 or isinstance(
                       m.padding, str) else m.padding[0], dilation=m.dilation if k == 2 else m.dilation[0],
                   groups=m.groups, bias=bias)
    if isinstance(m, nn.AvgPool2d):
        k, s, p = (_tuple(v, 2) for v in (m.kernel_size, m.stride if m.stride else m.kernel_size, m.padding))
        if m.ceil_mode or (any(p) and m.divisor_override != 1):
            problems.append(f"{where}: ceil_mode or padding of an average (accepted: neither, or the sum pool "
                            f"divisor_override=1)")
            return None
        if m.divisor_override not in (None, 1):
            problems.append(f"{where}: divisor_override={m.divisor_override} (accepted: None, 1)")
            return None
        cls = nir.SumPool2d if m.divisor_override == 1 else nir.AvgPool2d
        return cls(kernel_size=np.array(k), stride=np.array(s), padding=np.array(p))
    if isinstance(m, nn.Flatten):
        d = len(sample_shape) + 1  # the module sees [N, *sample]
        start, end = (v if v >= 0 else v + d for v in (m.start_dim, m.end_dim))
        if start < 1:
            problems.append(f"{where}: Flatten(start_dim={m.start_dim}) flattens the batch into the sample")
            return None
        return nir.Flatten(input_type={"input": np.array(sample_shape)}, start_dim=start - 1, end_dim=end - 1)
    if isinstance(m, Scale):
        return nir.Scale(scale=m.scale.cpu().numpy())
    problems.append(f"{where} ({type(m).__name__}): no NIR node (accepted: Linear, Conv1d, Conv2d, AvgPool2d, "
                    f"Flatten, snn.LIF; fold a BatchNorm into its convolution first)")
    return None


def export(model: nn.Module, sample: torch.Tensor, *, dt: float):
    """A NIR graph (`nir.NIRGraph`; `nir.write(path, graph)` stores it) of model.

    model: nn.Sequential / snn.TimeDistributed chains of snn.LIF (hard reset, a fixed decay),
      nn.Linear, nn.Conv1d, nn.Conv2d, nn.AvgPool2d (a sum pool with divisor_override=1),
      nn.Flatten; or a `NIRModel` from `load`.
    sample: one [T, B, *sample] input; the model runs on it once (no grad) to record every
      node's shape.
    dt: the time step the graph's LIF time constants are written in (tau = dt / (1 - decay),
      r = input_gain tau / dt); a reader must discretise with the same dt.
    Raises NIRError naming every module and setting without a NIR node, before writing anything."""
    nir = _nir()
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not (math.isfinite(dt) and dt > 0):
        raise TypeError(f"dt must be a positive finite number, got {dt!r}")
    if not isinstance(sample, torch.Tensor) or sample.dim() < 3:
        raise ValueError("sample must be one [T, B, *sample] input tensor")
    problems: list[str] = []
    if isinstance(model, NIRModel):
        leaves = [(n, model.module(n), not isinstance(model.module(n), (LIF, nn.Identity))) for n in model.order]
        edges = list(model.edges)
    else:
        leaves = []
        _chain(model, "", False, leaves, problems)
        edges = None
    if problems:
        raise NIRError("cannot export exactly:\n" + "\n".join(problems))
    shapes: dict[int, tuple] = {}
    def record(i: int, td: bool):
        def hook(module, args):  # returns None: the module's input is left as it is
            shapes.setdefault(i, tuple(args[0].shape[1 if td else 2:]))
        return hook
    hooks = [m.register_forward_pre_hook(record(i, td)) for i, (_, m, td) in enumerate(leaves)]
    try:
        with torch.no_grad():
            model(sample)
    finally:
        for h in hooks:
            h.remove()
    nodes = {}
    for i, (name, m, _) in enumerate(leaves):
        where = f"{name} ({type(m).__name__})"
        if isinstance(m, nn.Identity):
            nodes[name] = nir.Input(input_type=np.array(shapes.get(i, sample.shape[2:]))) if \
                isinstance(model, NIRModel) and name in model.inputs else nir.Output(output_type=None) if \
                isinstance(model, NIRModel) and name in model.outputs else None
            if nodes[name] is None:
                problems.append(f"{where}: an Identity inside the graph (accepted only as its Input / Output)")
            continue
        if i not in shapes:
            problems.append(f"{where}: not called by model(sample)")
            continue
        node = _export_neuron(m, float(dt), shapes[i], where, problems) if isinstance(m, LIF) else \
            _export_layer(m, shapes[i], where, problems)
        nodes[name] = node
    if problems:
        raise NIRError("cannot export exactly:\n" + "\n".join(problems))
    if edges is None:
        names = [n for n, _, _ in leaves]
        nodes = {"input": nir.Input(input_type=np.array(sample.shape[2:])), **nodes, "output": None}
        with torch.no_grad():
            out = model(sample)
        nodes["output"] = nir.Output(output_type=np.array(out.shape[2:]))
        chain = ["input", *names, "output"]
        edges = list(zip(chain[:-1], chain[1:]))
    else:
        out_name = model.outputs[0]
        with torch.no_grad():
            out = model(sample)
        nodes[out_name] = nir.Output(output_type=np.array((out[0] if isinstance(out, tuple) else out).shape[2:]))
    return nir.NIRGraph(nodes=nodes, edges=edges)
