"""Sample-space PCA spectrum of a target (shared by the sizing functions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from .. import util
from .._checks import numeric_tensor, warn


def resolve_threshold(name, thresholds, default_threshold, fallback: float) -> float:
    """Threshold of quantity ``name``: its dict entry, else ``default_threshold``, else a scalar
    ``thresholds``, else ``fallback`` (the 0.1.0 resolution order)."""
    if isinstance(thresholds, Mapping) and name in thresholds:
        value = thresholds[name]
    elif default_threshold is not None:
        value = default_threshold
    elif thresholds is not None and not isinstance(thresholds, Mapping):
        value = thresholds
    else:
        value = fallback
    try:
        number = float("nan") if isinstance(value, (bool, str, bytes)) else float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not 0.0 < number <= 1.0:
        raise ValueError(f"variance threshold for {name!r} must be in (0, 1], got {value!r}")
    return number


def warn_unmatched_thresholds(
    thresholds: Any, default_threshold: float | None, names: list[str], arg: str, fallback: float
) -> None:
    """Warn when a threshold dict misses quantities *and* names unknown ones (a misspelt key
    would otherwise fall back to ``fallback`` silently)."""
    if not isinstance(thresholds, Mapping) or default_threshold is not None:
        return
    missing = [q for q in names if q not in thresholds]
    unknown = [q for q in thresholds if q not in names]
    if missing and unknown:
        warn(
            f"{arg} has no entry for quantities {missing} (they use the fallback {fallback}) "
            f"but has entries {unknown} that match no quantity; check the names"
        )


def check_targets(targets, name: str) -> None:
    """``targets`` must be a non-empty dict ``{quantity: tensor}``."""
    if not isinstance(targets, Mapping):
        raise TypeError(f"{name} must be a dict {{name: tensor}}, got {type(targets).__name__}")
    if len(targets) == 0:
        raise ValueError(f"{name} is an empty dict; give at least one quantity")


def as_matrix(y: Tensor, name: str = "target") -> Tensor:
    """``(B, P)`` view of a target (float64 kept, anything else float32); it must have samples,
    features and finite values."""
    y = numeric_tensor(y, f"target {name!r}")
    if y.dtype != torch.float64:  # integers, bool and half precision: the spectrum in float32
        y = y.float()
    if y.ndim == 0:
        raise ValueError(f"target {name!r} must have a batch dimension, got a scalar")
    Y = y.reshape(-1, 1) if y.ndim == 1 else y.flatten(1)
    if Y.numel() == 0:
        raise ValueError(f"target {name!r} is empty (shape {tuple(y.shape)})")
    if not bool(torch.isfinite(Y).all()):
        raise ValueError(f"target {name!r} contains NaN or infinite values")
    return Y


def n_modes(y: Tensor, threshold: float, name: str = "target") -> int:
    """``#(cumvar < threshold) + 1``, at most the numerical rank of the centred target.

    ``cumvar`` is over the whole spectrum, as scikit-learn's ``PCA(n_components=threshold)``.
    Singular values below ``max(s) * max(B, P) * eps`` (the numerical-rank tolerance) only cap
    the result, so ``threshold=1.0`` gives the rank in every solver mode: that tolerance grows
    with ``B`` (1.2% of ``max(s)`` for 100 000 float32 rows) and would drop real variance.
    """
    return matrix_modes(as_matrix(y, name), threshold)


def matrix_modes(Y: Tensor, threshold: float) -> int:
    """:func:`n_modes` of a ``(B, P)`` matrix already checked by :func:`as_matrix`."""
    Yc = Y - Y.mean(0)
    s = util.singular_values(Yc.detach())
    if s.numel() == 0 or float(s.max()) <= 0:
        return 1
    rank = int((s > s.max() * (max(Yc.shape) * torch.finfo(s.dtype).eps)).sum())
    cum = torch.cumsum(s.double() ** 2, 0)
    cumvar = cum / cum[-1]
    return min(int((cumvar < threshold).sum()) + 1, max(rank, 1))  # s.max() > 0: rank >= 1
