"""Alignment: decode every quantity from its own subspace."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import numeric_tensor, warn
from ._common import basis, centred, check_mapping, entry, flat, warn_small_batch, zero_like_graph

NORMALIZE_REL_FLOOR = float(torch.finfo(torch.float32).eps)
"""``alignment_loss(..., normalize=True)`` divides by ``var(Y_q) + NORMALIZE_REL_FLOOR *
mean(Y_q^2)``: a target whose batch standard deviation is below about ``sqrt(1.2e-7) = 3.5e-4``
of its magnitude (noise around a constant) is measured against its magnitude, not its noise."""


def _stats_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


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
            ``1 - R^2`` per quantity and quantities of different units weigh the same. The
            variance has a floor relative to the target's scale, ``var + 1.2e-7 * mean(Y^2)``
            (``NORMALIZE_REL_FLOOR``, float32's machine epsilon): the loss is unchanged by
            rescaling a target, negligibly changed for any target with real variation, and a
            (nearly) constant target, whose R^2 is undefined, cannot blow the term up by its
            tiny variance (float32 noise of variance 1e-10 made it ~1e10). Such a target is measured
            against its magnitude instead; an all-zero target (no scale at all) contributes 0.
            Both warn on the CPU (on a GPU the check would cost a host synchronisation per
            training step, so it is skipped there; :func:`spacelearn.decoding_r2` gives NaN
            for constant targets). Gradients stay finite.

    Returns:
        0-dim tensor on ``Z``'s device. ``W``, ``A``, ``Y`` follow ``Z``'s device and dtype.

    Warns:
        UserWarning: ``B < 2`` (returns 0); with ``normalize`` and CPU tensors, a target whose
            batch variance is at or below the floor (constant or nearly constant over the batch).
    """
    check_mapping(W, "W")
    if warn_small_batch(Z, "alignment_loss"):
        return zero_like_graph(Z)
    Zc = centred(Z)
    total = zero_like_graph(Z)
    flags: dict[str, Tensor] = {}
    for q in W:
        w = basis(W[q], Zc, f"W[{q!r}]")
        a = basis(numeric_tensor(entry(A, q, "A"), f"A[{q!r}]"), Zc)
        target = entry(Y, q, "Y")
        y = flat(target, Zc, f"Y[{q!r}]")
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
            # statistics of the target as given (not cast to half latents), in float32 / 64
            dtype = _stats_dtype(Zc.dtype)
            ys = y if y.dtype == dtype else flat(target, Zc.new_empty(0, dtype=dtype))
            var = (ys - ys.mean(0, keepdim=True)).pow(2).mean()
            floor = NORMALIZE_REL_FLOOR * ys.pow(2).mean()
            denom = var + floor
            scaled = err.to(denom.dtype) / torch.where(denom > 0, denom, torch.ones_like(denom))
            # an all-zero target has no scale: 0, connected to the graph, finite gradient
            err = torch.where(denom > 0, scaled, scaled * 0).to(err.dtype)
            flags[q] = var <= floor
        total = total + err
    if flags and Zc.device.type == "cpu":  # on a GPU the check would sync every step
        _warn_constant(flags)
    return total / max(len(W), 1)


def _warn_constant(flags: dict[str, Tensor]) -> None:
    """Warn about (nearly) constant targets (reads the flags on the host)."""
    hit = torch.stack(list(flags.values())).tolist()
    names = [q for q, h in zip(flags, hit, strict=True) if h]
    if names:
        warn(
            f"alignment_loss(normalize=True): targets {names} are constant or nearly constant "
            f"over the batch (variance <= {NORMALIZE_REL_FLOOR:.3g} * mean square); R^2 is "
            "undefined there, so their error is measured against their magnitude (an all-zero "
            "target contributes 0). Remove constant quantities or standardise targets."
        )


__all__ = ["alignment_loss"]
