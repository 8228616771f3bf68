"""Stability: penalise subspace movement between re-solves."""

from __future__ import annotations

import torch
from torch import Tensor


def stability_loss(
    W: dict[str, Tensor], W_prev: dict[str, Tensor] | None, *, invariant: bool = True
) -> Tensor:
    """Mean over quantities of the distance between ``W[q]`` and ``W_prev[q]``.

    Args:
        W: current bases ``{q: (k_q, D)}``.
        W_prev: previous bases, or ``None`` (the loss is 0).
        invariant: ``True`` (default): projector distance ``||W^T W - W'^T W'||_F^2 = 2 sum
            sin^2(principal angles)`` for orthonormal rows: blind to sign flips and rotations
            inside the subspace, and defined when ``k`` changed. ``False``: the 0.1.0 raw
            elementwise ``||W - W'||_F^2`` (a sign flip of one row costs 4).

    Note:
        With ``W`` and ``W_prev`` both solved (constants), this term has no gradient; it only
        acts when ``W`` is a trainable parameter.
    """
    if W_prev is None or not W:
        first = next(iter(W.values()), None) if W else None
        device = first.device if isinstance(first, Tensor) else None
        return torch.zeros((), device=device)
    first = next(iter(W.values()))
    total = torch.zeros((), device=first.device, dtype=first.dtype)
    for q, w in W.items():
        wp = W_prev[q].to(device=w.device, dtype=w.dtype)
        if invariant:
            total = total + (w.mT @ w - wp.mT @ wp).pow(2).sum()
        else:
            total = total + (w - wp).pow(2).sum()
    return total / len(W)


__all__ = ["stability_loss"]
