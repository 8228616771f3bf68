"""Dictionary-projection metrics of hidden weights (batched over any leading dimensions).

With ``W`` of shape ``(..., m, d)`` (``m`` neurons) and a dictionary ``M`` of shape
``(d, a)`` whose columns are atoms, ``c_i = M^T w_i / ||w_i||`` is neuron ``i``'s normalised
correlation with every atom. For an orthonormal square ``M``, ``sum_j c_ij^2 = 1``.
All functions accept a stacked series ``(steps, m, d)`` (e.g. ``feature.as_tensor()``) and
are meant for :meth:`flt_tracker.Feature.map`; ``W``, ``M`` (and ``w*``) may be numpy arrays.
Results are in the wider dtype of ``W`` and ``M`` (float64 weights and a float32 dictionary
give float64).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "atoms_above",
    "cosine_rows",
    "dense_mixture_weight",
    "dictionary_correlations",
    "participation_ratio",
    "purity",
    "sorted_atom_profile",
]


def _check(W: torch.Tensor, M: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``W`` and ``M`` as tensors (numpy arrays converted), shapes checked."""
    if isinstance(W, np.ndarray):
        W = torch.from_numpy(W)
    if isinstance(M, np.ndarray):  # a numpy dictionary was a torch ``to()`` signature error
        M = torch.from_numpy(M)
    if not isinstance(W, torch.Tensor):  # a Feature was "'Feature' object has no attribute"
        raise TypeError(
            f"W must be a tensor (..., m, d), got {type(W).__name__}; for a tracked series use "
            "feature.as_tensor() or feature.map(lambda v: purity(v, M))"
        )
    if not isinstance(M, torch.Tensor):
        raise TypeError(f"M must be a tensor or array (d, atoms), got {type(M).__name__}")
    if W.ndim < 2:
        raise ValueError(f"W must be (..., m, d), got shape {tuple(W.shape)}")
    if M.ndim != 2 or M.shape[0] != W.shape[-1]:
        raise ValueError(f"M must be (d, atoms) with d={W.shape[-1]}, got shape {tuple(M.shape)}")
    # the wider dtype of the two: float64 weights were rounded to a float32 dictionary's
    dtype = torch.promote_types(W.dtype, M.dtype)
    return W.to(dtype), M.to(dtype)


def dictionary_correlations(W: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """``|c_ij| = |<w_i, M_j>| / ||w_i||``, shape ``(..., m, atoms)``."""
    W, M = _check(W, M)
    return (W @ M).abs() / W.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def purity(W: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """Largest normalised correlation of each neuron with one atom, ``(..., m)``
    (1 for a pure atom, about ``sqrt(2 log d / d)`` for a random direction)."""
    return dictionary_correlations(W, M).amax(dim=-1)


def dense_mixture_weight(W: torch.Tensor, M: torch.Tensor, w_star: torch.Tensor) -> torch.Tensor:
    """``|<w_i, M w*>| / (||w_i|| ||M w*||)``: each neuron's weight on the dense label
    direction ``M w*``, ``(..., m)``; ``1/sqrt(d)`` for a pure atom when ``w*`` is ``+-1``.

    Raises:
        TypeError: ``W``, ``M`` or ``w_star`` is not a tensor or array.
        ValueError: ``W`` or ``M`` has the wrong shape, or ``w_star`` is not ``(atoms,)``.
    """
    W, M = _check(W, M)
    if isinstance(w_star, np.ndarray):
        w_star = torch.from_numpy(w_star)
    if not isinstance(w_star, torch.Tensor):
        raise TypeError(f"w_star must be a torch.Tensor, got {type(w_star).__name__}")
    if w_star.shape != (M.shape[1],):  # a (atoms, 1) w* broadcast into a wrong result
        raise ValueError(
            f"w_star must be (atoms,) with atoms={M.shape[1]} (the columns of M), "
            f"got shape {tuple(w_star.shape)}"
        )
    direction = M @ w_star.to(M.dtype)
    direction = direction / direction.norm().clamp_min(1e-12)
    return (W @ direction).abs() / W.norm(dim=-1).clamp_min(1e-12)


def participation_ratio(W: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """Effective number of atoms ``1 / sum_j p_ij^2`` with ``p_ij = c_ij^2 / sum_j c_ij^2``,
    ``(..., m)``: 1 for a pure atom, ``atoms`` for a flat mixture."""
    c2 = dictionary_correlations(W, M) ** 2
    p = c2 / c2.sum(dim=-1, keepdim=True).clamp_min(1e-24)
    return 1.0 / (p**2).sum(dim=-1).clamp_min(1e-24)


def atoms_above(W: torch.Tensor, M: torch.Tensor, threshold: float = 0.2) -> torch.Tensor:
    """Number of atoms each neuron correlates with above ``threshold``, ``(..., m)`` int64."""
    return (dictionary_correlations(W, M) > threshold).sum(dim=-1)


def sorted_atom_profile(W: torch.Tensor, M: torch.Tensor, top: int = 20) -> torch.Tensor:
    """Each neuron's ``|c_ij|`` sorted in decreasing order, the first ``top``, ``(..., m, top)``."""
    c = dictionary_correlations(W, M)
    return c.sort(dim=-1, descending=True).values[..., :top]


def cosine_rows(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Row-wise ``|cos(a_i, b_i)|`` of two ``(..., m, d)`` weight matrices, ``(..., m)``."""
    if A.shape != B.shape:
        raise ValueError(
            f"A and B must have the same shape, got {tuple(A.shape)} and {tuple(B.shape)}"
        )
    return torch.nn.functional.cosine_similarity(A, B, dim=-1, eps=1e-12).abs()
