"""Argument checks shared by every layer: envs, agents and training import them from here.

Each returns the value in its plain Python type, or raises a one-line ``TypeError`` (wrong type) or
``ValueError`` (wrong value) that names the argument and says what is allowed.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """Return ``value`` as an int, or raise naming the argument and the allowed range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return int(value)


def check_float(name: str, value: Any, low: float = -math.inf, high: float = math.inf,
                low_open: bool = False, unit: str = "") -> float:
    """Return ``value`` as a finite float in ``[low, high]`` (``(low, high]`` with ``low_open``), or
    raise naming the argument and the allowed interval; ``unit`` (e.g. ``"steps"``) is named in the message."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
        if math.isinf(low) and math.isinf(high):
            allowed = ""
        elif math.isinf(high):
            allowed = f" {'>' if low_open else '>='} {low:g}"
        else:
            allowed = f" in {'(' if low_open else '['}{low:g}, {high:g}]"
        of_unit = f" of {unit}" if unit else ""
        raise ValueError(f"{name} must be a finite number{of_unit}{allowed}, got {value}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` as a bool if it is one (Python or numpy), else raise naming the argument."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool (True or False), got {value!r} of type {type(value).__name__}")
    return bool(value)


def check_choice(name: str, value: Any, allowed: Sequence[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise naming the argument."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


def check_sizes(name: str, value: Any) -> list[int]:
    """Return a list of positive layer widths, or raise naming the argument."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list of positive integers, got {value!r}")
    return [check_int(f"{name}[{i}]", v, 1) for i, v in enumerate(value)]
