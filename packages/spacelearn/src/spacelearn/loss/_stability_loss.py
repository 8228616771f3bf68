"""Stability: penalise subspace movement between re-solves."""

from __future__ import annotations

from functools import reduce

import torch
from torch import Tensor

from .._checks import numeric_tensor
from ._common import check_mapping, entry, zero_like_graph


def _check_pair(w: Tensor, wp: Tensor, q: str, invariant: bool) -> None:
    """``W_prev[q]`` must span the same latent space as ``W[q]`` (and match its shape for the
    elementwise 0.1.0 distance)."""
    if w.ndim != 2:
        raise ValueError(f"W[{q!r}] must be a (k, D) basis, got shape {tuple(w.shape)}")
    if wp.ndim != 2 or wp.shape[1] != w.shape[1]:
        raise ValueError(
            f"W_prev[{q!r}] must be a (k, D={w.shape[-1]}) basis like W[{q!r}], got shape "
            f"{tuple(wp.shape)}"
        )
    if not invariant and wp.shape != w.shape:
        raise ValueError(
            f"invariant=False compares W[{q!r}] and W_prev[{q!r}] elementwise and needs equal "
            f"shapes, got {tuple(w.shape)} and {tuple(wp.shape)}; use invariant=True when k changed"
        )


def _floating(dtype: torch.dtype) -> torch.dtype:
    """``dtype`` if it is floating, else the default float dtype."""
    return dtype if dtype.is_floating_point else torch.get_default_dtype()


def stability_loss(
    W: dict[str, Tensor], W_prev: dict[str, Tensor] | None, *, invariant: bool = True
) -> Tensor:
    """Mean over quantities of the distance between ``W[q]`` and ``W_prev[q]``.

    Args:
        W: current bases ``{q: (k_q, D)}``.
        W_prev: previous bases, or ``None``: the loss is a 0 of ``W``'s dtype and device that
            stays in ``W``'s autograd graph.
        invariant: ``True`` (default): projector distance ``||W^T W - W'^T W'||_F^2 = 2 sum
            sin^2(principal angles)`` for orthonormal rows: blind to sign flips and rotations
            inside the subspace, and defined when ``k`` changed. ``False``: the 0.1.0 raw
            elementwise ``||W - W'||_F^2`` (a sign flip of one row costs 4).

    Note:
        With ``W`` and ``W_prev`` both solved (constants), this term has no gradient; it only
        acts when ``W`` is a trainable parameter.
    """
    W = {q: numeric_tensor(w, f"W[{q!r}]") for q, w in check_mapping(W, "W").items()}
    if not W:
        return torch.zeros(())
    if W_prev is None:  # 0 of W's dtype and device, in the graph of every W[q]
        return reduce(torch.add, (zero_like_graph(w) for w in W.values()))
    first = next(iter(W.values()))
    total = torch.zeros((), device=first.device, dtype=_floating(first.dtype))
    for q, w in W.items():
        wp = numeric_tensor(entry(W_prev, q, "W_prev"), f"W_prev[{q!r}]")
        # integer bases (hand-written lists) are compared in floating point, not truncated
        dtype = w.dtype if w.is_floating_point() else _floating(wp.dtype)
        w, wp = w.to(dtype), wp.to(device=w.device, dtype=dtype)
        _check_pair(w, wp, q, invariant)
        if invariant:
            total = total + (w.mT @ w - wp.mT @ wp).pow(2).sum()
        else:
            total = total + (w - wp).pow(2).sum()
    return total / len(W)


__all__ = ["stability_loss"]
