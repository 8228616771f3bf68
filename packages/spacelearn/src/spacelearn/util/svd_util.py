"""SVD dispatch on ``spacelearn.settings.config.solver_mode`` (read on every call).

Every backend returns the same number of components, ``min(m, n)`` or the ``rank`` asked
(``rank`` larger than ``min(m, n)`` is reduced with a warning). Leading batch dimensions are
supported: ``A`` has shape ``(..., m, n)``. float16 / bfloat16 input is decomposed in float32
and the results are cast back (torch has no half-precision decompositions).

| mode | method |
|---|---|
| ``"svd"`` | ``torch.linalg.svd`` / ``svdvals`` |
| ``"eigen"`` | ``eigh`` of the Gram matrix, clamped, gradient-safe square root |
| ``"lowrank"`` | seeded randomized range finder with ``rank + lowrank_oversample`` columns |
| ``"auto"`` | ``"svd"``, except ``"lowrank"`` when a small ``rank`` is asked of a matrix with more than ``AUTO_LOWRANK_MIN_ENTRIES`` entries |
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

from .. import settings as _settings
from .._checks import check_int, warn
from ._eigen_fallback import eigen_full, eigen_left, eigen_right, eigen_values
from ._lowrank_fallback import lowrank_full, lowrank_values
from ._svd_fallback import _pad, svd_full, svd_left, svd_right, svd_values

AUTO_LOWRANK_MIN_ENTRIES = 1_000_000


class SolverModeError(ValueError, KeyError):
    """Unknown ``solver_mode`` (a KeyError too, as the 0.1.0 dispatch table raised)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _check_matrix(A: Tensor) -> None:
    if not isinstance(A, Tensor):
        raise TypeError(f"A must be a torch.Tensor, got {type(A).__name__}")
    if A.ndim < 2:
        raise ValueError(f"A must have at least 2 dims (..., m, n), got shape {tuple(A.shape)}")
    if not A.is_floating_point():
        raise TypeError(f"A must be a floating-point tensor, got dtype {A.dtype}")


def _rank(A: Tensor, rank: int | None) -> int:
    r = min(A.shape[-2], A.shape[-1])
    if rank is None:
        return r
    rank = check_int(rank, "rank", or_none=True)
    if rank > r:
        warn(
            f"rank={rank} exceeds min(m, n)={r} of a {tuple(A.shape[-2:])} matrix; "
            f"returning {r} components"
        )
        return r
    return rank


def resolve(A: Tensor, op: str, *, rank: int | None = None) -> str:
    """The backend ``config.solver_mode`` selects for ``A`` (``"auto"`` resolved)."""
    mode = _settings.config.solver_mode
    if mode not in _settings.SOLVER_MODES:
        raise SolverModeError(
            f"solver_mode={mode!r} is not supported; expected one of {_settings.SOLVER_MODES}"
        )
    if mode != "auto":
        return mode
    m, n = A.shape[-2:]
    small = rank is not None and rank + _settings.config.lowrank_oversample <= min(m, n) // 4
    if small and m * n > AUTO_LOWRANK_MIN_ENTRIES:
        return "lowrank"
    return "svd"


def _cast(out, **to):
    """``out`` (a tensor or a tuple of tensors) moved / cast with ``Tensor.to(**to)``."""
    if isinstance(out, tuple):
        return tuple(t.to(**to) for t in out)
    return out.to(**to)


def _run(A: Tensor, fn, *args):
    try:
        return fn(A, *args)
    except (RuntimeError, torch.linalg.LinAlgError):
        if not (A.is_cuda and _settings.config.use_cpu_fallback):
            raise
    return _cast(fn(A.cpu(), *args), device=A.device)


def _half_in_float32(fn: Callable) -> Callable:
    """Run ``fn`` on float16 / bfloat16 input in float32 (torch has no half-precision
    decompositions) and cast the results back to the input's dtype."""

    @functools.wraps(fn)
    def wrapper(A: Tensor, *, rank: int | None = None):
        if isinstance(A, Tensor) and A.dtype in (torch.float16, torch.bfloat16):
            return _cast(fn(A.float(), rank=rank), dtype=A.dtype)
        return fn(A, rank=rank)

    return wrapper


