"""Argument checks shared by the distances, losses, neighbourhoods and models."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


def is_number(value: Any) -> bool:
    """Whether ``value`` is a real number: Python or numpy ints and floats, not ``bool``."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_number(
    name: str,
    value: Any,
    low: float | None = None,
    strict: bool = True,
    *,
    high: float | None = None,
) -> float:
    """``value`` as a finite float; raise unless it is ``> low`` (``>= low`` when not
    ``strict``) and ``<= high``, where given."""
    if not is_number(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (v <= low if strict else v < low):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low}, got {value!r}")
    if high is not None and v > high:
        raise ValueError(f"{name} must be <= {high}, got {value!r}")
    return v


def check_int(name: str, value: Any, low: int = 1, allow_none: bool = False) -> int | None:
    """``value`` as an int ``>= low`` (or None when ``allow_none``); raise otherwise."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(
            f"{name} must be an int >= {low}{' or None' if allow_none else ''}, got {value!r}"
        )
    return int(value)
