"""Eigendecomposition backend: ``eigh`` of the Gram matrix.

Fixed against 0.1.0: eigenvalues are clamped before every square root, and the square root has
a zero gradient below a relative tolerance, so rank-deficient inputs give neither NaN values nor
NaN gradients. Every function returns ``min(m, n)`` components, like the SVD backend.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _tolerance(evals: Tensor, size: int) -> Tensor:
    top = evals.detach().abs().amax(dim=-1, keepdim=True)
    return top * (torch.finfo(evals.dtype).eps * size) + torch.finfo(evals.dtype).tiny


def safe_sqrt(evals: Tensor, size: int) -> Tensor:
    """``sqrt(max(evals, 0))`` with value and gradient 0 below a relative tolerance."""
    tol = _tolerance(evals, size)
    keep = evals > tol
    root = torch.sqrt(torch.where(keep, evals, tol))
    return torch.where(keep, root, torch.zeros_like(root))


def _descending_eigh(G: Tensor) -> tuple[Tensor, Tensor]:
    evals, evecs = torch.linalg.eigh(G)
    return evals.flip(-1), evecs.flip(-1)


def eigen_left(A: Tensor, rank: int) -> tuple[Tensor, Tensor]:
    """Left singular vectors from ``eigh(A A^T)``: ``U (..., m, rank)``, ``S (..., rank)``."""
    evals, evecs = _descending_eigh(A @ A.mT)
    S = safe_sqrt(evals, max(A.shape[-2:]))
    return evecs[..., :rank], S[..., :rank]


def eigen_right(A: Tensor, rank: int) -> tuple[Tensor, Tensor]:
    """Right singular vectors from ``eigh(A^T A)``: ``Vh (..., rank, n)``, ``S (..., rank)``."""
    evals, evecs = _descending_eigh(A.mT @ A)
    S = safe_sqrt(evals, max(A.shape[-2:]))
    return evecs[..., :rank].mT, S[..., :rank]


def eigen_full(A: Tensor, rank: int) -> tuple[Tensor, Tensor, Tensor]:
    """``U, S`` from the left path and ``Vh = (A^T U / S)^T``; rows for zero ``S`` are zero."""
    U, S = eigen_left(A, rank)
    nonzero = S > 0
    inv = torch.where(
        nonzero, 1.0 / torch.where(nonzero, S, torch.ones_like(S)), torch.zeros_like(S)
    )
    Vh = (A.mT @ U * inv.unsqueeze(-2)).mT
    return U, S, Vh


def eigen_values(A: Tensor, rank: int) -> Tensor:
    """Singular values from ``eigvalsh`` of the smaller Gram matrix, descending."""
    m, n = A.shape[-2:]
    G = A @ A.mT if m <= n else A.mT @ A
    evals = torch.linalg.eigvalsh(G).flip(-1)
    return safe_sqrt(evals, max(m, n))[..., :rank]


def compute_condition_number(eigvals: Tensor, eps: float = 1e-12) -> Tensor:
    """Condition number ``max|eigvals| / max(min|eigvals|, eps)`` (any ordering of ``eigvals``)."""
    mags = eigvals.abs()
    return mags.amax(dim=-1) / mags.amin(dim=-1).clamp_min(eps)
