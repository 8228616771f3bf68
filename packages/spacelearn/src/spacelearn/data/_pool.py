"""Adaptive pooling of targets to a fixed resolution."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .._checks import numeric_tensor

MODES = ("avg", "mean", "max")


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"Invalid mode: {mode!r}; expected 'avg' (alias 'mean') or 'max'")
    return "avg" if mode == "mean" else mode


def spatial_pool_targets(chunks: Tensor, n_bins: int, mode: str = "avg") -> Tensor:
    """Pool ``(B, C, H, W)`` to ``(B, C, n_bins, n_bins)`` (PyTorch adaptive-pooling bins)."""
    mode = _check_mode(mode)
    if mode == "avg":
        return F.adaptive_avg_pool2d(chunks, int(n_bins))
    return F.adaptive_max_pool2d(chunks, int(n_bins))


def pool_targets(chunks: Tensor, n_bins: int, mode: str = "avg") -> Tensor:
    """Pool ``(B, S)`` to ``(B, n_bins)``."""
    mode = _check_mode(mode)
    x = chunks.unsqueeze(1)
    if mode == "avg":
        return F.adaptive_avg_pool1d(x, int(n_bins)).squeeze(1)
    return F.adaptive_max_pool1d(x, int(n_bins)).squeeze(1)


def pool(chunks: Tensor, n_bins: int, mode: str = "avg") -> Tensor:
    """Pool a 4-D ``(B, C, H, W)`` batch to ``(B, C, n, n)`` or a 2-D ``(B, S)`` batch to ``(B, n)``.

    Args:
        chunks: the target batch (a tensor or array; integer and bool values are pooled as
            float32).
        n_bins: output side ``n`` (4-D) or number of bins (2-D), ``>= 1``.
        mode: ``"avg"`` (alias ``"mean"``) or ``"max"``.

    Raises:
        ValueError: non-numeric ``chunks`` (strings, say), another rank (checked first), a bad
            mode or ``n_bins < 1``.
    """
    chunks = numeric_tensor(chunks, "chunks")
    if not chunks.is_floating_point():  # integer / bool maps: adaptive pooling needs floats
        chunks = chunks.float()
    if chunks.ndim not in (2, 4):
        raise ValueError(
            f"Invalid number of dimensions: {chunks.ndim} (shape {tuple(chunks.shape)}); "
            "expected (B, C, H, W) or (B, S)"
        )
    try:
        ok = not isinstance(n_bins, (bool, str, bytes)) and int(n_bins) == n_bins >= 1
    except (TypeError, ValueError, OverflowError):  # None, a list, NaN, inf
        ok = False
    if not ok:
        raise ValueError(f"n_bins must be a positive int, got {n_bins!r}")
    if chunks.ndim == 4:
        return spatial_pool_targets(chunks, int(n_bins), mode)
    return pool_targets(chunks, int(n_bins), mode)


__all__ = ["pool", "pool_targets", "spatial_pool_targets"]