def _lowrank_args() -> tuple[int, int, int | None]:
    cfg = _settings.config
    return cfg.lowrank_oversample, cfg.n_lowrank_iters, cfg.seed


def _complete(U: Tensor, S: Tensor) -> tuple[Tensor, Tensor]:
    """``U (..., m, r)`` extended to a complete orthonormal basis ``(..., m, m)``, ``S`` zero-padded
    (the added columns span the orthogonal complement and carry no gradient)."""
    m, r = U.shape[-2:]
    if r >= m:
        return U, S
    with torch.no_grad():
        rest = torch.linalg.qr(U.detach(), mode="complete").Q[..., r:]
    return torch.cat([U, rest], dim=-1), _pad(S, m)


def _wants_complete(rank: int | None) -> bool:
    return bool(_settings.config.use_full_matrix) and rank is None


@_half_in_float32
def left(A: Tensor, *, rank: int | None = None) -> tuple[Tensor, Tensor]:
    """Left singular vectors and values of ``A (..., m, n)``.

    Returns:
        ``(U, S)``: ``U (..., m, r)`` with orthonormal columns, ``S (..., r)`` descending, where
        ``r = rank or min(m, n)`` (``m`` with ``config.use_full_matrix`` and no ``rank``, in
        every mode, ``S`` zero-padded; an explicit ``rank`` always wins).
    """
    _check_matrix(A)
    r = _rank(A, rank)
    mode = resolve(A, "left", rank=rank)
    if mode == "svd":
        return _run(A, svd_left, r, _wants_complete(rank))
    if mode == "eigen":
        U, S = _run(A, eigen_left, r)
    else:
        U, S, _ = _run(A, lowrank_full, r, *_lowrank_args())
    return _complete(U, S) if _wants_complete(rank) else (U, S)


@_half_in_float32
def right(A: Tensor, *, rank: int | None = None) -> tuple[Tensor, Tensor]:
    """Right singular vectors (as rows) and values of ``A (..., m, n)``.

    Returns:
        ``(Vh, S)``: ``Vh (..., r, n)`` with orthonormal rows, ``S (..., r)`` descending
        (``r = n`` with ``config.use_full_matrix`` and no ``rank``, in every mode).
    """
    _check_matrix(A)
    r = _rank(A, rank)
    mode = resolve(A, "right", rank=rank)
    if mode == "svd":
        return _run(A, svd_right, r, _wants_complete(rank))
    if mode == "eigen":
        Vh, S = _run(A, eigen_right, r)
    else:
        _, S, Vh = _run(A, lowrank_full, r, *_lowrank_args())
    if _wants_complete(rank):
        V, S = _complete(Vh.mT, S)
        return V.mT, S
    return Vh, S


@_half_in_float32
def full(A: Tensor, *, rank: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Reduced factorization ``A ~= U @ diag(S) @ Vh``.

    Returns:
        ``U (..., m, r)``, ``S (..., r)``, ``Vh (..., r, n)`` with ``r = rank or min(m, n)``.
    """
    _check_matrix(A)
    r = _rank(A, rank)
    mode = resolve(A, "full", rank=rank)
    if mode == "svd":
        return _run(A, svd_full, r)
    if mode == "eigen":
        return _run(A, eigen_full, r)
    return _run(A, lowrank_full, r, *_lowrank_args())


@_half_in_float32
def singular_values(A: Tensor, *, rank: int | None = None) -> Tensor:
    """Singular values ``(..., r)`` of ``A``, descending; gradients are finite in every mode."""
    _check_matrix(A)
    r = _rank(A, rank)
    mode = resolve(A, "singular_values", rank=rank)
    if mode == "svd":
        return _run(A, svd_values, r)
    if mode == "eigen":
        return _run(A, eigen_values, r)
    return _run(A, lowrank_values, r, *_lowrank_args())


__all__ = ["AUTO_LOWRANK_MIN_ENTRIES", "full", "left", "resolve", "right", "singular_values"]
