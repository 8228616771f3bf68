"""Disentanglement: decorrelate the coordinates of different subspaces."""

from __future__ import annotations

import logging
import warnings

import torch
from torch import Tensor

from ._common import basis, centred, check_mapping, warn_small_batch, zero_like_graph

logger = logging.getLogger("spacelearn")


def _standardised(S: Tensor, scale: Tensor) -> Tensor:
    """Coordinates over their standard deviation ``+ 1e-8 * scale`` (the latents' RMS), so the
    correlations do not depend on the latents' units."""
    Sc = S - S.mean(0, keepdim=True)
    var = Sc.pow(2).mean(0, keepdim=True)
    # clamp before the sqrt: a constant coordinate (duplicate points) has a zero, not NaN, gradient
    return Sc / (var.clamp_min(torch.finfo(var.dtype).tiny).sqrt() + 1e-8 * scale)


def disentanglement_loss(Z: Tensor, W: dict[str, Tensor]) -> Tensor:
    """Mean over quantity pairs ``i < j`` of ``||Corr(S_i, S_j)||_F^2 / k_i``.

    ``S_q = Z_c W_q^T`` and ``Corr`` is the ``(k_i, k_j)`` matrix of Pearson correlations between
    the coordinates (population statistics, so identical subspaces with uncorrelated
    coordinates give exactly 1 and independent ones give about 0; each standard deviation gets
    ``1e-8`` times the latents' RMS, so the value does not depend on the latents' units).
    Returns 0 with fewer than two quantities, and 0 with a warning for ``B < 2`` (0.1.0 returned
    NaN); a pair involving an empty ``(0, D)`` basis contributes 0.
    """
    names = list(check_mapping(W, "W"))
    if len(names) < 2:
        return zero_like_graph(Z)
    if warn_small_batch(Z, "disentanglement_loss"):
        return zero_like_graph(Z)
    Zc = centred(Z)
    B = Zc.shape[0]
    # the latents' RMS (in float32 at least: half-precision squares overflow), 1 for constant
    # latents, without a host sync
    rms = Zc.detach().to(torch.promote_types(Zc.dtype, torch.float32)).pow(2).mean().sqrt()
    rms = rms.to(Zc.dtype)
    scale = torch.where(rms > 0, rms, torch.ones_like(rms))
    coords = {q: _standardised(Zc @ basis(W[q], Zc, f"W[{q!r}]").mT, scale) for q in names}
    total = zero_like_graph(Z)
    pairs = 0
    for i, qi in enumerate(names):
        for qj in names[i + 1 :]:
            corr = coords[qi].mT @ coords[qj] / B
            # an empty (0, D) basis has no coordinates to correlate: 0, not 0 / 0 = NaN
            total = total + corr.pow(2).sum() / max(coords[qi].shape[1], 1)
            pairs += 1
    return total / pairs


def disentanglement_loss_original(Z: Tensor, W: dict[str, Tensor]) -> Tensor:
    """The first 0.1.0 variant, kept for comparison: ``mean(Corr^2)`` per pair.

    Deprecated: it divides by the standard deviation without centring first. Unlike 0.1.0 it
    does not print (0.1.0's ``[disentanglement] n_pairs=...`` line is logged at INFO level on the
    ``spacelearn`` logger); it warns that :func:`disentanglement_loss` should be used instead.
    """
    warnings.warn(
        "disentanglement_loss_original is kept for comparison only; use disentanglement_loss",
        DeprecationWarning,
        stacklevel=2,
    )
    names = list(W)
    if len(names) < 2:
        return zero_like_graph(Z)
    total = zero_like_graph(Z)
    pairs = 0
    for i, qi in enumerate(names):
        Si = Z @ basis(W[qi], Z).mT
        Si = Si / (Si.std(0, keepdim=True) + 1e-8) if Z.shape[0] > 1 else Si
        for qj in names[i + 1 :]:
            Sj = Z @ basis(W[qj], Z).mT
            Sj = Sj / (Sj.std(0, keepdim=True) + 1e-8) if Z.shape[0] > 1 else Sj
            corr = Si.mT @ Sj / Z.shape[0]
            total = total + torch.mean(corr**2)
            pairs += 1
    logger.info("[disentanglement] n_pairs=%d", pairs)
    return total / pairs


__all__ = ["disentanglement_loss", "disentanglement_loss_original"]
