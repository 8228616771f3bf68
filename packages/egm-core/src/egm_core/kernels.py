"""Pure tensor kernels of EGM: neighbourhood bases, explosion directions and trend-path scores.

No state and no numpy: the device follows the inputs. Shapes are given as ``(n, d)``.
"""

from __future__ import annotations

import torch


def local_basis(
    neighbourhoods: torch.Tensor, rel_tol: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Low-rank principal basis of each neighbourhood through its Gram matrix.

    Costs ``O(P k^2 d)`` for ``P`` neighbourhoods of ``k`` points (never ``O(d^3)``).

    Args:
        neighbourhoods: ``(P, k, d)`` points of each neighbourhood.
        rel_tol: eigenvalues below ``rel_tol`` times the largest of their neighbourhood are
            treated as zero (their basis rows are zero).

    Returns:
        ``(basis (P, k, d), variances (P, k))``: orthonormal rows (or zero rows) and the local
        variance along each of them (eigenvalues of the covariance, ``/ max(k - 1, 1)``).
    """
    P, k, _ = neighbourhoods.shape
    centred = neighbourhoods - neighbourhoods.mean(dim=1, keepdim=True)
    gram = centred @ centred.transpose(1, 2)  # (P, k, k)
    evals, evecs = torch.linalg.eigh(gram.double())
    evals = evals.clamp_min(0.0)
    keep = evals > rel_tol * evals.amax(dim=1, keepdim=True).clamp_min(1e-300)
    inv_sqrt = torch.where(keep, evals.clamp_min(1e-300).rsqrt(), torch.zeros_like(evals))
    coeffs = (evecs * inv_sqrt[:, None, :]).transpose(1, 2).to(centred.dtype)  # (P, k, k)
    basis = coeffs @ centred
    variances = (evals * keep).to(centred.dtype) / max(k - 1, 1)
    return basis, variances


def warp_directions(
    z: torch.Tensor,
    basis: torch.Tensor,
    variances: torch.Tensor,
    anisotropy: float,
    floor: float = 0.05,
) -> torch.Tensor:
    """Unit explosion directions, stretched along the local principal axes.

    A raw direction ``z`` is split into its components on the neighbourhood basis and the rest.
    Each basis component is scaled by ``((var_i + eps) / (mean_var + eps)) ** (anisotropy / 2)``
    and the rest by ``(eps / (mean_var + eps)) ** (anisotropy / 2)``, with ``eps = floor *
    mean_var`` (regularised relative to the trace). So ``anisotropy > 0`` favours directions of
    high local variance (the README's "expand along local principal directions"); 0 keeps ``z``.

    Args:
        z: ``(P, d)`` raw directions (e.g. standard normal draws).
        basis: ``(P, k, d)`` orthonormal or zero rows from :func:`local_basis`.
        variances: ``(P, k)`` local variances along the basis rows.
        anisotropy: exponent, ``>= 0``.
        floor: relative variance given to directions outside the neighbourhood span.

    Returns:
        ``(P, d)`` unit vectors.
    """
    coef = (basis @ z[:, :, None])[..., 0]  # (P, k)
    rank = (variances > 0).sum(dim=1).clamp_min(1)
    mean_var = variances.sum(dim=1) / rank  # (P,)
    degenerate = mean_var <= 0
    eps = floor * mean_var
    denom = (mean_var + eps).clamp_min(1e-30)
    # in logs, less the row's largest: only the direction matters (u is normalised below), and
    # a large anisotropy would overflow the powers (inf / inf = NaN points)
    log_in = (anisotropy / 2.0) * torch.log((variances + eps[:, None]) / denom[:, None])
    log_out = (anisotropy / 2.0) * torch.log(eps / denom)
    top = torch.maximum(log_in.amax(dim=1), log_out)
    w_in = torch.exp(log_in - top[:, None])
    w_out = torch.exp(log_out - top)
    w_in = torch.where(degenerate[:, None], torch.ones_like(w_in), w_in)
    w_out = torch.where(degenerate, torch.ones_like(w_out), w_out)
    in_span = (coef[:, :, None] * basis).sum(dim=1)
    scaled = ((w_in * coef)[:, :, None] * basis).sum(dim=1)
    u = scaled + w_out[:, None] * (z - in_span)
    return u / u.norm(dim=1, keepdim=True).clamp_min(1e-30)


def deflect(
    u: torch.Tensor,
    origins: torch.Tensor,
    own: torch.Tensor,
    centres: torch.Tensor,
    known: torch.Tensor,
    fraction: float,
) -> torch.Tensor:
    """Bend unit directions away from the nearest rival class centre.

    The component ``t = u . r`` of ``u`` toward the nearest rival centre (when positive) is
    changed to ``(1 - 2 * fraction) * t``: ``fraction=0`` keeps it, ``0.5`` removes it (the
    fragment flies perpendicular to the rival), ``1`` reflects it (an elastic bounce off the
    rival). The result is renormalised.

    Args:
        u: ``(F, d)`` unit directions.
        origins: ``(F, d)`` where each fragment starts (its seed).
        own: ``(F,)`` class code of each fragment.
        centres: ``(C, d)`` class centres of the real points.
        known: ``(C,)`` bool, classes that have a centre.
        fraction: in ``[0, 1]``.

    Returns:
        ``(F, d)`` unit directions.
    """
    if fraction <= 0 or int(known.sum()) < 2:
        return u
    d2 = torch.cdist(origins, centres).square()
    d2[torch.arange(u.shape[0], device=u.device), own] = float("inf")
    d2[:, ~known] = float("inf")
    rival = centres[d2.argmin(dim=1)]
    r = rival - origins
    r = r / r.norm(dim=1, keepdim=True).clamp_min(1e-30)
    toward = (u * r).sum(dim=1).clamp_min(0.0)
    out = u - 2.0 * fraction * toward[:, None] * r
    norm = out.norm(dim=1, keepdim=True)
    out = torch.where(norm > 1e-6, out, -u)  # aimed exactly at the rival: bounce back
    return out / out.norm(dim=1, keepdim=True).clamp_min(1e-30)


def path_fractions(
    steps: int, step_size: float, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """How far along its path a query is at each step: ``1 - (1 - h) ** s``, ``s = 0..steps``."""
    s = torch.arange(steps + 1, device=device, dtype=dtype)
    return 1.0 - (1.0 - step_size) ** s


def step_log_weights(
    steps: int, mode: str, gamma: float, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Log weight of each path step ``s = 0..steps``: early ``gamma**s``, late ``gamma**(T-s)``, none 1.

    Raises:
        ValueError: ``mode`` is not ``"early"``, ``"late"`` or ``"none"``, or ``gamma`` is not
            a finite number ``> 0`` (``gamma=0`` gave a NaN weight at step 0).
    """
    if mode not in ("early", "late", "none"):
        raise ValueError(f"mode must be one of ['early', 'late', 'none'], got {mode!r}")
    if not 0 < gamma < float("inf"):
        raise ValueError(f"gamma must be a finite number > 0, got {gamma!r}")
    s = torch.arange(steps + 1, device=device, dtype=dtype)
    if mode == "early":
        return s * torch.log(torch.tensor(gamma, dtype=dtype, device=device))
    if mode == "late":
        return (steps - s) * torch.log(torch.tensor(gamma, dtype=dtype, device=device))
    return torch.zeros_like(s)


def _class_max(values: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    out = torch.full(
        (values.shape[0], n_classes), float("-inf"), dtype=values.dtype, device=values.device
    )
    return out.scatter_reduce(1, labels, values, reduce="amax", include_self=True)


def class_logsumexp(values: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``log(sum(exp(values)))`` per row and label: ``(n, K)`` values, ``(n, K)`` labels -> ``(n, C)``."""
    mx = _class_max(values, labels, n_classes)
    safe = torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))
    shifted = torch.exp(values - safe.gather(1, labels))
    total = torch.zeros_like(mx).scatter_add(1, labels, shifted)
    return torch.where(torch.isfinite(mx), safe + total.log(), mx)


def class_targets(
    Q: torch.Tensor, nb_X: torch.Tensor, nb_y: torch.Tensor, logk0: torch.Tensor, n_classes: int
) -> torch.Tensor:
    """Kernel-weighted mean of each class's neighbours, ``(n, C, d)``; the query where absent.

    Args:
        Q: ``(n, d)`` queries.
        nb_X: ``(n, K, d)`` neighbours.
        nb_y: ``(n, K)`` their class codes.
        logk0: ``(n, K)`` log kernel weights of the neighbours at the query.
        n_classes: number of classes ``C``.
    """
    mx0 = _class_max(logk0, nb_y, n_classes)
    a = torch.exp(logk0 - mx0.gather(1, nb_y))
    onehot = torch.zeros(
        nb_y.shape[0], nb_y.shape[1], n_classes, dtype=Q.dtype, device=Q.device
    ).scatter_(2, nb_y[:, :, None], 1.0)
    wk = onehot * a[:, :, None]
    mass = wk.sum(dim=1)
    sums = torch.einsum("nkc,nkd->ncd", wk, nb_X)
    return torch.where(
        (mass > 0)[:, :, None], sums / mass.clamp_min(1e-30)[:, :, None], Q[:, None, :]
    )


def trend_path_scores(
    Q: torch.Tensor,
    nb_X: torch.Tensor,
    nb_d2: torch.Tensor,
    nb_y: torch.Tensor,
    nb_logw: torch.Tensor,
    nb_bandwidth: torch.Tensor,
    n_classes: int,
    fractions: torch.Tensor,
    step_logw: torch.Tensor,
) -> torch.Tensor:
    """Trend-path log scores of every class for a block of queries, ``(n, C)``.

    Each query ``x0`` walks toward every candidate class ``c`` (a class present among its
    ``K`` nearest bank points): the target ``m_c`` is the kernel-weighted mean of the class-``c``
    neighbours, and step ``s`` sits at ``x_s = x0 + a_s (m_c - x0)`` with ``a_s`` from
    :func:`path_fractions`. At each step the class's neighbours vote with
    ``w_j * exp(-|x_s - b_j|^2 / (2 bw_j^2))``; step votes are weighted by ``step_logw`` and
    summed. Distances along the path come in closed form from the step-0 distances, so all
    steps, classes and queries are computed at once (no loop), in ``O(n K^2 d)``.

    Args:
        Q: ``(n, d)`` queries.
        nb_X: ``(n, K, d)`` their K nearest bank points.
        nb_d2: ``(n, K)`` squared distances to them.
        nb_y: ``(n, K)`` class codes of the neighbours.
        nb_logw: ``(n, K)`` log vote weights of the neighbours.
        nb_bandwidth: ``(n, K)`` kernel bandwidth of each neighbour.
        n_classes: number of classes ``C``.
        fractions: ``(T + 1,)`` path fractions ``a_s``.
        step_logw: ``(T + 1,)`` log weight per step.

    Returns:
        ``(n, C)`` natural-log scores, ``-inf`` for classes absent from the neighbours.
    """
    inv2bw = 0.5 / nb_bandwidth.square()
    logk0 = nb_logw - nb_d2 * inv2bw  # (n, K)
    same = nb_y[:, :, None] == nb_y[:, None, :]  # (n, K, K)
    peer = torch.where(same, logk0[:, None, :], torch.full_like(logk0[:, None, :], -torch.inf))
    a = torch.exp(peer - peer.amax(dim=2, keepdim=True))  # 0 for other classes
    a = a / a.sum(dim=2, keepdim=True)  # row j: weights of j's class target
    # u_j = sum_l a_jl y_l with y = x - q is the way from the query to j's class target, so
    # u_j . (q - x_j) = -u_j . y_j; O(n K^2 d) (the Gram matrix route, a @ (Y Y^T), was O(n K^3))
    offsets = nb_X - Q[:, None, :]
    u = a @ offsets  # (n, K, d)
    dot = -(u * offsets).sum(dim=2)
    uu = u.square().sum(dim=2)
    f = fractions[None, None, :]
    d2 = (nb_d2[:, :, None] + 2.0 * f * dot[:, :, None] + f * f * uu[:, :, None]).clamp_min(0.0)
    terms = nb_logw[:, :, None] - d2 * inv2bw[:, :, None] + step_logw[None, None, :]
    per_neighbour = torch.logsumexp(terms, dim=2)  # (n, K)
    return class_logsumexp(per_neighbour, nb_y, n_classes)
