"""Alignment: decode every quantity from its own subspace."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ._common import basis, centred, entry, flat, warn_small_batch, zero_like_graph


def alignment_loss(
    Z: Tensor,
    W: dict[str, Tensor],
    A: dict[str, Tensor],
    Y: dict[str, Tensor],
    *,
    normalize: bool = False,
) -> Tensor:
    """Mean over quantities of ``mse(Z_c W_q^T A_q, Y_c)`` (batch-centred latents and targets).

    Args:
        Z: latents ``(B, D)``.
        W: bases ``{q: (k_q, D)}`` (the quantities iterated are ``W``'s keys).
        A: decoders ``{q: (k_q, P_q)}``.
        Y: targets ``{q: (B, P_q) or (B, ...)}``.
        normalize: divide each quantity's error by its batch target variance, so the term is
            ``1 - R^2`` per quantity and quantities of different units weigh the same.

    Returns:
        0-dim tensor on ``Z``'s device. ``W``, ``A``, ``Y`` follow ``Z``'s device and dtype.
    """
    if warn_small_batch(Z, "alignment_loss"):
        return zero_like_graph(Z)
    Zc = centred(Z)
    total = zero_like_graph(Z)
    for q in W:
        w = basis(W[q], Zc, f"W[{q!r}]")
        a = basis(entry(A, q, "A"), Zc)
        y = flat(entry(Y, q, "Y"), Zc)
        if y.shape[0] != Zc.shape[0]:
            raise ValueError(f"Y[{q!r}] has {y.shape[0]} rows but Z has {Zc.shape[0]}")
        if a.shape != (w.shape[0], y.shape[1]):
            raise ValueError(
                f"A[{q!r}] must be (k={w.shape[0]}, P={y.shape[1]}) to decode W[{q!r}] onto "
                f"Y[{q!r}], got shape {tuple(a.shape)}"
            )
        Yhat = Zc @ w.mT @ a
        Yc = y - y.mean(0, keepdim=True)
        err = F.mse_loss(Yhat, Yc)
        if normalize:
            err = err / (Yc.pow(2).mean() + 1e-12)
        total = total + err
    return total / max(len(W), 1)


__all__ = ["alignment_loss"]
