"""Least-squares decoders from subspace coordinates to targets."""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_real
from .._stats import as_latent, flat_target
from ..loss._common import check_mapping


def fit_decoders(
    W: dict[str, Tensor],
    Z: Tensor,
    pooled_global: dict[str, Tensor],
    *,
    ridge: float = 0.0,
) -> dict[str, Tensor]:
    """Decoders ``A[q] (k_q, P_q)`` minimising ``||Z_c W_q^T A - Y_c||^2`` (detached).

    Args:
        W: bases ``{q: (k_q, D)}``.
        Z: latents ``(B, D)``.
        pooled_global: targets ``{q: (B, P) or (B, ...)}``.
        ridge: Tikhonov term relative to the coordinates' mean sum of squares:
            ``A = (S^T S + ridge * trace(S^T S) / k * I)^{-1} S^T Y_c`` with ``S = Z_c W_q^T``,
            i.e. ``ridge`` times the mean coordinate variance against the *mean* squared error
            (the ``trace`` term is replaced by 1 when the coordinates are constant, e.g. a batch
            of one; 0: minimum-norm least squares through the pseudo-inverse, which is
            rank-safe on every device, unlike ``torch.linalg.lstsq`` on CUDA).
    """
    ridge = check_real(ridge, "ridge")
    Zt = as_latent(Z)
    Zc = Zt - Zt.mean(0)
    out = {}
    for q in check_mapping(W, "W").keys():
        w = W[q]
        if q not in pooled_global:
            raise KeyError(
                f"pooled_global has no entry for quantity {q!r} of W; its keys are "
                f"{list(pooled_global)}"
            )
        y = flat_target(
            pooled_global[q],
            name=q,
            n_rows=Zt.shape[0],
            device=Zt.device,
            dtype=Zt.dtype,
            arg="pooled_global",
        )
        Yc = y - y.mean(0)
        w = torch.as_tensor(w).detach().to(device=Zt.device, dtype=Zt.dtype)
        if w.ndim != 2 or w.shape[1] != Zt.shape[1]:
            raise ValueError(
                f"W[{q!r}] must be a (k, D={Zt.shape[1]}) basis matching Z, got shape "
                f"{tuple(w.shape)}"
            )
        S = Zc @ w.mT
        if ridge > 0:
            gram = S.mT @ S
            k = gram.shape[0]
            scale = torch.trace(gram) / k  # 1 for constant latents: a ridge, not 1e-39
            lam = ridge * torch.where(scale > 0, scale, torch.ones_like(scale))  # no host sync
            eye = torch.eye(k, dtype=gram.dtype, device=gram.device)
            out[q] = torch.linalg.solve(gram + lam * eye, S.mT @ Yc).detach()
        else:
            out[q] = (torch.linalg.pinv(S) @ Yc).detach()
    return out


__all__ = ["fit_decoders"]
