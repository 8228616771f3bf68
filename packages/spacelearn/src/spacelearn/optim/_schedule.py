"""When to re-solve the subspaces during training."""

from __future__ import annotations

import math
import numbers


def resolve_epochs(n_epochs: int, *, first_gap: int = 1, growth: float = 2.0) -> list[int]:
    """Epochs at which to re-solve, with gaps growing geometrically (0, 1, 3, 7, 15, ...).

    The README of 0.1.0 recommends re-solving often early and rarely later; this is that
    schedule. ``growth=1`` gives a fixed period ``first_gap``.
    """
    if isinstance(n_epochs, bool) or not isinstance(n_epochs, numbers.Integral) or n_epochs < 1:
        raise ValueError(f"n_epochs must be an int >= 1, got {n_epochs!r}")
    if (
        isinstance(first_gap, bool)
        or not isinstance(first_gap, numbers.Real)
        or not 1 <= first_gap < math.inf
    ):
        raise ValueError(f"first_gap must be a finite number >= 1, got {first_gap!r}")
    if (
        isinstance(growth, bool)
        or not isinstance(growth, numbers.Real)
        or not 1.0 <= growth < math.inf
    ):
        raise ValueError(f"growth must be a finite number >= 1, got {growth!r}")
    epochs, epoch, gap = [], 0, float(first_gap)
    while epoch < n_epochs:
        epochs.append(epoch)
        epoch += max(int(round(gap)), 1)
        gap *= growth
    return epochs


__all__ = ["resolve_epochs"]
