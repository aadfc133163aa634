"""Validated LIF scan parameters shared by every backend."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

SURROGATES = ("tanh", "rect", "dspike")
RESETS = ("hard", "soft")


def _real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number (int or float), got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


@dataclass(frozen=True)
class LIFParams:
    """The neuron and surrogate settings of one `lif_scan` call.

    vth: firing threshold; decay: membrane leak in [0, 1]; alpha: surrogate sharpness
    (tanh: K of eq. 13-15; rect: window width; dspike: temperature b).
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
        if not 0.0 <= self.decay <= 1.0:
            raise ValueError(f"decay must lie in [0, 1], got {self.decay}")
        if self.alpha <= 0.0:
            raise ValueError(f"alpha must be > 0 (surrogate sharpness / width / temperature), got {self.alpha}")
        if self.surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {SURROGATES}, got {self.surrogate!r}")
        if self.reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {self.reset!r}")
        if not isinstance(self.detach_reset, bool):
            raise TypeError(f"detach_reset must be a bool, got {self.detach_reset!r}")
        if self.surrogate == "dspike" and self.vth <= 0.0:
            raise ValueError(f"surrogate='dspike' works on u / (2 vth) and needs vth > 0, got vth={self.vth}")

    @property
    def dspike_scale(self) -> float:
        """b / (2 tanh(b/2) * 2 vth): the Dspike gradient dS/du is this times
        1 - tanh^2(b (u / (2 vth) - 1/2)) on 0 <= u <= 2 vth (Dspike's x = u / (2 vth), whose
        midpoint x = 1/2 is the firing point u = vth), 0 outside."""
        return self.alpha / (2.0 * math.tanh(self.alpha / 2.0) * 2.0 * self.vth)
