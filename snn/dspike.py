"""Dspike's temperature selection (Li et al. 2021, Algorithm 1), the finite-difference baseline
whose cost the IM-Loss paper contrasts with ESG.

The Dspike surrogate itself is `snn.LIF(surrogate="dspike", alpha=b)`. Once per epoch, on one
mini-batch, `select_temperature` estimates the gradient of the loss w.r.t. the FIRST layer's
weights by central finite differences (2 forwards per weight), computes the Dspike surrogate
gradient of the same weights at b - db, b, b + db, and keeps the b whose gradient is most
cosine-similar to the finite-difference one. The finite difference only picks b.

Defaults (the Dspike paper does not state them; docs/design.md, "Dspike"):
  B0 = 3.0   the fixed temperature of the IM-Loss authors' released Dspike code.
  DB = 0.5   large enough to change the surrogate's shape (the centre-to-edge gradient
             ratio cosh^2(b/2) is 3.6 / 5.5 / 8.8 at b = 2.5 / 3 / 3.5), so a per-epoch step
             can move b across 1..10 within about 20 epochs.
  EPS = 1e-2 about 5% of a 3x3x3 stem's kaiming-uniform weight bound (1/sqrt(27) = 0.19): the
             spiking loss is piecewise constant in the weights, and this shifts the membranes a
             weight feeds by enough to flip many spikes on a mini-batch (a real change of the
             loss), while staying small against the weight itself.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from kernels.lif.params import ALPHA_MAX, ALPHA_MIN

from . import checks
from .neuron import LIF, lif_layers
from .tdbn import TDBatchNorm2d

B0, DB, EPS = 3.0, 0.5, 1e-2


class FlatFiniteDifference(ValueError):
    """The loss did not change under any +-eps perturbation of the first layer's weights."""


@dataclass(frozen=True)
class TemperatureChoice:
    """What `select_temperature` chose and what the choice cost.

    b: the chosen temperature; similarity: candidate b -> cosine similarity to the finite
    difference; forwards: perturbed-network loss evaluations (2 per first-layer weight);
    model_calls: batched model forwards that ran them; gradient_passes: forward+backward passes
    for the surrogate gradients (3); seconds: wall time of the whole selection.
    """

    b: float
    similarity: dict[float, float]
    forwards: int
    model_calls: int
    gradient_passes: int
    seconds: float


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first layer with weights in model.modules() order; it must be an nn.Conv2d."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if not isinstance(m, nn.Conv2d) or m.padding_mode != "zeros":
                raise TypeError(f"select_temperature perturbs a first layer that is an nn.Conv2d with zero "
                                f"padding, got {m}")
            return m
    raise ValueError(f"model has no nn.Conv2d layer whose weights could be perturbed (got a {type(model).__name__})")


def _set_batch_statistics(module: nn.Module, inputs: tuple) -> None:
    """Forward pre-hook: a norm's running statistics <- its input's batch mean and biased variance."""
    x = inputs[0]
    channel = 2 if isinstance(module, TDBatchNorm2d) else 1
    var, mean = torch.var_mean(x, dim=[d for d in range(x.dim()) if d != channel], correction=0)
    module.running_mean.copy_(mean)
    module.running_var.copy_(var)


@contextmanager
def _batch_statistics(model: nn.Module, run: Callable[[], object]):
    """Within: every batch norm of model (in eval mode) normalizes with the statistics of the batch
    that `run` forwards, as a training-mode forward would; after: running statistics restored."""
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d))]
    for m in norms:
        if m.running_mean is None:
            raise ValueError(f"select_temperature needs batch norms that track running statistics, got {m}")
    saved = [(m.running_mean.clone(), m.running_var.clone()) for m in norms]
    handles = [m.register_forward_pre_hook(_set_batch_statistics) for m in norms]
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    try:
        yield
    finally:
        for m, (mean, var) in zip(norms, saved):
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)


def _batch_dim(x: torch.Tensor) -> int:
    """1 for a [T, B, C, H, W] sequence, 0 for a static [B, ...] batch."""
    return 1 if x.dim() == 5 else 0


