"""Isotropy: keep the latent residual outside all subspaces well conditioned."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import util
from .._checks import check_int, warn
from ._common import basis, centred, check_mapping, warn_small_batch, zero_like_graph

ZERO_RESIDUAL_REL = 1e-5
"""A residual with ``||R|| <= ZERO_RESIDUAL_REL * ||Z_c||`` counts as zero: latents inside the
span of the subspaces leave about ``1e-6 * ||Z_c||`` there (the projector's ridge)."""


def _span_projector(W_all: Tensor) -> Tensor:
    """``W^T (W W^T + eps)^{-1} W``: the projector onto the rows' span, also for rows that are
    not mutually orthonormal (gradient-safe: a linear solve, no eigendecomposition)."""
    G = W_all @ W_all.mT
    K = G.shape[0]
    eps = 1e-6 * (torch.trace(G).detach() / K + torch.finfo(G.dtype).tiny)
    G = G + eps * torch.eye(K, dtype=G.dtype, device=G.device)
    return W_all.mT @ torch.linalg.solve(G, W_all)


def _numerically_zero(R: Tensor, Z: Tensor, Zc: Tensor) -> bool:
    """Whether the residual ``R`` is rounding noise: below the centring error of ``Z``
    (``eps * sqrt(B * D) * max|Z|``, in ``Z``'s precision) or the projector's regularisation
    error (``ZERO_RESIDUAL_REL * ||Z_c||``). Its singular values' ratios are then noise, and the
    scale-free loss would have gradients of order 1 / ||R|| (5e7 at collapsed latents)."""
    B, D = Z.shape
    noise = torch.finfo(Z.dtype).eps * math.sqrt(B * D) * Z.abs().amax().to(R.dtype)
    return bool(R.norm() <= torch.maximum(noise, ZERO_RESIDUAL_REL * Zc.norm().to(R.dtype)))


def isotropy_loss(Z: Tensor, W: dict[str, Tensor], n_dir: int = 32) -> Tensor:
    """Squared coefficient of variation of the leading singular values of the residual.

    ``R = Z_c (I - P)`` with ``P`` the projector onto the span of all subspaces; the loss is
    ``mean((s / mean(s) - 1)^2)`` over the ``n`` leading singular values of ``R``, where ``n =
    min(n_dir, min(B - 1, D - rank(W)))``: only directions ``R`` can actually use, so the loss
    reaches 0 for an isotropic residual (0.1.0 counted the projected-out zeros and had a floor).

    Args:
        Z: latents ``(B, D)``.
        W: bases ``{q: (k_q, D)}``.
        n_dir: number of leading singular values (a positive int, numpy ints accepted).

    Returns:
        0-dim tensor on ``Z``'s device and of its dtype; 0 with a warning for ``B < 2`` or a
        numerically zero residual (collapsed latents, or latents inside the span of ``W``),
        where the ratios of singular values are rounding noise.
        float16 / bfloat16 latents (mixed precision) are computed in float32, since the
        decompositions have no half-precision kernels.

    Warns:
        UserWarning: when ``n_dir`` is reduced to the residual dimension, ``B < 2``, or the
            residual is numerically zero.
    """
    n_dir = check_int(n_dir, "n_dir")
    check_mapping(W, "W")
    if warn_small_batch(Z, "isotropy_loss"):
        return zero_like_graph(Z)
    Zc = centred(Z)
    if Zc.dtype not in (torch.float32, torch.float64):  # no half-precision decompositions
        Zc = Zc.float()
    B, D = Zc.shape
    if W:
        W_all = torch.cat([basis(w, Zc, f"W[{q!r}]") for q, w in W.items()], dim=0)
        with torch.no_grad():
            used = int(torch.linalg.matrix_rank(W_all.detach().to(torch.float64)))
        R = Zc - Zc @ _span_projector(W_all)
    else:
        used = 0
        R = Zc
    available = min(B - 1, D - used)
    if available < 1:
        return zero_like_graph(Z)
    if _numerically_zero(R.detach(), Z.detach(), Zc.detach()):
        warn(
            "isotropy_loss: the latent residual outside the subspaces is numerically zero "
            "(collapsed or repeated latents, or latents inside span(W)); its isotropy is "
            "undefined, returning 0"
        )
        return zero_like_graph(Z)
    n = min(n_dir, available)
    if n < n_dir:
        warn(
            f"isotropy_loss: n_dir={n_dir} exceeds the residual dimension min(B-1={B - 1}, "
            f"D-rank(W)={D - used}); using the {n} leading singular values"
        )
    try:
        s = util.singular_values(R, rank=n)[:n]
    except torch.linalg.LinAlgError as exc:  # e.g. SVD "failed to converge": say why
        if not bool(torch.isfinite(R.detach()).all()):
            raise ValueError(
                "isotropy_loss: Z (or W) contains NaN or infinite values; the residual's "
                "singular values are undefined (a diverged encoder?)"
            ) from exc
        raise
    # no absolute epsilon (it made the loss depend on the latents' units): the residual is
    # not numerically zero here, so mean(s) > 0
    s_n = s / s.mean().clamp_min(torch.finfo(s.dtype).tiny)
    return torch.mean((s_n - 1.0) ** 2).to(Z.dtype)


__all__ = ["isotropy_loss"]
