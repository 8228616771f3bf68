"""Pooling resolution: how many bins keep enough of each target's variance."""

from __future__ import annotations

import logging
import math

from torch import Tensor

from .._checks import check_int
from ._spectrum import check_targets, n_modes, resolve_threshold, warn_unmatched_thresholds

logger = logging.getLogger("spacelearn")


def optimal_bins(
    pooled_targets_coarse: dict[str, Tensor],
    max_bins: int = 16,
    variance_threshold: float | dict[str, float] = 0.95,
    *,
    default_threshold: float | None = None,
    per_quantity: bool = False,
) -> int | dict[str, int]:
    """Grid side ``n = clamp(ceil(sqrt(m)), 2, max_bins)`` from the number of PCA modes ``m``.

    ``m`` is the number of sample-space PCA modes that keep ``variance_threshold`` of the
    target's variance (so it depends on the number of samples, at most ``B - 1``), and ``n * n``
    bins are enough to hold that many modes. The spectrum is always exact (0.1.0's automatic
    low-rank path capped n at 3). 1-D targets are accepted. A threshold dict that misses
    quantities (they fall back to 0.95) and names unknown ones (a misspelt key) warns. Each
    result is logged at INFO level on the ``spacelearn`` logger, never printed.

    Returns:
        the maximum over quantities, or ``{name: n}`` with ``per_quantity=True``.
    """
    max_bins = check_int(max_bins, "max_bins", low=2)
    check_targets(pooled_targets_coarse, "pooled_targets_coarse")
    warn_unmatched_thresholds(
        variance_threshold,
        default_threshold,
        list(pooled_targets_coarse),
        "variance_threshold",
        0.95,
    )
    out = {}
    for name, y in pooled_targets_coarse.items():
        eta = resolve_threshold(name, variance_threshold, default_threshold, 0.95)
        modes = n_modes(y, eta, name)
        out[name] = min(max(math.ceil(math.sqrt(modes)), 2), max_bins)
        logger.info("  [%s] %d modes (eta=%.2f) -> n_bins=%d", name, modes, eta, out[name])
    if per_quantity:
        return out
    return max(out.values())


__all__ = ["optimal_bins"]
