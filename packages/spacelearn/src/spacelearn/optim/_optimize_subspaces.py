"""Subspace sizing: how many latent directions each quantity needs."""

from __future__ import annotations

from torch import Tensor

from .._checks import warn
from ._spectrum import (
    as_matrix,
    check_targets,
    matrix_modes,
    resolve_threshold,
    warn_unmatched_thresholds,
)


def k_per_q(
    pooled_global: dict[str, Tensor],
    threshold: float | dict[str, float] = 0.90,
    *,
    default_threshold: float | None = None,
    per_quantity: bool = True,
) -> int | dict[str, int]:
    """Smallest number of PCA modes that keeps ``threshold`` of each target's variance.

    Args:
        pooled_global: ``{name: (B,), (B, P) or (B, ...)}``.
        threshold: a fraction in ``(0, 1]`` for all quantities, or ``{name: fraction}``
            (quantities missing from the dict use ``default_threshold``, then 0.90; a dict that
            misses quantities and names unknown ones warns).
        per_quantity: return ``{name: k}`` (default) or the maximum over quantities.

    The spectrum is always the exact one (0.1.0 capped k at 6 on matrices over 100 000
    entries). A constant target gives k=1 with a warning (0.1.0 returned width + 1).
    """
    check_targets(pooled_global, "pooled_global")
    warn_unmatched_thresholds(threshold, default_threshold, list(pooled_global), "threshold", 0.90)
    out = {}
    for name, y in pooled_global.items():
        eta = resolve_threshold(name, threshold, default_threshold, 0.90)
        Y = as_matrix(y, name)
        if bool((Y == Y[:1]).all()):  # exactly: the mean's rounding leaves Y - mean != 0
            warn(f"target {name!r} is constant over the batch; using k=1")
            out[name] = 1
            continue
        out[name] = matrix_modes(Y, eta)
    if per_quantity:
        return out
    return max(out.values())


__all__ = ["k_per_q"]
