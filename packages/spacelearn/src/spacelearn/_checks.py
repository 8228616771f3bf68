"""Argument checks and warnings shared by the solvers and losses."""

from __future__ import annotations

import math
import operator
import sys
import warnings

import torch
from torch import Tensor


def check_int(value: object, name: str, *, low: int = 1, or_none: bool = False) -> int:
    """``value`` as an int (numpy and 0-d integer tensors accepted) if it is ``>= low``.

    Raises:
        ValueError: naming ``name``, for a bool, a non-integer or a value below ``low``
            (``or_none`` only adds "or None" to the message; ``None`` is the caller's case).
    """
    try:
        out = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        out = None
    if out is None or out < low:
        kind = "a positive int" if low == 1 else f"an int >= {low}"
        raise ValueError(f"{name} must be {kind}{' or None' if or_none else ''}, got {value!r}")
    return out


def check_real(value: object, name: str, *, low: float = 0.0, high: float = math.inf) -> float:
    """``value`` as a float if it is a number in ``[low, high)`` (finite).

    Raises:
        ValueError: naming ``name``, for a bool, a string, a non-number, NaN, inf or a value
            out of range.
    """
    try:
        out = math.nan if isinstance(value, (bool, str, bytes)) else float(value)
    except (TypeError, ValueError):
        out = math.nan
    if not (low <= out < high and math.isfinite(out)):
        upper = "" if high == math.inf else f" and < {high}"
        raise ValueError(f"{name} must be a finite number >= {low}{upper}, got {value!r}")
    return out


def numeric_tensor(value: object, name: str) -> Tensor:
    """``value`` as a tensor (``torch.as_tensor``: a tensor is returned as is, numpy dtypes kept,
    read-only numpy arrays copied).

    Raises:
        ValueError: naming ``name``, for anything torch cannot read as numbers (strings,
            objects, ``None``, ragged nested lists), instead of torch's message that names
            nothing (``blockops.as_tensor`` raises the same for latents).
    """
    if isinstance(value, Tensor):
        return value
    flags = getattr(value, "flags", None)
    if flags is not None and not getattr(flags, "writeable", True):
        value = value.copy()  # torch warns on (and would alias) read-only numpy memory, e.g. mmaps
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"{name} must be numeric (a tensor, a numpy array or nested lists of numbers), got "
            f"{type(value).__name__}: {exc}"
        ) from None


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first caller outside ``spacelearn``.

    A fixed ``stacklevel`` points into the library whenever the check runs a few calls deep
    (``solve_subspaces`` -> ``SubspaceAccumulator.solve`` -> ...), which hides the user's line
    and defeats per-module warning filters.
    """
    frame, level = sys._getframe(1), 2  # level 2: the caller of warn()
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == __package__:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
