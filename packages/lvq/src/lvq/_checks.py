"""Argument checks shared by the distances, losses, neighbourhoods and models."""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import blockops
import numpy as np
import torch


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


def check_callbacks(callbacks: Any) -> None:
    """Raise unless ``callbacks`` is None or a list of objects with the three hooks."""
    if callbacks is None:
        return
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(
            f"callbacks must be a list of Callback objects, got {type(callbacks).__name__}"
        )
    for i, cb in enumerate(callbacks):
        missing = [
            h
            for h in ("on_fit_start", "on_iteration_end", "on_fit_end")
            if not callable(getattr(cb, h, None))
        ]
        if missing:
            raise TypeError(
                f"callbacks[{i}] must be a Callback (an object with on_fit_start, "
                f"on_iteration_end and on_fit_end), got {type(cb).__name__} without {missing}"
            )


def seeded_generator(name: str, seed: Any, device: str | torch.device = "cpu") -> torch.Generator:
    """``blockops.make_generator(seed, device)`` whose errors name the model's ``name``."""
    try:
        return blockops.make_generator(seed, device=device)
    except (TypeError, ValueError) as exc:
        raise type(exc)(str(exc).replace("random_state", name, 1)) from exc


def check_int(name: str, value: Any, low: int = 1, allow_none: bool = False) -> int | None:
    """``value`` as an int ``>= low`` (or None when ``allow_none``); raise otherwise."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(
            f"{name} must be an int >= {low}{' or None' if allow_none else ''}, got {value!r}"
        )
    return int(value)


def load_platform(platform: Any, device: Any) -> Any:
    """The device a ``load`` call asks for: ``platform`` (the name DESIGN.md uses) or its
    keyword alias ``device``; ``"auto"`` when neither is given.

    Raises :class:`TypeError` when both are given with different values.
    """
    if platform is None:
        return "auto" if device is None else device
    if device is not None and str(device).strip().lower() != str(platform).strip().lower():
        raise TypeError(
            f"load got platform={platform!r} and device={device!r}; they are the same "
            "option, pass only one"
        )
    return platform


def resolve_load_device(saved: Any, requested: Any) -> tuple[torch.device, Any]:
    """Where a loaded model goes, and the ``device`` parameter it gets.

    ``requested="auto"`` keeps the saved ``device`` parameter when this machine has that
    device; otherwise (a model trained on a GPU this machine lacks) it warns and the model goes
    to the best device here, with ``device="auto"`` so that a refit works too. Any other request
    is honoured, falling back to the CPU with a warning when it is not available.
    """
    if isinstance(requested, str) and requested.strip().lower() == "auto":
        try:
            return blockops.resolve_device(saved), saved
        except (ValueError, TypeError):
            dev = blockops.resolve_device("auto")
            warnings.warn(
                f"the model was saved with device={saved!r}, which is not available here; "
                f"loading on {str(dev)!r} with device='auto'",
                stacklevel=3,
            )
            return dev, "auto"
    try:
        dev = blockops.resolve_device(requested, name="device")
    except ValueError:
        warnings.warn(f"device {requested!r} is not available; loading on the CPU", stacklevel=3)
        dev = torch.device("cpu")
    return dev, str(dev)
