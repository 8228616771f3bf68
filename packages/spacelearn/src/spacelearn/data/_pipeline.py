"""``input_to_quantity``: compute quantities and pool them in one call."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from ._compute_Q import compute_Q
from ._pool import pool


def input_to_quantity(
    n_bins: int, mode: str, *arg_functions: Callable, **kwarg_functions: Callable
) -> Callable[..., dict[str, Tensor]]:
    """``compute_Q(...)`` followed by ``pool(result, n_bins, mode)`` on every output.

    Example: ``input_to_quantity(8, "avg", A=helper_a, B=helper_b)(samples=batch)``.
    ``mode`` is ``"avg"`` (alias ``"mean"``) or ``"max"``; a bad mode raises ``ValueError``
    when the helper is called (as in 0.1.0).
    """
    compute = compute_Q(*arg_functions, **kwarg_functions)

    def wrapped(**kwargs) -> dict[str, Tensor]:
        return {name: pool(value, n_bins, mode) for name, value in compute(**kwargs).items()}

    return wrapped


__all__ = ["input_to_quantity"]