def _perturbed_conv(conv: nn.Conv2d, weights: torch.Tensor, batch: int):
    """A forward hook making conv run block p of its [T*P*B, ...] input with weights[p] ([P, *W.shape])."""
    P = weights.shape[0]
    flat_weight = weights.flatten(0, 1)  # [P*Cout, Cin/groups, k, k]
    bias = None if conv.bias is None else conv.bias.repeat(P)

    def hook(module, inputs, output):
        x = inputs[0]  # [T*P*B, Cin, H, W], block p of timestep t at rows (t*P + p)*B ...
        T = x.shape[0] // (P * batch)
        x = x.unflatten(0, (T, P, batch)).transpose(1, 2).flatten(0, 1).flatten(1, 2)  # [T*B, P*Cin, H, W]
        y = F.conv2d(x, flat_weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups * P)
        y = y.unflatten(1, (P, -1)).unflatten(0, (T, batch)).transpose(1, 2)  # [T, P, B, Cout, H', W']
        return y.flatten(0, 2)

    return hook


def _finite_difference(conv, call, inputs, targets, loss_fn, eps: float, chunk: int):
    """Central differences (L(w + eps e_j) - L(w - eps e_j)) / 2 eps for every weight j of conv.

    -> (gradient shaped like conv.weight, batched model calls). Each call evaluates `chunk`
    weights at +-eps: 2 * chunk perturbed copies of the batch in one forward."""
    weight = conv.weight.detach()
    n, batch = weight.numel(), inputs.shape[_batch_dim(inputs)]
    grad = torch.empty(n, dtype=torch.float64, device=weight.device)
    calls = 0
    for start in range(0, n, chunk):
        idx = torch.arange(start, min(start + chunk, n), device=weight.device)
        m = idx.numel()
        weights = weight.flatten().repeat(2 * m, 1)  # rows: +eps for idx, then -eps for idx
        rows = torch.arange(2 * m, device=weight.device)
        weights[rows, idx.repeat(2)] += torch.cat([weights.new_full((m,), eps), weights.new_full((m,), -eps)])
        handle = conv.register_forward_hook(_perturbed_conv(conv, weights.view(2 * m, *weight.shape), batch))
        try:
            outputs = call(torch.cat([inputs] * (2 * m), dim=_batch_dim(inputs)))
        finally:
            handle.remove()
        calls += 1
        losses = torch.stack([loss_fn(o, targets) for o in outputs.chunk(2 * m)]).double()
        grad[start:start + m] = (losses[:m] - losses[m:]) / (2 * eps)
    return grad.view_as(weight), calls


