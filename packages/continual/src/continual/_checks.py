"""Argument checks shared by the trainer, the strategies and the memory."""

from __future__ import annotations

import math
import numbers
from typing import Any


def check_number(
    name: str, value: Any, *, positive: bool = False, upper: float | None = None
) -> None:
    """Raise unless ``value`` is a finite real number ``>= 0`` (``> 0`` when ``positive``) and
    ``<= upper`` when ``upper`` is given."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0) or (upper is not None and value > upper):
        bound = "> 0" if positive else ">= 0"
        if upper is not None:
            bound = f"in {'(' if positive else '['}0, {upper:g}]"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


def check_count(name: str, value: Any, *, none_ok: bool = False, minimum: int = 1) -> None:
    """Raise unless ``value`` is an integer ``>= minimum`` (or None when ``none_ok``)."""
    if value is None and none_ok:
        return
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        accepted = f"an integer >= {minimum}" + (" or None" if none_ok else "")
        raise ValueError(f"{name} must be {accepted}, got {value!r}")
