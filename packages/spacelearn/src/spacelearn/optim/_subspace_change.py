"""How much a subspace moved between two solves."""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import numeric_tensor
from .._find_subspaces import _numerical_rank


def check_direction(w: Tensor, name: str) -> None:
    """A ``(k >= 1, D)`` basis must be finite and have a non-zero row: an all-zero basis spans no
    direction, and NaN / inf (a diverged trainable basis) make the decompositions fail."""
    if not bool(torch.isfinite(w.detach()).all()):
        raise ValueError(f"{name} contains NaN or infinite values; principal angles are undefined")
    if w.ndim == 2 and w.shape[0] and not bool(w.detach().any()):
        raise ValueError(
            f"{name} has no direction: all {w.shape[0]} rows of its {tuple(w.shape)} basis are "
            f"zero; principal angles need a basis with at least one non-zero row"
        )


def _check_bases(W_a: object, W_b: object, names: tuple[str, str]) -> tuple[Tensor, Tensor]:
    """Both bases as tensors (numpy arrays and nested lists accepted, as in
    :func:`spacelearn.max_principal_cosine`), checked to be ``(k, D)`` with the same ``D``."""
    out = []
    for name, value in zip(names, (W_a, W_b), strict=True):
        w = numeric_tensor(value, name)
        if w.ndim != 2:
            raise ValueError(f"{name} must be a (k, D) basis, got shape {tuple(w.shape)}")
        check_direction(w, name)
        out.append(w)
    if out[0].shape[1] != out[1].shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must span the same latent space, got D={out[0].shape[1]} "
            f"and D={out[1].shape[1]}"
        )
    return out[0], out[1]


def _span_basis(w: Tensor) -> Tensor:
    """Orthonormal columns ``(D, r)`` spanning the rows of ``w (k, D)``, in float64, ``r`` its
    numerical rank (singular values above ``max(S) * max(k, D) * eps`` of ``w``'s precision, as
    ``scipy.linalg.orth``): a QR would complete a rank-deficient basis with arbitrary columns."""
    eps = torch.finfo(w.dtype if w.is_floating_point() else torch.float64).eps
    U, S, _ = torch.linalg.svd(w.detach().mT.to(torch.float64), full_matrices=False)
    return U[:, : _numerical_rank(S, tuple(w.shape), eps)]


def principal_cosines(W_a: Tensor, W_b: Tensor) -> Tensor:
    """Cosines of the principal angles between ``span(W_a)`` and ``span(W_b)``, descending.

    ``W_a (k_a, D)``, ``W_b (k_b, D)``; rows need not be orthonormal, nor even linearly
    independent (the spans are orthonormalised by SVD first, as ``scipy.linalg.subspace_angles``
    does). Returns ``(min(rank_a, rank_b),)`` values in ``[0, 1]`` (``min(k_a, k_b)`` for bases of
    full row rank): 1 = a shared direction, 0 = orthogonal. Bases may be tensors, numpy arrays or
    nested lists; the cosines are a tensor.
    An all-zero basis (no direction) or a NaN / inf entry is a ``ValueError``.
    The cosines have ``W_a``'s dtype, float32 for an integer ``W_a``.
    """
    W_a, W_b = _check_bases(W_a, W_b, ("W_a", "W_b"))
    Qa = _span_basis(W_a)
    Qb = _span_basis(W_b.to(Qa.device))
    dtype = W_a.dtype if W_a.is_floating_point() else torch.float32  # int cosines truncate to 0
    return torch.linalg.svdvals(Qa.mT @ Qb).clamp(0.0, 1.0).to(dtype)


def subspace_change(W_old: Tensor, W_new: Tensor) -> dict:
    """Row-matching (0.1.0) and principal-angle comparison of two bases.

    Returns a dict of tensors:
        ``mean_cos_sim`` / ``mean_angle_deg`` / ``per_dir_cos (k_old,)`` /
        ``similarity_matrix (k_old, k_new)``: the 0.1.0 row matching (each old row against its
        best new row, ``|W_old W_new^T|``, clamped to ``[0, 1]``); it is *not* rotation
        invariant and, as in 0.1.0, takes the rows to be unit vectors (other rows give
        scaled, not cosine, similarities).
        ``principal_cos (min(rank),)`` / ``principal_angles_deg`` / ``max_principal_angle_deg``:
        the rotation-invariant subspace distance (new in this release).

    Bases may be tensors, numpy arrays or nested lists; the values are tensors either way.
    A basis with no rows is a ``ValueError``.
    """
    W_old, W_new = _check_bases(W_old, W_new, ("W_old", "W_new"))
    for name, w in (("W_old", W_old), ("W_new", W_new)):
        if w.shape[0] == 0:  # the row matching would average (or maximise) over no rows
            raise ValueError(
                f"{name} has no rows (shape {tuple(w.shape)}); subspace_change needs at least "
                "one direction on each side (principal_cosines accepts empty bases)"
            )
    if not W_old.is_floating_point():  # integer bases: float cosines and angles
        W_old = W_old.float()
    G = (W_old @ W_new.to(device=W_old.device, dtype=W_old.dtype).mT).abs().clamp(-1.0, 1.0)
    per_dir = G.max(dim=1).values
    angles = torch.rad2deg(torch.acos(per_dir))
    angles = torch.where(angles < 1e-3, torch.zeros_like(angles), angles)
    pcos = principal_cosines(W_old, W_new)
    pang = torch.rad2deg(torch.acos(pcos))
    pang = torch.where(pang < 1e-3, torch.zeros_like(pang), pang)
    return {
        "mean_cos_sim": per_dir.mean(),
        "mean_angle_deg": angles.mean(),
        "per_dir_cos": per_dir,
        "similarity_matrix": G,
        "principal_cos": pcos,
        "principal_angles_deg": pang,
        "max_principal_angle_deg": pang.max(),
    }


__all__ = ["principal_cosines", "subspace_change"]
