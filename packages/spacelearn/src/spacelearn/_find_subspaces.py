"""Per-quantity latent subspaces: the 0.1.0 independent solve and the partitioned solves."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from torch import Tensor

from . import util
from ._checks import check_int, check_real, warn
from ._stats import Moments, moments

METHODS = ("independent", "whitened", "joint")

logger = logging.getLogger("spacelearn")


def _fix_signs(rows: Tensor) -> Tensor:
    """Flip each row so that its largest-magnitude entry is positive (deterministic signs)."""
    idx = rows.abs().argmax(dim=-1, keepdim=True)
    sign = torch.sign(torch.gather(rows, -1, idx))
    return rows * torch.where(sign == 0, torch.ones_like(sign), sign)


def _unit(x: Tensor) -> Tensor:
    """``x / ||x||`` (0.1.0's ``+ 1e-8`` left float64 norms at ``1 - 1e-8``); a zero ``x`` stays 0."""
    return x / x.norm().clamp_min(torch.finfo(x.dtype).tiny)


def _resolve_k(k, names: list[str]) -> dict[str, int]:
    if isinstance(k, Mapping):
        missing = [q for q in names if q not in k]
        if missing:
            raise ValueError(f"k has no entry for quantities {missing}; got keys {list(k)}")
        ks = {q: k[q] for q in names}
    else:
        ks = dict.fromkeys(names, k)
    for q, kq in ks.items():
        ks[q] = check_int(kq, f"k for quantity {q!r}")
    return ks


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not supported; expected one of {METHODS}")
    return method


def clamp_k(mom: Moments, k, method: str) -> dict[str, int]:
    """Effective subspace sizes, with a warning for every reduction."""
    names = mom.names
    ks = _resolve_k(k, names)
    D = mom.Szz.shape[0]
    out: dict[str, int] = {}
    for q in names:
        P = mom.Szy[q].shape[1]
        limit = min(D, P)
        if ks[q] > limit:
            warn(
                f"k={ks[q]} for quantity {q!r} exceeds min(latent dim D={D}, target width "
                f"P={P}) = {limit}; using k={limit}"
            )
        out[q] = min(ks[q], limit)
        if out[q] > mom.n - 1:
            warn(
                f"k={out[q]} for quantity {q!r} but only {mom.n} samples: at most {mom.n - 1} "
                "directions are determined by the data, the rest are arbitrary"
            )
    if method == "joint" and sum(out.values()) > D:
        before = dict(out)
        while sum(out.values()) > D:
            biggest = max(out, key=lambda q: (out[q], -names.index(q)))
            out[biggest] -= 1
        if min(out.values()) < 1:
            raise ValueError(
                f"method='joint' needs at least one latent dimension per quantity: D={D} < "
                f"{len(names)} quantities"
            )
        warn(
            f"method='joint' needs sum(k) <= D={D} for mutually orthogonal subspaces; "
            f"k reduced from {before} to {out}"
        )
    return out


def _numerical_rank(S: Tensor, shape: tuple[int, ...], eps: float | None = None) -> int:
    """How many singular values ``S`` of a ``shape`` matrix exceed its rounding noise
    ``max(S) * max(shape) * eps`` (``eps`` of ``S``'s dtype unless given: that of the matrix
    when ``S`` was computed in a wider one)."""
    eps = torch.finfo(S.dtype).eps if eps is None else eps
    tol = S.amax() * max(shape) * eps if S.numel() else 0.0
    return int((S > tol).sum())


def _warn_undetermined(q: str, k: int, S: Tensor, shape: tuple[int, ...]) -> None:
    """Warn when fewer than ``k`` of the solve's singular values ``S`` (of a ``shape`` matrix,
    the latent-target cross-covariance up to an invertible metric) exceed its rounding noise:
    the remaining directions of ``W[q]`` are arbitrary."""
    rank = _numerical_rank(S, shape)
    if rank < k:
        warn(
            f"k={k} for quantity {q!r} but the latents' cross-covariance with it has rank "
            f"{rank}: only {rank} directions are determined by the data, the rest are arbitrary "
            "(constant latents or target, or a target that depends on fewer latent directions)"
        )


def _canonical(Q: Tensor, Szy: Tensor) -> Tensor:
    """Rows spanning ``span(Q)`` ordered by covariance with the target, signs fixed."""
    Ub = torch.linalg.svd(Q.mT @ Szy, full_matrices=True)[0]
    return _fix_signs((Q @ Ub).mT.contiguous())


def _latent_scale(Szz: Tensor) -> Tensor:
    """Mean latent variance ``trace(Szz) / D``, or 1 for constant latents (``Szz = 0``: a batch of
    one, a dead encoder), so ridges built on it never vanish."""
    scale = torch.trace(Szz) / Szz.shape[0]
    return scale if scale > 0 else torch.ones((), dtype=Szz.dtype, device=Szz.device)


def _inv_sqrt(Szz: Tensor, ridge: float) -> Tensor:
    D = Szz.shape[0]
    eye = torch.eye(D, dtype=Szz.dtype, device=Szz.device)
    scale = _latent_scale(Szz)
    M = Szz + (float(ridge) * scale + torch.finfo(Szz.dtype).eps * scale) * eye
    return _sym_inv_sqrt(M)


def _sym_inv_sqrt(M: Tensor) -> Tensor:
    """``M^{-1/2}`` of a symmetric PSD ``M``; eigenvalues below the numerical-rank tolerance
    ``max(eig) * D * eps`` (rounding noise, possibly negative) are raised to it."""
    evals, evecs = torch.linalg.eigh(M)
    finfo = torch.finfo(M.dtype)
    floor = evals.amax().clamp_min(finfo.tiny) * (M.shape[0] * finfo.eps)
    return (evecs * evals.clamp_min(floor).rsqrt()) @ evecs.mT


def _joint_greedy(mom: Moments, ks: dict[str, int], ridge: float) -> dict[str, Tensor]:
    """Mutually orthogonal subspaces, one latent direction at a time.

    At every step, for each quantity that still needs directions, find the latent direction
    orthogonal to *all* directions accepted so far that most increases the explained fraction
    of that quantity's variance (given its own accepted directions: a whitened, partialled
    reduced-rank regression in the complement). Accept the best (quantity, direction) pair.
    Without competition this is the ``"whitened"`` solution (exactly with ``ridge=0``; a ridge
    tilts the one-at-a-time directions slightly); a direction two quantities
    want goes to the one whose R^2 gains most from it, and the other gets the next best
    direction. Deterministic, well defined even when quantities share directions exactly.
    """
    Szz = mom.Szz
    D = Szz.shape[0]
    eye = torch.eye(D, dtype=Szz.dtype, device=Szz.device)
    scale = _latent_scale(Szz)
    lam = (float(ridge) + torch.finfo(Szz.dtype).eps * D) * scale
    tiny = torch.finfo(Szz.dtype).tiny
    remaining = dict(ks)
    chosen: dict[str, list[Tensor]] = {q: [] for q in mom.names}
    accepted = torch.zeros(D, 0, dtype=Szz.dtype, device=Szz.device)

    def complement(M: Tensor) -> Tensor:
        """``P M`` for the projector ``P = I - A A^T`` onto the complement of ``accepted``."""
        return M - accepted @ (accepted.mT @ M)

    def best_direction(q: str, Cxx: Tensor) -> tuple[float, Tensor]:
        # The problem lives in the complement of the accepted directions; it is solved in latent
        # coordinates (no basis of the complement: a complete QR and a D x D x D product per
        # step), with the accepted directions given the latents' scale. The matrix is then
        # block diagonal (complement, accepted) and well conditioned, and the accepted block,
        # where the cross-covariance is zero, leaves the solution in the complement.
        Szy = mom.Szy[q]
        Rxx, Rxy = Cxx.clone(), complement(Szy)
        if chosen[q]:
            Bq = torch.stack(chosen[q])  # (j, D)
            Css_inv = torch.linalg.pinv(Bq @ Szz @ Bq.mT, hermitian=True)
            Cxs = complement(Szz @ Bq.mT)
            Rxx.sub_(Cxs @ Css_inv @ Cxs.mT)
            Rxy = Rxy - Cxs @ Css_inv @ (Bq @ Szy)
        # symmetric up to rounding; the Cholesky factor (and eigh) read its lower triangle
        Rxx.addmm_(accepted, accepted.mT, alpha=float(scale - lam)).diagonal().add_(lam)
        L, info = torch.linalg.cholesky_ex(Rxx)
        if int(info) == 0:  # whiten with the Cholesky factor (cheaper than eigh)
            U, S, _ = torch.linalg.svd(
                torch.linalg.solve_triangular(L, Rxy, upper=False), full_matrices=False
            )
            u = torch.linalg.solve_triangular(L.mT, U[:, :1], upper=True)[:, 0]
        else:
            Rih = _sym_inv_sqrt(Rxx)
            U, S, _ = torch.linalg.svd(Rih @ Rxy, full_matrices=False)
            u = Rih @ U[:, 0]
        d = complement(u[:, None])[:, 0]  # drops the rounding left in the accepted block
        if not d.norm() > u.norm() * torch.finfo(u.dtype).eps ** 0.5:
            # no cross-covariance left (Rxy = 0): every direction is as good; take one of the
            # complement (the SVD's arbitrary pick may lie in the accepted block)
            P = complement(eye)
            d = P[:, P.norm(dim=0).argmax()]
        gain = float(S[0] ** 2 / mom.syy[q].clamp_min(tiny))
        return gain, d / d.norm().clamp_min(tiny)

    # Lazy greedy: a quantity's best gain can only shrink when the complement shrinks (its own
    # directions unchanged), so stale gains are upper bounds and only the leader is recomputed.
    gains: dict[str, tuple[float, int, Tensor | None]] = {
        q: (float("inf"), -1, None) for q in mom.names
    }
    step = 0
    while any(remaining.values()):
        Cxx = complement(complement(Szz).mT)  # P Szz P, symmetric
        while True:
            live = [q for q in mom.names if remaining[q]]
            q = max(live, key=lambda n: (gains[n][0], -mom.names.index(n)))
            if gains[q][1] == step:
                break
            gain, d = best_direction(q, Cxx)
            gains[q] = (gain, step, d)
        d = gains[q][2]
        d = d - accepted @ (accepted.mT @ d)  # re-orthogonalise against rounding
        d = d / d.norm()
        chosen[q].append(d)
        accepted = torch.cat([accepted, d.unsqueeze(1)], dim=1)
        remaining[q] -= 1
        gains[q] = (float("inf"), -1, None)  # its own problem changed: recompute next time
        step += 1
    return {q: _canonical(torch.stack(chosen[q]).mT, mom.Szy[q]) for q in mom.names}


def bases_from_moments(
    mom: Moments, k, method: str = "independent", ridge: float = 1e-3
) -> dict[str, Tensor]:
    """Orthonormal-row bases ``W[q] (k_q, D)`` in the latents' dtype and device.

    * ``"independent"`` (0.1.0): top left singular vectors of ``Z_c^T Y_c``, per quantity,
      through ``spacelearn.util.left`` (follows ``config.solver_mode``).
    * ``"whitened"``: per quantity, the least-squares optimal rank-``k`` subspace (reduced-rank
      regression in the whitened latent metric ``(Z_c^T Z_c + ridge)^{-1/2}``), orthonormalised.
    * ``"joint"``: mutually orthogonal subspaces built greedily, one direction at a time, each
      step giving the quantity whose explained variance fraction gains most its best direction
      orthogonal to everything accepted (see :func:`_joint_greedy`); each block is then ordered
      by covariance with its own target.

    Logs 0.1.0's ``"Estimating subspaces..."`` at INFO level on the ``spacelearn`` logger.
    """
    method = _check_method(method)
    ridge = check_real(ridge, "ridge")
    ks = clamp_k(mom, k, method)
    logger.info("Estimating subspaces...")
    dtype = mom.dtype
    undetermined = [q for q in mom.names if ks[q] <= mom.n - 1]  # else clamp_k warned already
    if method == "independent":
        W = {}
        for q in mom.names:
            U, S = util.left(mom.Szy[q].to(dtype), rank=ks[q])
            if q in undetermined:
                _warn_undetermined(q, ks[q], S, mom.Szy[q].shape)
            W[q] = _fix_signs(torch.linalg.qr(U).Q.mT.contiguous())
        return W
    if method == "joint" and len(mom.names) > 1:
        for q in undetermined:
            S = util.left(mom.Szy[q].to(dtype), rank=ks[q])[1]
            _warn_undetermined(q, ks[q], S, mom.Szy[q].shape)
        return {q: w.to(dtype) for q, w in _joint_greedy(mom, ks, ridge).items()}
    Mih = _inv_sqrt(mom.Szz, ridge)
    W = {}
    for q in mom.names:
        U, S = util.left((Mih @ mom.Szy[q]).to(dtype), rank=ks[q])
        if q in undetermined:
            _warn_undetermined(q, ks[q], S, mom.Szy[q].shape)
        Q = torch.linalg.qr(Mih @ U.to(torch.float64)).Q
        W[q] = _canonical(Q, mom.Szy[q])
    return {q: w.to(dtype) for q, w in W.items()}


def decoders_from_moments(mom: Moments, W: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Least-squares decoders ``A[q] = (W Szz W^T)^+ W Szy[q]`` of shape ``(k_q, P_q)``."""
    out = {}
    for q, w in W.items():
        w64 = w.to(device=mom.Szz.device, dtype=torch.float64)
        gram = w64 @ mom.Szz @ w64.mT
        out[q] = (torch.linalg.pinv(gram, hermitian=True) @ (w64 @ mom.Szy[q])).to(w.dtype)
    return out


def principal_directions(
    z: Tensor, pooled_targets: dict[str, Tensor]
) -> dict[str, tuple[Tensor, Tensor]]:
    """Top covariance pair of each quantity (rank-1 PLS-SVD of ``z_c^T y_c``).

    Args:
        z: latents ``(B, D)``.
        pooled_targets: ``{name: (B, P) or (B, ...)}`` (flattened to ``(B, P)``).

    Returns:
        ``{name: (w, v)}``: latent direction ``w (D,)`` and target direction ``v (P,)``, unit
        length, detached, with the sign fixed so that ``w``'s largest entry is positive.
    """
    mom = moments(z, pooled_targets, names=("z", "pooled_targets"))
    out = {}
    for q in mom.names:
        U, S, Vh = util.full(mom.Szy[q].to(mom.dtype), rank=1)
        if _numerical_rank(S, mom.Szy[q].shape) == 0:
            warn(
                f"the latents have no covariance with quantity {q!r} (constant latents or "
                "target): its principal directions are arbitrary"
            )
        w, v = U[:, 0], Vh[0]
        sign = torch.sign(w[w.abs().argmax()])
        sign = sign if sign != 0 else torch.ones_like(sign)
        w, v = w * sign, v * sign
        out[q] = (_unit(w).detach(), _unit(v).detach())
    return out


def subspaces(
    Z: Tensor,
    pooled_global: dict[str, Tensor],
    k: int | dict[str, int],
    *,
    method: str = "independent",
    ridge: float = 1e-3,
) -> dict[str, Tensor]:
    """Orthonormal bases ``W[q] (k_q, D)`` of each quantity's latent subspace (detached).

    Args:
        Z: latents ``(B, D)``.
        pooled_global: ``{name: (B, P) or (B, ...)}``.
        k: subspace size, an int for all quantities or ``{name: int}``.
        method: ``"independent"`` (0.1.0 behaviour: subspaces may share directions),
            ``"whitened"`` (least-squares optimal per quantity) or ``"joint"`` (recommended:
            mutually orthogonal subspaces). See :func:`spacelearn.solve_subspaces`.
        ridge: relative ridge of the whitening metric (``"whitened"`` / ``"joint"``).
            It is relative to the mean latent variance ``trace(Z_c^T Z_c) / D``, so latent
            directions whose variance is far below ``ridge`` times that mean are damped out of
            the solve: standardise latents whose columns differ by orders of magnitude.

    Warns:
        UserWarning: whenever a ``k`` is reduced (``k > min(D, P)``, or ``sum(k) > D`` with
            ``"joint"``) or exceeds what ``B - 1`` samples determine, or the rank of the
            latent-target cross-covariance (constant latents or targets, a target driven by
            fewer latent directions): the extra directions are arbitrary.
    """
    return bases_from_moments(
        moments(Z, pooled_global, names=("Z", "pooled_global")), k, method, ridge
    )


__all__ = ["principal_directions", "subspaces"]
