"""Exact SVD backend (``torch.linalg.svd`` / ``svdvals``)."""

from __future__ import annotations

import torch
from torch import Tensor


def _pad(S: Tensor, size: int) -> Tensor:
    if S.shape[-1] >= size:
        return S
    pad = torch.zeros(*S.shape[:-1], size - S.shape[-1], dtype=S.dtype, device=S.device)
    return torch.cat([S, pad], dim=-1)


def svd_left(A: Tensor, rank: int, complete: bool = False) -> tuple[Tensor, Tensor]:
    """Left singular vectors ``U (..., m, rank)`` and values ``S (..., rank)``."""
    U, S, _ = torch.linalg.svd(A, full_matrices=complete)
    if complete:
        return U, _pad(S, U.shape[-1])
    return U[..., :rank], S[..., :rank]


def svd_right(A: Tensor, rank: int, complete: bool = False) -> tuple[Tensor, Tensor]:
    """Right singular vectors as rows ``Vh (..., rank, n)`` and values ``S (..., rank)``."""
    _, S, Vh = torch.linalg.svd(A, full_matrices=complete)
    if complete:
        return Vh, _pad(S, Vh.shape[-2])
    return Vh[..., :rank, :], S[..., :rank]


def svd_full(A: Tensor, rank: int) -> tuple[Tensor, Tensor, Tensor]:
    """Reduced factorization ``U (..., m, rank)``, ``S (..., rank)``, ``Vh (..., rank, n)``."""
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    return U[..., :rank], S[..., :rank], Vh[..., :rank, :]


def svd_values(A: Tensor, rank: int) -> Tensor:
    """Singular values ``(..., rank)``, descending (gradient-safe: no singular vectors).

    A wide ``A`` is decomposed as ``A^T`` (the same values): torch's CPU ``svdvals`` of a wide
    matrix is about 6x slower (``(128, 40000)`` or ``(256, 4096)`` float32, one thread).
    """
    if A.shape[-2] < A.shape[-1]:
        A = A.mT
    return torch.linalg.svdvals(A)[..., :rank]
