"""Argument checks shared by the solvers."""

from __future__ import annotations

import operator


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
