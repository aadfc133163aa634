"""ESG: the Evolutionary Surrogate Gradient schedule (paper eq. 13-15) of every surrogate with a sharpness.

The paper schedules the tanh surrogate's K. Each other family follows the same K by its peak
slope, d phi / du at the threshold (docs/design.md, "ESG"):

    tanh   0.5 tanh(K x) + 0.5                     slope K/2          alpha = K
    atan   arctan(pi/2 alpha x) / pi + 1/2          slope alpha/2      alpha = K
    rect   ramp of slope 1/alpha, |x| < alpha/2    slope 1/alpha      alpha = 2/K  (the window's width)

(x = u - vth; SpikingJelly's Sigmoid(a) converts to tanh with alpha = a/2, so it is tanh here.)
"""

from __future__ import annotations

from torch import nn

from kernels.lif.params import ALPHA_MAX, ALPHA_MIN

from . import checks
from .neuron import LIF, lif_layers


def _schedule(epochs, k_min, k_max) -> tuple[int, float, float]:
    """Validated (N, k_min, k_max): K is a tanh surrogate's alpha, so both ends lie in its range."""
    epochs = checks.integer("epochs", epochs, 1)
    k_min = checks.real("k_min", k_min, ALPHA_MIN, ALPHA_MAX)
    k_max = checks.real("k_max", k_max, ALPHA_MIN, ALPHA_MAX)
    if k_min > k_max:
        raise ValueError(f"k_min must be <= k_max, got k_min={k_min}, k_max={k_max}")
    return epochs, k_min, k_max


# surrogate -> its alpha at ESG's K: equal peak slope d phi/du (u = vth) to tanh's K/2
ESG_ALPHA = {
    "tanh": lambda k: k,
    "atan": lambda k: k,  # slope (pi/2 alpha) / pi = alpha/2
    "rect": lambda k: 2.0 / k,  # slope 1/alpha; the window alpha = 2/K is 2/K wide
}


def esg_alpha(surrogate: str, k: float) -> float:
    """The alpha of `surrogate` whose peak slope at threshold equals the tanh surrogate's at K = k
    (K/2). surrogate: one of ESG_ALPHA (ValueError naming the accepted ones otherwise); k > 0."""
    if surrogate not in ESG_ALPHA:
        raise ValueError(f"ESG has no rule for surrogate {surrogate!r} (rules: {', '.join(ESG_ALPHA)}; Dspike's "
                         f"temperature is chosen by snn.dspike.select_temperature)")
    return ESG_ALPHA[surrogate](checks.real("k", k, ALPHA_MIN, ALPHA_MAX))


def esg_k(epoch: int, epochs: int, k_min: float = 1.0, k_max: float = 10.0) -> float:
    """Eq. 15: K(i) = ((10^(i/N) - 1) k_max + (10 - 10^(i/N)) k_min) / 9, i = epoch, N = epochs.

    epoch: int >= 0; epochs: int >= 1; k_min <= k_max in the alpha range of `kernels.LIFParams`
    ([2^-125, 2^126]). Raises TypeError / ValueError naming the argument otherwise.
    Kept as printed: training runs i = 0 .. N - 1, so K never reaches k_max (K(9) = 7.94 for N = 10,
    k 1..10); the text's "ends with K_max" would need i = N."""
    epoch = checks.integer("epoch", epoch, 0)
    epochs, k_min, k_max = _schedule(epochs, k_min, k_max)
    r = 10.0 ** (epoch / epochs)
    k = ((r - 1.0) * k_max + (10.0 - r) * k_min) / 9.0
    return min(max(k, k_min), k_max)  # a convex combination of the two; rounding may step 1 ulp outside


class ESG:
    """Sets every LIF of model to the sharpness of K(i), like an lr scheduler sets lr: a tanh or
    atan LIF gets alpha = K, a rect LIF alpha = 2/K (`esg_alpha`: the same peak slope K/2).

    Construction applies K(0) = k_min, replacing whatever alpha the layers had (a converted
    SpikingJelly Sigmoid(4), tanh alpha 2, starts at K = 1); call `step()` once at the end of
    every epoch. The epoch index is clamped to N - 1 (the last epoch of eq. 15), so extra steps
    keep K(N - 1).

        esg = snn.ESG(model, epochs=N)
        for epoch in range(N):
            train_one_epoch(model)   # the LIFs use the sharpness of esg.k
            esg.step()

    epochs: N >= 1; k_min <= k_max: the ends of K, in the alpha range of `kernels.LIFParams`
    ([2^-125, 2^126], so that 2/K is in it too). Raises TypeError / ValueError naming the argument
    otherwise, ValueError when model has no `snn.LIF`, or has one whose surrogate has no rule
    (naming it; Dspike has its own temperature selection, `snn.dspike`).
    """

    def __init__(self, model: nn.Module, epochs: int, k_min: float = 1.0, k_max: float = 10.0):
        epochs, k_min, k_max = _schedule(epochs, k_min, k_max)
        named = [(name, m) for name, m in model.named_modules() if isinstance(m, LIF)] \
            if isinstance(model, nn.Module) else lif_layers(model)
        if not named:
            raise ValueError(f"model has no snn.LIF for ESG to schedule (got a {type(model).__name__})")
        unruled = [f"{name or '<model>'} ({m.surrogate!r})" for name, m in named if m.surrogate not in ESG_ALPHA]
        if unruled:
            raise ValueError(f"ESG has no rule for the surrogate of LIF layers {', '.join(unruled)} (rules: "
                             f"{', '.join(ESG_ALPHA)}; Dspike's temperature is chosen by "
                             f"snn.dspike.select_temperature)")
        self.layers: list[LIF] = [m for _, m in named]
        self.epochs, self.k_min, self.k_max = epochs, k_min, k_max
        self.last_epoch = 0
        self._apply()

    @property
    def k(self) -> float:
        """K(i) of the current epoch i = min(last_epoch, epochs - 1)."""
        return esg_k(min(self.last_epoch, self.epochs - 1), self.epochs, self.k_min, self.k_max)

    def _apply(self) -> None:
        k = self.k
        for m in self.layers:
            m.alpha = esg_alpha(m.surrogate, k)

    def step(self) -> None:
        """Advance one epoch and set the sharpness of the new K on every LIF."""
        self.last_epoch += 1
        self._apply()

    def state_dict(self) -> dict:
        return {"epochs": self.epochs, "k_min": self.k_min, "k_max": self.k_max, "last_epoch": self.last_epoch}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the schedule and re-apply its K to the model's LIFs (values checked as in __init__)."""
        missing = {"epochs", "k_min", "k_max", "last_epoch"} - set(state_dict)
        if missing:
            raise ValueError(f"state_dict is missing ESG keys {sorted(missing)}, got keys {sorted(state_dict)}")
        self.epochs, self.k_min, self.k_max = _schedule(state_dict["epochs"], state_dict["k_min"], state_dict["k_max"])
        self.last_epoch = checks.integer("last_epoch", state_dict["last_epoch"], 0)
        self._apply()

    def __repr__(self) -> str:
        return (f"ESG(epochs={self.epochs}, k_min={self.k_min:g}, k_max={self.k_max:g}, "
                f"last_epoch={self.last_epoch}, k={self.k:.4g}, layers={len(self.layers)})")
