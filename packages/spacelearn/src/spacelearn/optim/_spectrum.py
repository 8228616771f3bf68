"""Sample-space PCA spectrum of a target (shared by the sizing functions)."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import util


def resolve_threshold(name, thresholds, default_threshold, fallback: float) -> float:
    """Threshold of quantity ``name``: its dict entry, else ``default_threshold``, else a scalar
    ``thresholds``, else ``fallback`` (the 0.1.0 resolution order)."""
    if isinstance(thresholds, dict) and name in thresholds:
        value = thresholds[name]
    elif default_threshold is not None:
        value = default_threshold
    elif thresholds is not None and not isinstance(thresholds, dict):
        value = thresholds
    else:
        value = fallback
    value = float(value)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"variance threshold for {name!r} must be in (0, 1], got {value!r}")
    return value


def as_matrix(y: Tensor) -> Tensor:
    y = torch.as_tensor(y)
    if not y.is_floating_point():
        y = y.float()
    if y.ndim == 0:
        raise ValueError("a target must have a batch dimension, got a scalar")
    return y.reshape(-1, 1) if y.ndim == 1 else y.flatten(1)


def n_modes(y: Tensor, threshold: float) -> int:
    """``#(cumvar < threshold) + 1``, capped at the number of components (exact spectrum)."""
    Y = as_matrix(y)
    Yc = Y - Y.mean(0)
    s = util.singular_values(Yc.detach())
    energy = s.double() ** 2
    total = energy.sum()
    if total <= 0:
        return 1
    cumvar = torch.cumsum(energy, 0) / total
    return min(int((cumvar < threshold).sum()) + 1, int(s.shape[0]))
