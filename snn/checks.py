"""Argument checks shared by the public constructors and functions of `snn`.

Each error names the argument, what was given and what is accepted: TypeError for a value of the
wrong type (bools are not numbers here), ValueError for a value out of range. Nothing is coerced
beyond returning an accepted int or real as a Python int or float.
"""

from __future__ import annotations

import math
import numbers

import torch


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    return f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def real(name: str, value, low: float = -math.inf, high: float = math.inf, *, low_open: bool = False,
         high_open: bool = False) -> float:
    """A finite real number (int or float) in the interval low..high, as a float.

    low_open / high_open exclude that end (e.g. low=0, low_open=True for "> 0")."""
    interval = _interval(low, high, low_open, high_open)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite real number in {interval}, got {value!r} of type "
                        f"{type(value).__name__}")
    value = float(value)
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (math.isfinite(value) and above and below):
        raise ValueError(f"{name} must be a finite real number in {interval}, got {value!r}")
    return value


def integer(name: str, value, low: int) -> int:
    """An int (not a bool) >= low, as a Python int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {low}, got {value!r} of type {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value}")
    return int(value)


def choice(name: str, value, accepted):
    """One of `accepted` (ValueError naming them otherwise), returned as given."""
    if value not in accepted:
        raise ValueError(f"{name} must be one of {tuple(accepted)}, got {value!r}")
    return value


def boolean(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r} of type {type(value).__name__}")
    return value


def input_dtype(name: str, x: torch.Tensor, dtype: torch.dtype) -> None:
    """x must be floating point and, outside autocast, of the module's parameter dtype (no
    silent conversion: an integer image batch must be scaled to floats by the caller)."""
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor ({dtype} for this model's {dtype} parameters), "
                        f"got dtype {x.dtype}; convert it first, e.g. images.to({dtype}) / 255 for uint8 "
                        f"images, then normalize as in training")
    if x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(f"{name} has dtype {x.dtype} but the model's parameters are {dtype}; convert the "
                        f"input (x.to({dtype})) or the model (model.to({x.dtype})), or run under torch.autocast")
