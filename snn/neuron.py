"""`LIF`: the multi-step leaky integrate-and-fire layer (paper eq. 5-6) as an `nn.Module`."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from kernels import BACKENDS, FUSED_BACKENDS, LIFParams, lif_scan


SETTINGS = tuple(f.name for f in dataclasses.fields(LIFParams))  # vth, decay, surrogate, alpha, reset, detach_reset


def _setting(name: str) -> property:
    def get(self):
        return getattr(self, "_" + name)

    def set(self, value):
        self._store(dataclasses.replace(self.params, **{name: value}))

    return property(get, set, doc=f"{name} of `kernels.lif_scan`; an assignment is validated by `kernels.LIFParams`.")


class ForwardCount:
    """Forwards run by a LIF and by every copy of it that shares its attributes.

    torch.nn.DataParallel's replicate() copies each module's __dict__ shallowly, so its replicas
    hold this very object: a replica's forward counts here while its u_mean stays on the replica.
    A copy.deepcopy gets its own count."""

    def __init__(self):
        self.n = 0


class LIF(nn.Module):
    """LIF neurons over a `[T, B, ...]` tensor, one `kernels.lif_scan` call per forward.

    vth, decay, surrogate, alpha, reset, detach_reset: see `kernels.lif_scan` (alpha is the
    surrogate's runtime parameter: tanh K of ESG, rect width, dspike temperature b; schedulers
    such as `snn.ESG` assign it between forwards). Each of these six settings is validated by
    `kernels.LIFParams` when it is assigned (TypeError / ValueError naming it), so a value set
    between the calls of a `torch.compile`d model, where lif_scan cannot check it while tracing,
    is checked too. backend: one of kernels.BACKENDS (the registry of kernels/lif/backends.py).
    compact_state: keep a bf16 membrane plus spike bits for the backward (fused backends).
    im: whether `snn.im_loss` restricts this layer (False for LIFs inside residual branches).
    sample_dims: the number of dimensions of one sample, so that an input is exactly
      `[T, B, *sample]` with 2 + sample_dims dimensions; None (default) accepts the two layouts
      the paper's networks feed a LIF: `[T, B, C, H, W]` after a convolution and `[T, B, F]`
      after an FC layer. Any other rank is refused (ValueError), so that a single-step batch
      such as `[B, C, H, W]` is never scanned over its batch dimension as if it were time; give
      sample_dims for other layouts (2 for `[T, B, C, L]`, 0 for `[T, N]`).

    After each forward:
      u_mean       0-d fp32 tensor, mean pre-reset membrane of that call (differentiable)
      spike_rate   float, fraction of spikes of that call (read lazily; no device sync at forward)
    Both are None before the first forward. A copy (`copy.deepcopy`, pickling) keeps u_mean's
    value without its autograd graph, so a model can be copied at any point, also between a
    forward and its backward (best-model snapshots, `torch.optim.swa_utils.AveragedModel`, EMA);
    the copy counts as having run no forward with grad, so `snn.im_loss` on it in training asks
    for a forward first. `u_mean_is_current` is False when a copy sharing this
    layer's attributes (an nn.DataParallel replica) ran a forward after the one that wrote u_mean;
    forwards inside torch.compile'd code are not counted (a traced counter would recompile each call).
    """

    def __init__(self, vth: float = 0.5, decay: float = 0.25, surrogate: str = "tanh", alpha: float = 1.0,
                 reset: str = "hard", detach_reset: bool = False, im: bool = True, backend: str = "auto",
                 compact_state: bool = False, sample_dims: int | None = None):
        super().__init__()
        p = LIFParams(vth=vth, decay=decay, surrogate=surrogate, alpha=alpha, reset=reset,
                      detach_reset=detach_reset)  # validates, with errors naming the argument
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        for name, flag in (("im", im), ("compact_state", compact_state)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {flag!r}")
        if sample_dims is not None and (isinstance(sample_dims, bool) or not isinstance(sample_dims, int)
                                        or sample_dims < 0):
            raise ValueError(f"sample_dims must be None or an int >= 0 (dimensions of one sample), got {sample_dims!r}")
        if compact_state and backend == "naive":
            raise ValueError(f"compact_state=True needs a fused backend (one of {('auto', *FUSED_BACKENDS)}), "
                             "got backend='naive'")
        self._store(p)
        self.im, self.backend, self.compact_state, self.sample_dims = im, backend, compact_state, sample_dims
        self.u_mean: torch.Tensor | None = None
        self.forward_had_grad = False  # whether the forward that wrote u_mean ran with grad enabled
        self._rate: torch.Tensor | None = None
        self._forwards = ForwardCount()  # shared with DataParallel replicas (see ForwardCount)
        self._forward_index = 0  # which of those forwards wrote this module's u_mean (0: none)

    @property
    def u_mean_is_current(self) -> bool:
        """True when no copy of this layer has run a forward since the one that wrote u_mean
        (vacuously True before any forward)."""
        return self._forward_index == self._forwards.n

    vth, decay, surrogate = _setting("vth"), _setting("decay"), _setting("surrogate")
    alpha, reset, detach_reset = _setting("alpha"), _setting("reset"), _setting("detach_reset")

    def __setattr__(self, name: str, value) -> None:
        if name in SETTINGS:  # to its validating property: nn.Module would try to register a Parameter under it
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @property
    def params(self) -> LIFParams:
        """The current settings as a validated `kernels.LIFParams`."""
        return LIFParams(**{name: getattr(self, "_" + name) for name in SETTINGS})

    def _store(self, p: LIFParams) -> None:
        for name in SETTINGS:
            setattr(self, "_" + name, getattr(p, name))

    @property
    def spike_rate(self) -> float | None:
        """Fraction of 1s among the spikes of the last forward (None before the first)."""
        return None if self._rate is None else self._rate.item()

    def __getstate__(self) -> dict:
        """The module's state for copy.deepcopy and pickle: u_mean without its autograd graph (a
        non-leaf tensor cannot be deep-copied, and a copy does not own the original's graph)."""
        state = dict(super().__getstate__())
        if state.get("u_mean") is not None:
            state["u_mean"] = state["u_mean"].detach()
            state["forward_had_grad"] = False
        return state

    def _check_input(self, x, time_major: bool = True) -> None:
        """The one input-rank rule of every LIF layer (see the class docstring, sample_dims): x is
        [T, B, *sample] (time_major) or, for a layer stepped one time step per call, [B, *sample].
        Without sample_dims, *sample is [C, H, W] or [F]: a rank that could be a batch taken for
        time ([B, C, H, W] where [T, B, C, H, W] belongs) is refused, never scanned.

        Raises TypeError for a non-tensor, ValueError naming the shape and what is accepted."""
        if not isinstance(x, torch.Tensor):
            lead = "[T, B, ...]" if time_major else "[B, ...]"
            raise TypeError(f"{self._get_name()} input must be a torch.Tensor of shape {lead}, got {type(x).__name__}")
        lead = 2 if time_major else 1
        layout = "[T, B, *sample]" if time_major else "[B, *sample] (one time step)"
        if self.sample_dims is not None:
            if x.dim() != lead + self.sample_dims:
                raise ValueError(f"{self._get_name()}(sample_dims={self.sample_dims}) takes {layout} inputs with "
                                 f"{lead + self.sample_dims} dimensions, got shape {tuple(x.shape)}")
        elif x.dim() - lead not in (1, 3):
            if time_major:
                what = ("time-major, [T, B, C, H, W] (after a convolution) or [T, B, F] (after an FC layer)")
                danger = ("A single-step batch such as [B, C, H, W] would be scanned over its batch dimension as "
                          "if it were time: add the time dimension (x.unsqueeze(0) for one timestep)")
            else:
                what = "one time step, [B, C, H, W] (after a convolution) or [B, F] (after an FC layer)"
                danger = "A [T, B, ...] sequence belongs to multi-step mode"
            raise ValueError(f"{self._get_name()} input must be {what}, got shape {tuple(x.shape)} with {x.dim()} "
                             f"dimensions. {danger} or, for another layout, {self._sample_dims_hint()}.")

    def _sample_dims_hint(self) -> str:
        """How a user of this class declares another sample layout (for _check_input's message)."""
        return "construct LIF(sample_dims=k) for [T, B, *sample] inputs with k sample dimensions"

    def _leak(self) -> float | torch.Tensor:
        """The decay lif_scan gets: the setting here; a subclass with a learnable decay returns
        its 0-d tensor (lif_scan then computes its gradient)."""
        return self._decay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [T, B, *sample] input current -> spikes of the same shape (0/1, x.dtype); see
        sample_dims in the class docstring for the ranks accepted (ValueError otherwise)."""
        self._check_input(x)
        self.forward_had_grad = torch.is_grad_enabled()
        spikes, self.u_mean = lif_scan(x, vth=self.vth, decay=self._leak(), surrogate=self.surrogate,
                                       alpha=self.alpha, reset=self._reset, detach_reset=self.detach_reset,
                                       backend=self.backend, compact_state=self.compact_state)
        self._rate = spikes.detach().mean(dtype=torch.float32)
        if not torch.compiler.is_compiling():  # a traced int counter would recompile the model every call
            self._forwards.n += 1
            self._forward_index = self._forwards.n
        return spikes

    def extra_repr(self) -> str:
        return (f"vth={self.vth}, decay={self.decay}, surrogate={self.surrogate!r}, alpha={self.alpha:g}, "
                f"reset={self._reset!r}, detach_reset={self.detach_reset}, im={self.im}, backend={self.backend!r}"
                + (", compact_state=True" if self.compact_state else "")
                + (f", sample_dims={self.sample_dims}" if self.sample_dims is not None else ""))


def lif_layers(model: nn.Module) -> list[LIF]:
    """Every `LIF` of model in registration order (a LIF model returns itself)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return [m for m in model.modules() if isinstance(m, LIF)]
