"""Validated LIF scan parameters shared by every backend.

The kernels compute in fp32 (fp64 only for fp64 input on the `torch` and `naive` backends), so
every parameter must be usable there: a normal fp32 number (or 0 where 0 makes sense), and so
must every quantity the kernels derive from the parameters alone:
  alpha          2 alpha (tanh, Dspike: the sigmoid argument 2 alpha (u - vth)), alpha / 2 (rect
                 window, tanh and atan factor), 1 / alpha (rect height) and pi/2 alpha (atan's
                 slope)  ->  2^-125 <= alpha <= 2^126
  vth            vth, decay vth (soft reset), 2 vth (Dspike's x = u / (2 vth))
  decay          decay u, decay vth: a fraction in [0, 1]
  Dspike scale   alpha / (2 tanh(alpha / 2) 2 vth) and 4 times it (the Triton kernel's factor)
A value outside these ranges would become inf, NaN or a flushed subnormal inside a kernel and
give non-finite or backend-dependent gradients, so it is rejected here with the accepted range.

While torch.compile traces, these range checks are left out: a float that changes between calls
(ESG's alpha each epoch) is traced as a symbolic value, which has no value to compare and which
dynamo presents to Python as a plain float, so a traced check would either fail to trace or
force a recompile for every value. The checks run where the values are concrete instead: the
fused backends' custom op builds `LIFParams` from the real values on every call (dispatch.py), with
the same errors, and `snn.LIF` validates every assignment of its settings.
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass

import torch

SURROGATES = ("tanh", "rect", "dspike", "atan")
# What the native kernels take (the C++ enum Surrogate and fused_triton's constants follow it).
SURROGATE_CODES = {name: code for code, name in enumerate(SURROGATES)}
RESETS = ("hard", "soft")

FP32_MAX = torch.finfo(torch.float32).max  # 3.4028e38
FP32_TINY = torch.finfo(torch.float32).tiny  # 1.1755e-38, the smallest normal fp32 number
ALPHA_MIN = 2 * FP32_TINY  # 2^-125: alpha / 2 is a normal fp32 number
ALPHA_MAX = 1 / FP32_TINY  # 2^126: 1 / alpha is a normal fp32 number (and 2 alpha is finite)


def _checkable() -> bool:
    """False while torch.compile traces, where a float may be symbolic (see the module docstring)."""
    return not torch.compiler.is_compiling()


def _real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number (int or float), got {value!r} of type {type(value).__name__}")
    value = float(value)
    if _checkable() and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _normal_fp32(name: str, value: float, accepted: str) -> None:
    """value must be 0 or have a magnitude in the normal fp32 range [FP32_TINY, FP32_MAX]."""
    if value != 0.0 and not FP32_TINY <= abs(value) <= FP32_MAX:
        why = (f"0 < |{name}| < {FP32_TINY:.8g} is subnormal" if abs(value) < FP32_TINY
               else f"|{name}| > {FP32_MAX:.8g} overflows")
        raise ValueError(f"{name} must be {accepted}: the kernels compute in fp32, where {why}; got {value!r}")


@dataclass(frozen=True)
class LIFParams:
    """The neuron and surrogate settings of one `lif_scan` call.

    vth: firing threshold, 0 or 1.1755e-38 <= |vth| <= 3.4028e38 (Dspike: 0 < vth <= 1.7014e38);
    decay: membrane leak, 0 or in [1.1755e-38, 1]; alpha: surrogate sharpness (tanh: K of
    eq. 13-15; rect: window width; dspike: temperature b; atan: SpikingJelly's ATan alpha, the
    peak slope being alpha / 2) in [ALPHA_MIN, ALPHA_MAX] =
    [2.3510e-38, 8.5071e37]; Dspike also needs its gradient scale (see dspike_scale) in
    [1.1755e-38, 8.5071e37]. Raises TypeError for a non-real or non-bool value and ValueError,
    naming the parameter and its accepted range, for a value the fp32 kernels cannot compute with.
    While torch.compile traces, only the types and the names are checked (module docstring).
    """

    vth: float = 0.5
    decay: float = 0.25
    surrogate: str = "tanh"
    alpha: float = 1.0
    reset: str = "hard"
    detach_reset: bool = False

    def __post_init__(self):
        object.__setattr__(self, "vth", _real("vth", self.vth))
        object.__setattr__(self, "decay", _real("decay", self.decay))
        object.__setattr__(self, "alpha", _real("alpha", self.alpha))
        if self.surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {SURROGATES}, got {self.surrogate!r}")
        if self.reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {self.reset!r}")
        if not isinstance(self.detach_reset, bool):
            raise TypeError(f"detach_reset must be a bool, got {self.detach_reset!r}")
        if not _checkable():
            return
        if not 0.0 <= self.decay <= 1.0:
            raise ValueError(f"decay must lie in [0, 1], got {self.decay}")
        _normal_fp32("decay", self.decay, f"0 or in [{FP32_TINY:.8g}, 1]")
        if not self.alpha > 0.0:
            raise ValueError(f"alpha must be > 0 (surrogate sharpness / width / temperature), got {self.alpha!r}")
        if not ALPHA_MIN <= self.alpha <= ALPHA_MAX:
            raise ValueError(f"alpha must lie in [{ALPHA_MIN:.8g}, {ALPHA_MAX:.8g}], where alpha / 2, 1 / alpha and "
                             f"2 alpha are finite normal fp32 numbers (the kernels' compute type); got {self.alpha!r}")
        if self.surrogate == "dspike":
            self._check_dspike()
        else:
            _normal_fp32("vth", self.vth, f"0 or of magnitude in [{FP32_TINY:.8g}, {FP32_MAX:.8g}]")

    def _check_dspike(self) -> None:
        if self.vth <= 0.0:
            raise ValueError(f"surrogate='dspike' works on u / (2 vth) and needs vth > 0, got vth={self.vth}")
        if not FP32_TINY <= self.vth <= FP32_MAX / 2:
            raise ValueError(f"surrogate='dspike' needs vth in [{FP32_TINY:.8g}, {FP32_MAX / 2:.8g}] so that "
                             f"2 vth is a finite normal fp32 number; got vth={self.vth!r}")
        if not FP32_TINY <= self.dspike_scale <= FP32_MAX / 4:
            raise ValueError(f"surrogate='dspike' with alpha={self.alpha!r} and vth={self.vth!r}: the gradient "
                             f"scale alpha / (2 tanh(alpha / 2) 2 vth) = {self.dspike_scale:.4g} must lie in "
                             f"[{FP32_TINY:.8g}, {FP32_MAX / 4:.8g}] (normal fp32 numbers, also 4 times it); "
                             f"change vth or alpha")

    @property
    def dspike_scale(self) -> float:
        """b / (2 tanh(b/2) * 2 vth): the Dspike gradient dS/du is this times
        1 - tanh^2(b (u / (2 vth) - 1/2)) on 0 <= u <= 2 vth (Dspike's x = u / (2 vth), whose
        midpoint x = 1/2 is the firing point u = vth), 0 outside."""
        return self.alpha / (2.0 * math.tanh(self.alpha / 2.0) * 2.0 * self.vth)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the fused backends compute and keep the recurrence in for inputs of `dtype`:
    float32 for float16 / bfloat16 / float32 storage, float64 for float64."""
    return torch.promote_types(dtype, torch.float32)


@functools.lru_cache(maxsize=1024, typed=True)  # typed: True, 1 and 1.0 are different settings
def _validated_once(vth, decay, surrogate, alpha, reset, detach_reset) -> LIFParams:
    return LIFParams(vth=vth, decay=decay, surrogate=surrogate, alpha=alpha, reset=reset, detach_reset=detach_reset)


def validated(vth=0.5, decay=0.25, surrogate="tanh", alpha=1.0, reset="hard", detach_reset=False) -> LIFParams:
    """`LIFParams` of these settings, validated once per distinct setting and then reused (the
    checks cost about as much host time as a kernel launch, on every call of lif_scan). A setting
    that fails validation is never cached, so it raises again; an unhashable value, or any value
    while torch.compile traces (`_checkable`), is passed to LIFParams unchanged."""
    args = (vth, decay, surrogate, alpha, reset, detach_reset)
    if not _checkable():
        return LIFParams(*args)
    try:
        hash(args)
    except TypeError:
        return LIFParams(*args)
    return _validated_once(*args)
