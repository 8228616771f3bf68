"""``input_to_quantity``: compute quantities and pool them in one call."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from .._checks import numeric_tensor
from ._compute_Q import compute_Q
from ._pool import pool


def input_to_quantity(
    n_bins: int, mode: str, *arg_functions: Callable, **kwarg_functions: Callable
) -> Callable[..., dict[str, Tensor]]:
    """``compute_Q(...)`` followed by ``pool(result, n_bins, mode)`` on every output.

    Example: ``input_to_quantity(8, "avg", A=helper_a, B=helper_b)(samples=batch)``.
    ``mode`` is ``"avg"`` (alias ``"mean"``) or ``"max"``; a bad mode raises ``ValueError``
    when the helper is called (as in 0.1.0). A function whose output is not ``(B, C, H, W)`` or
    ``(B, S)`` is a ``ValueError`` naming its quantity.
    """
    compute = compute_Q(*arg_functions, **kwarg_functions)

    def wrapped(**kwargs) -> dict[str, Tensor]:
        out = {}
        for name, value in compute(**kwargs).items():
            shape = tuple(numeric_tensor(value, f"quantity {name!r}").shape)
            if len(shape) not in (2, 4):  # pool's message would not say which function
                raise ValueError(
                    f"Invalid number of dimensions: quantity {name!r} returned shape {shape}; "
                    "pooling needs (B, C, H, W) or (B, S)"
                )
            out[name] = pool(value, n_bins, mode)
        return out

    return wrapped


__all__ = ["input_to_quantity"]
