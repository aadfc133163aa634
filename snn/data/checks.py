"""Argument checks with messages that name the argument and what it accepts."""

from __future__ import annotations


def check_int(name: str, value, minimum: int) -> int:
    """An int >= minimum (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r} of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_real(name: str, value, low: float, high: float, high_open: bool = False) -> float:
    """A real number in [low, high] ([low, high) when high_open), returned as float."""
    interval = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in {interval}, got {value!r} of type {type(value).__name__}")
    if not (low <= value < high if high_open else low <= value <= high):
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    return float(value)


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r} of type {type(value).__name__}")
    return value
