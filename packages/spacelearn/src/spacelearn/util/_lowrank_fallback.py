"""Randomized low-rank backend (range finder with oversampling and power iterations).

Fixed against 0.1.0 (``torch.svd_lowrank`` with its default q=6): the range has ``rank +
oversample`` columns (all ``min(m, n)`` when no rank is asked), so no fewer components than asked
ever come back; it draws from a private seeded generator; and the range basis is computed without
gradient, the gradient flowing through the small exact SVD of ``Q^T A`` only.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _generator(device: torch.device, seed: int | None) -> torch.Generator | None:
    if seed is None:
        return None
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


@torch.no_grad()
def range_basis(A: Tensor, width: int, n_iter: int, seed: int | None) -> Tensor:
    """Orthonormal ``Q (..., m, width)`` approximately spanning the leading range of ``A``."""
    A = A.detach()
    n = A.shape[-1]
    gen = _generator(A.device, seed)
    omega = torch.randn(n, width, dtype=A.dtype, device=A.device, generator=gen)
    Q = torch.linalg.qr(A @ omega).Q
    for _ in range(max(int(n_iter), 0)):
        Q = torch.linalg.qr(A.mT @ Q).Q
        Q = torch.linalg.qr(A @ Q).Q
    return Q


def _project(A: Tensor, rank: int, oversample: int, n_iter: int, seed: int | None):
    m, n = A.shape[-2:]
    width = min(rank + max(int(oversample), 0), min(m, n))
    Q = range_basis(A, width, n_iter, seed)
    return Q, Q.mT @ A


def lowrank_full(A: Tensor, rank: int, oversample: int, n_iter: int, seed: int | None):
    """``U (..., m, rank)``, ``S (..., rank)``, ``Vh (..., rank, n)``."""
    Q, B = _project(A, rank, oversample, n_iter, seed)
    Ub, S, Vh = torch.linalg.svd(B, full_matrices=False)
    return (Q @ Ub)[..., :rank], S[..., :rank], Vh[..., :rank, :]


def lowrank_values(A: Tensor, rank: int, oversample: int, n_iter: int, seed: int | None) -> Tensor:
    """Leading ``rank`` singular values, descending."""
    _, B = _project(A, rank, oversample, n_iter, seed)
    return torch.linalg.svdvals(B)[..., :rank]