def select_temperature(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                       loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], b: float = B0,
                       db: float = DB, eps: float = EPS, T: int | None = None, chunk: int = 16) -> TemperatureChoice:
    """Dspike's Algorithm 1: pick b among (b - db, b, b + db) for the next epoch.

    model: contains snn.LIF(surrogate='dspike') layers (all get the candidate b) and a first
      nn.Conv2d that runs per timestep on the [T*B, ...] fold (every snn.models network does).
    inputs, targets: one mini-batch; model(inputs) (or model(inputs, T=T)) returns outputs with
      the batch at dim 0 for loss_fn(outputs, targets) -> 0-d loss.
    chunk: first-layer weights evaluated per batched forward (2 * chunk * B samples per call).
    The model runs in eval mode with every batch norm set to the statistics of the unperturbed
    mini-batch (what a training-mode forward normalizes with), so that perturbed copies of the
    batch are normalized independently and all passes see the same function; running statistics
    are restored after (untouched), and so is the train/eval mode. Every Dspike LIF is left at
    the chosen b. Parameter .grad fields are not touched.
    Raises TypeError / ValueError naming the argument for a bad model, b (a Dspike alpha, see
    `kernels.LIFParams`), db (> 0, b - db and b + db in alpha's range), eps (> 0), chunk (int
    >= 1) or loss_fn (callable).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    layers: list[LIF] = [m for m in lif_layers(model) if m.surrogate == "dspike"]
    if not layers:
        raise ValueError("model has no snn.LIF with surrogate='dspike' whose temperature could be selected")
    b = checks.real("b", b, ALPHA_MIN, ALPHA_MAX)  # b, b - db and b + db are Dspike alphas
    db = checks.real("db", db, 0.0, low_open=True)
    eps = checks.real("eps", eps, 0.0, low_open=True)
    if not ALPHA_MIN <= b - db:
        raise ValueError(f"db must be < b so that every candidate temperature b - db is > 0 (at least "
                         f"{ALPHA_MIN:.8g}), got b={b}, db={db}")
    if not b + db <= ALPHA_MAX:
        raise ValueError(f"b + db must be <= {ALPHA_MAX:.8g} (the largest surrogate alpha), got b={b}, db={db}")
    chunk = checks.integer("chunk", chunk, 1)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a callable (outputs, targets) -> 0-d loss, got {type(loss_fn).__name__}")
    conv = first_conv(model)

    def call(x):
        return model(x) if T is None else model(x, T=T)

    start, was_training, original = time.perf_counter(), model.training, [m.alpha for m in layers]
    model.eval()
    try:
        with _batch_statistics(model, lambda: call(inputs)):
            with torch.no_grad():
                fd, calls = _finite_difference(conv, call, inputs, targets, loss_fn, eps, chunk)
            if not fd.any():
                raise FlatFiniteDifference(f"the loss did not change under any +-eps={eps} perturbation of the "
                                           f"first layer's weights, so the finite difference carries no "
                                           f"direction; increase eps")
            similarity = {}
            for candidate in (b, b - db, b + db):  # b first: ties keep the current temperature
                for m in layers:
                    m.alpha = candidate
                (grad,) = torch.autograd.grad(loss_fn(call(inputs), targets), conv.weight)
                similarity[candidate] = F.cosine_similarity(grad.flatten().double(), fd.flatten(), dim=0).item()
        chosen = max(similarity, key=similarity.get)
    except BaseException:
        for m, alpha in zip(layers, original):
            m.alpha = alpha
        raise
    finally:
        model.train(was_training)
    for m in layers:
        m.alpha = chosen
    return TemperatureChoice(b=chosen, similarity=similarity, forwards=2 * conv.weight.numel(), model_calls=calls,
                             gradient_passes=3, seconds=time.perf_counter() - start)


class DspikeSchedule:
    """Dspike's temperature over a training run: b starts at b0 and, once per epoch, moves to the
    candidate among b, b - db, b + db that `select_temperature` picks on that epoch's first batch.

    db shrinks to b / 2 when b <= 2 db, so every candidate stays > 0 however far b has fallen.
    The loss is `loss_fn` (cross-entropy by default), in the model's own precision. When the
    finite difference is flat (no spike flips under +-eps: FlatFiniteDifference), b stays and
    the outcome says why (dspike_skipped); its cost is still recorded.
    b: the temperature every Dspike LIF of model holds; cost: the last selection's outcome
    without b ({"dspike_seconds", "dspike_forwards", "dspike_skipped"}; {} before the first).
    Not distributed: `choose` on one process, `adopt` its outcome on every process.
    """

    def __init__(self, model: nn.Module, b0: float = B0, db: float = DB, eps: float = EPS, T: int | None = None,
                 chunk: int = 16, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy):
        self.model, self.db, self.eps, self.T, self.chunk, self.loss_fn = model, db, eps, T, chunk, loss_fn
        self.layers = [m for m in lif_layers(model) if m.surrogate == "dspike"]
        self.b = b0
        self.cost: dict = {}

    def set_b(self, b: float) -> None:
        """Every Dspike LIF of the model (and self.b) <- b."""
        self.b = b
        for m in self.layers:
            m.alpha = b

    def choose(self, inputs: torch.Tensor, targets: torch.Tensor) -> dict:
        """Run the selection on one mini-batch (see select_temperature) -> {"b": the next b,
        "dspike_seconds", "dspike_forwards" (2 per first-layer weight), "dspike_skipped": None,
        or why b stays}. Leaves self.b and self.cost alone (see adopt)."""
        start, b = time.perf_counter(), self.b
        try:
            b = select_temperature(self.model, inputs, targets, self.loss_fn, b=self.b, db=min(self.db, self.b / 2),
                                   eps=self.eps, T=self.T, chunk=self.chunk).b
            skipped = None
        except FlatFiniteDifference as e:  # the finite difference carried no direction: keep b
            skipped = str(e)
        return {"b": b, "dspike_seconds": time.perf_counter() - start,
                "dspike_forwards": 2 * first_conv(self.model).weight.numel(), "dspike_skipped": skipped}

    def adopt(self, outcome: dict) -> None:
        """Take a `choose` outcome (possibly another process's): set b, record the rest as cost."""
        outcome = dict(outcome)
        self.set_b(outcome.pop("b"))
        self.cost = outcome

    def step(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """choose, then adopt: one epoch's selection on a single process."""
        self.adopt(self.choose(inputs, targets))
