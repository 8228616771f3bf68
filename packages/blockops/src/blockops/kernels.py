"""Blocked distance kernels: pairwise distances, exact k-nearest neighbours, per-label minima.

All kernels are pure functions on tensors: the device follows the inputs, and no call holds
more than one ``(q_block, db_block)`` block of the distance matrix at a time (beyond its output).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from .blocks import GroupShape, block_sizes, knn_group_shape, knn_query_block, positive_int

METRICS = ("sqeuclidean", "euclidean", "cosine", "inner")

# Below these database sizes the streaming path is faster than the grouped selection
# (measured on the 2-core CPU: 6,000 rows, k=10: 23 ms streaming vs 64 ms grouped;
# 50,000 rows: 286 ms vs 169 ms). An explicit ``db_block`` always allows grouping.
_GROUPED_MIN_ROWS = 32768
_GROUPED_ROWS_PER_K = 1536


def _grouping_pays(n_database: int, k: int) -> bool:
    return n_database >= max(_GROUPED_MIN_ROWS, _GROUPED_ROWS_PER_K * k)


def _check_pair(Q: torch.Tensor, D: torch.Tensor, omega: torch.Tensor | None) -> None:
    for name, t in (("Q", Q), ("D", D)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(
                f"{name} must be a torch.Tensor, got {type(t).__name__}; the kernels take "
                f"tensors only: convert with blockops.as_tensor({name}, name={name!r})"
            )
        if t.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n, d), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating tensor, got {t.dtype}")
    if Q.shape[1] != D.shape[1]:
        raise ValueError(f"Q has {Q.shape[1]} features but D has {D.shape[1]}; they must match")
    if Q.device != D.device or Q.dtype != D.dtype:
        raise ValueError(
            f"Q and D must share device and dtype, got {Q.device}/{Q.dtype} and {D.device}/{D.dtype}"
        )
    if omega is not None:
        if not isinstance(omega, torch.Tensor):
            raise TypeError(f"omega must be a torch.Tensor or None, got {type(omega).__name__}")
        if omega.ndim != 2 or omega.shape[0] != Q.shape[1]:
            raise ValueError(
                f"omega must have shape (d, r) with d={Q.shape[1]}, got {tuple(omega.shape)}"
            )


def _centre(D: torch.Tensor) -> torch.Tensor:
    """The row of ``D`` nearest its mean, shape ``(1, d)``: a finite row whenever there is one,
    so that a NaN or inf row cannot make the centre, hence every distance, NaN. For finite
    ``D`` this is exactly the plain mean's nearest row."""
    mean = torch.nan_to_num(D.mean(dim=0), nan=0.0, posinf=0.0, neginf=0.0)
    key = _row_sums(D, lambda X: (X - mean) ** 2).nan_to_num_(nan=float("inf"))
    return D[key.argmin()][None]


# Elements per chunk of the row-wise passes over the database: their temporaries stay a few
# MiB instead of a copy of the database each.
_ROW_CHUNK_ELEMS = 2**18


def _row_sums(X: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``fn(X).sum(1)``, shape ``(n,)``, computed over chunks of rows: the same values
    without an ``(n, d)`` temporary."""
    step = max(1, _ROW_CHUNK_ELEMS // max(X.shape[1], 1))
    if X.shape[0] <= step:
        return fn(X).sum(1)
    return torch.cat([fn(X[a:b]).sum(1) for a, b in _ranges(X.shape[0], step)])


_HALF = (torch.float16, torch.bfloat16)


def _prepare(
    Q: torch.Tensor, D: torch.Tensor, metric: str, omega: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Project, centre or normalise once; return (Q', D', |Q'|^2, |D'|^2) as the metric needs.

    float16 / bfloat16 inputs are computed in float32 (the callers cast their results back):
    in half precision ``|q|^2 + |x|^2 - 2 q.x`` overflows to ``inf - inf`` and its cancellation
    leaves errors far larger than the distances of near rows.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    _check_pair(Q, D, omega)
    if Q.dtype in _HALF:
        Q, D = Q.float(), D.float()
    if omega is not None:
        omega = omega.to(device=Q.device, dtype=Q.dtype)
        Q, D = Q @ omega, D @ omega
    if metric in ("sqeuclidean", "euclidean"):
        # Translation invariance: centring on the database row nearest D's mean keeps the
        # |q|^2+|x|^2-2q.x form accurate far from the origin; a data row (not the mean itself)
        # keeps exactly representable inputs exact, so ties stay ties.
        centre = _centre(D) if D.shape[0] else 0.0
        Q, D = Q - centre, D - centre
        return Q, D, (Q * Q).sum(1), _row_sums(D, lambda X: X * X)
    if metric == "cosine":
        Q, D = _unit_rows(Q), _unit_rows(D)
    return Q, D, None, None


def _unit_rows(X: torch.Tensor) -> torch.Tensor:
    """Rows of ``X`` scaled to unit norm (zero rows stay zero). Each row is first divided by
    its largest magnitude: the squared norm of a row beyond ~1e19 (or below ~1e-19) would
    overflow (underflow) float32, making cosine 1 between equal rows (or 0 between any)."""
    tiny = torch.finfo(X.dtype).tiny
    if X.shape[1]:
        X = X / X.abs().amax(dim=1, keepdim=True).clamp_min(tiny)
    return X / X.norm(dim=1, keepdim=True).clamp_min(tiny)


def _augment(
    Qp: torch.Tensor, Dp: torch.Tensor, qsq: torch.Tensor | None, dsq: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows whose products are whole distances: ``[q, |q|^2, 1] . [-2x, 1, |x|^2]`` for the
    Euclidean metrics (one matrix product per block, no broadcast pass), unchanged otherwise."""
    if qsq is None or dsq is None:
        return Qp, Dp
    ones_q = torch.ones(Qp.shape[0], 1, dtype=Qp.dtype, device=Qp.device)
    d = Dp.shape[1]
    # filled in place: one (nd, d + 2) buffer rather than a scaled copy and its concatenation
    Da = Dp.new_empty(Dp.shape[0], d + 2)
    Da[:, :d] = Dp
    Da[:, :d].mul_(-2.0)
    Da[:, d] = 1.0
    Da[:, d + 1] = dsq
    return torch.cat([Qp, qsq[:, None], ones_q], 1), Da


def _block(Qb: torch.Tensor, Db: torch.Tensor, metric: str) -> torch.Tensor:
    """Distances of one block of :func:`_augment` rows, shape ``(len(Qb), len(Db))``."""
    dist = Qb @ Db.T
    if metric in ("sqeuclidean", "euclidean"):
        dist.clamp_min_(0.0)
        if metric == "sqeuclidean":
            return dist
        if not dist.requires_grad:
            return dist.sqrt_()
        # sqrt's gradient at 0 is inf (NaN after the chain rule): a zero distance gets the
        # zero subgradient, as in torch.cdist (NaN stays NaN)
        zero = dist == 0
        return torch.where(zero, 0.0, torch.where(zero, 1.0, dist).sqrt())
    if metric == "cosine":
        return dist.neg_().add_(1.0).clamp_min_(0.0)
    return dist.neg_()


def _ranges(n: int, step: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, step):
        yield start, min(start + step, n)


def pairwise_distances(
    Q: torch.Tensor,
    D: torch.Tensor,
    metric: str = "sqeuclidean",
    *,
    omega: torch.Tensor | None = None,
    q_block: int | None = None,
    db_block: int | None = None,
) -> torch.Tensor:
    """All distances between queries ``Q`` (nq, d) and database ``D`` (nd, d): shape (nq, nd).

    Args:
        metric: ``"sqeuclidean"``, ``"euclidean"``, ``"cosine"`` (1 - cosine similarity) or
            ``"inner"`` (negative inner product: smaller is nearer).
        omega: optional (d, r) linear map; distances are taken between ``Q @ omega`` and ``D @ omega``.
        q_block: queries per block; ``None`` chooses it from the memory budget.
        db_block: database rows per block; ``None`` chooses it from the memory budget.

    The Euclidean metrics use ``|q|^2 + |x|^2 - 2 q.x`` about a database row ``c``: the error
    is absolute, about ``eps * (|q-c|^2 + |x-c|^2)``, so ``"euclidean"`` distances near zero
    are off by up to about its square root (a query equal to a database row of 64-d
    standard-normal float32 data: up to ~0.01 instead of 0), which may vary with the blocks.
    ``"cosine"`` (``1 - q.x`` of unit rows) is off by a few ``eps`` whatever the distance (up to
    3e-7 in float32 at d=16), so nearly parallel rows (16-d data shifted 1000 from the origin:
    distances ~1e-6) are only roughly ordered; use float64 there.
    """
    Qp, Dp, qsq, dsq = _prepare(Q, D, metric, omega)
    out = torch.empty(Q.shape[0], D.shape[0], dtype=Q.dtype, device=Q.device)
    if out.numel() == 0:
        return out
    qb, dbb = block_sizes(Q.shape[0], D.shape[0], Q.device, Qp.dtype, q_block, db_block)
    Qa, Da = _augment(Qp, Dp, qsq, dsq)
    for q0, q1 in _ranges(Q.shape[0], qb):
        for d0, d1 in _ranges(D.shape[0], dbb):
            out[q0:q1, d0:d1] = _block(Qa[q0:q1], Da[d0:d1], metric)
    return out


def _smallest(dist: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` smallest entries of each row; among equal values the lower column wins."""
    n = dist.shape[1]
    if k >= n:
        return torch.sort(dist, dim=1, stable=True)
    vals, idx = torch.topk(dist, k + 1, dim=1, largest=False, sorted=True)
    tied = vals[:, k - 1] == vals[:, k]
    vals, idx = vals[:, :k].contiguous(), idx[:, :k].contiguous()
    if bool(tied.any()):
        # A tie straddles the k-th place: keep every entry below the boundary value and the
        # lowest columns equal to it (one linear pass per tied row, no sort of the row).
        rows = tied.nonzero().squeeze(1)
        sub = dist[rows]
        edge = vals[rows, k - 1 :]
        below = sub < edge
        equal = sub == edge
        need = k - below.sum(dim=1, keepdim=True)
        keep = below | (equal & (equal.cumsum(dim=1) <= need))
        cols = keep.nonzero()[:, 1].view(len(rows), k)  # ascending columns
        sv, order = torch.sort(sub.gather(1, cols), dim=1, stable=True)
        vals[rows], idx[rows] = sv, cols.gather(1, order)
    return vals, idx


def _merge(vals: torch.Tensor, idx: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the ``k`` smallest (value, index) pairs per row, ordered by value then index."""
    idx, order = torch.sort(idx, dim=1)
    vals = vals.gather(1, order)
    vals, order = torch.sort(vals, dim=1, stable=True)
    return vals[:, :k], idx.gather(1, order)[:, :k]


def knn(
    Q: torch.Tensor,
    D: torch.Tensor,
    k: int,
    *,
    metric: str = "sqeuclidean",
    omega: torch.Tensor | None = None,
    exclude_self: bool = False,
    q_block: int | None = None,
    db_block: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest database rows of every query, streaming over database blocks.

    float32 inputs take an exact two-stage selection: per database block, only the minima of
    groups of consecutive rows are kept; the ``k`` best groups (and, a level up, the ``k`` best
    groups of groups) must hold the ``k`` nearest rows, whose distances are then recomputed and
    ranked. Other dtypes, or a ``k`` too large for grouping to pay, stream full blocks.

    Args:
        Q: queries (nq, d).
        D: database (nd, d), same device and dtype as ``Q``.
        k: neighbours per query, ``1 <= k <= nd`` (``nd - 1`` with ``exclude_self``).
        metric: ``"sqeuclidean"``, ``"euclidean"``, ``"cosine"`` or ``"inner"``.
        omega: optional (d, r) linear map; distances are taken between ``Q @ omega`` and ``D @ omega``.
        exclude_self: ``Q`` and ``D`` are the same rows; row i never returns itself.
        q_block: queries per block; ``None`` chooses it from the memory budget.
        db_block: database rows per block; ``None`` chooses it from the memory budget.

    Returns:
        ``(distances (nq, k), indices (nq, k) long)``, ascending, ties broken by lower index.
        Ties are equal computed distances: duplicate database rows may differ in the last bit
        (the matrix product rounds by position in the block), so their order can follow it.
        float16 / bfloat16 inputs are ranked by their float32 distances, then rounded: two
        returned values may be equal with the truly nearer (higher) index first.
    """
    k = positive_int(k, "k")
    Qp, Dp, qsq, dsq = _prepare(Q, D, metric, omega)
    nq, nd = Q.shape[0], D.shape[0]
    if exclude_self and nq != nd:
        raise ValueError(f"exclude_self needs Q and D with the same rows, got {nq} and {nd}")
    available = nd - 1 if exclude_self else nd
    if k > available:
        raise ValueError(
            f"k={k} is larger than the database ({available} candidate rows"
            f"{' excluding self' if exclude_self else ''})"
        )
    qb, dbb = block_sizes(nq, nd, Q.device, Qp.dtype, q_block, db_block)
    if nq and Q.dtype == torch.float32 and (db_block is not None or _grouping_pays(nd, k)):
        shape = knn_group_shape(nd, k + int(exclude_self), dbb if db_block else None, Q.device)
        # int32 ids; a NaN row would hide its whole group from the group minima (streaming
        # ranks NaN distances last, as a brute-force topk does), found through the (nd,) row
        # norms or sums rather than an (nd, d) mask; the grouped selection has no autograd,
        # so gradients take the streaming path
        if (
            shape is not None
            and -(-nd // shape.db_block) * shape.db_block < 2**31
            and not (torch.is_grad_enabled() and (Qp.requires_grad or Dp.requires_grad))
            and bool(torch.isfinite(dsq if dsq is not None else Dp.sum(1)).all())
        ):
            if q_block is None:
                qb = knn_query_block(nq, nd, Qp.shape[1], shape, Q.device, k + 1)
            return _knn_grouped(Qp, Dp, qsq, dsq, k, metric, exclude_self, qb, shape)
    vals, idx = _knn_streaming(Qp, Dp, qsq, dsq, k, metric, exclude_self, qb, dbb)
    return vals.to(Q.dtype), idx


def _knn_streaming(
    Qp: torch.Tensor,
    Dp: torch.Tensor,
    qsq: torch.Tensor | None,
    dsq: torch.Tensor | None,
    k: int,
    metric: str,
    exclude_self: bool,
    qb: int,
    dbb: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of every full distance block, merged across blocks (any dtype, any ``k``)."""
    nq, nd = Qp.shape[0], Dp.shape[0]
    out_v = torch.empty(nq, k, dtype=Qp.dtype, device=Qp.device)
    out_i = torch.empty(nq, k, dtype=torch.long, device=Qp.device)
    Qa, Da = _augment(Qp, Dp, qsq, dsq)
    for q0, q1 in _ranges(nq, qb):
        best_v = best_i = None
        for d0, d1 in _ranges(nd, dbb):
            dist = _block(Qa[q0:q1], Da[d0:d1], metric)
            if exclude_self:
                lo, hi = max(q0, d0), min(q1, d1)
                if lo < hi:
                    r = torch.arange(lo, hi, device=Qp.device)
                    dist[r - q0, r - d0] = float("inf")
            v, i = _smallest(dist, min(k, d1 - d0))
            i = i + d0  # not in place: topk's backward keeps its indices
            if best_v is None:
                best_v, best_i = v, i
            else:
                best_v, best_i = _merge(torch.cat([best_v, v], 1), torch.cat([best_i, i], 1), k)
        out_v[q0:q1], out_i[q0:q1] = _merge(best_v, best_i, k)
    return out_v, out_i


_KEY_MAX = torch.iinfo(torch.int64).max
_LOW31 = 0x7FFFFFFF
_LITTLE = sys.byteorder == "little"


def _to_keys(values: torch.Tensor, ids: torch.Tensor, signed: bool) -> torch.Tensor:
    """Pack float32 ``values`` and int32 ``ids`` in ``[0, 2**31)`` into int64 keys that order
    as (value, id), so that one ``topk`` ranks by distance and breaks ties by the lower id.

    The float's bits become an int32 that orders like the float (for negative floats, which
    only ``signed`` metrics produce, the magnitude bits are flipped); adding ``0.0`` folds
    ``-0.0`` onto ``0.0`` so that they tie.
    """
    bits = (values + 0.0).view(torch.int32)
    if signed:
        bits = torch.where(bits < 0, bits ^ _LOW31, bits)
    ids = ids.expand_as(bits)
    if _LITTLE:  # the int64 whose high word is ``bits`` and low word is ``ids``
        return torch.stack((ids, bits), dim=-1).view(torch.int64).squeeze(-1)
    return bits.to(torch.int64) * 2**32 + ids


def _key_ids(keys: torch.Tensor) -> torch.Tensor:
    """The ids of :func:`_to_keys` keys, as int64."""
    if _LITTLE:
        return keys.view(torch.int32)[..., 0::2].long()
    return keys % 2**32


def _key_values(keys: torch.Tensor, signed: bool) -> torch.Tensor:
    """The float32 values of :func:`_to_keys` keys."""
    if _LITTLE:
        bits = keys.view(torch.int32)[..., 1::2]
    else:
        bits = torch.div(keys, 2**32, rounding_mode="floor").to(torch.int32)
    if signed:
        bits = torch.where(bits < 0, bits ^ _LOW31, bits)
    return bits.contiguous().view(torch.float32)


def _finish(p: torch.Tensor, qsq: torch.Tensor | None, metric: str) -> torch.Tensor:
    """Turn partial distances into distances, monotone non-decreasing in ``p`` on every row.

    ``p`` is ``|x|^2 - 2 q.x`` (Euclidean metrics) or ``-q.x`` (cosine, inner), with queries
    along dim 0; ``qsq`` has been shaped to broadcast against it.
    """
    if metric in ("sqeuclidean", "euclidean"):
        p = torch.add(p, qsq).clamp_min_(0.0)
        return p.sqrt_() if metric == "euclidean" else p
    if metric == "cosine":
        return torch.add(p, 1.0).clamp_min_(0.0)
    return p


def _knn_grouped(
    Qp: torch.Tensor,
    Dp: torch.Tensor,
    qsq: torch.Tensor | None,
    dsq: torch.Tensor | None,
    k: int,
    metric: str,
    exclude_self: bool,
    qb: int,
    shape: GroupShape,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k of float32 distances by two-level group minima (see :func:`knn`).

    Database rows are cut into groups of ``g1`` consecutive rows and super-groups of ``g2``
    consecutive groups. Ordering groups by (minimum distance, group id) keeps the exact
    (distance, index) order of their best members, because groups are contiguous index
    ranges; hence the ``k`` nearest rows lie in the ``k`` best groups, and those lie in the
    ``k`` best super-groups. ``exclude_self`` takes ``k + 1`` at the group levels (self holds
    at most one slot). Each database block is stored permuted so that the group minima are
    element-wise minima of ``g1`` contiguous slabs of the distance block.
    """
    dev = Qp.device
    nq, nd, d = Qp.shape[0], Dp.shape[0], Qp.shape[1]
    g1, g2, nb = shape.g1, shape.g2, shape.db_block
    n_blocks = -(-nd // nb)
    nd_pad = n_blocks * nb
    n_super = nb // (g1 * g2)  # super-groups per block
    width = d + 1 + (-(d + 1) % 4 if dev.type == "cuda" else 0)

    # Augmented rows: p = [s*q, 1, 0..] . [x, c, 0..] = c - s' q.x in one matrix product;
    # padding rows carry c = inf so that they are never nearer than a real row.
    # block b, position t*(g2*S) + u*S + s  <-  row b*nb + (s*g2 + u)*g1 + t; written one
    # block at a time through a (nb, width) staging buffer, never a second database copy
    Dperm = torch.empty(nd_pad, width, dtype=Dp.dtype, device=dev)
    target = Dperm.view(n_blocks, g1, g2, n_super, width).permute(0, 3, 2, 1, 4)
    stage = torch.zeros(nb, width, dtype=Dp.dtype, device=dev)
    for b, (r0, r1) in enumerate(_ranges(nd_pad, nb)):
        n = min(r1, nd) - r0
        stage[:n, :d] = Dp[r0 : r0 + n]
        stage[:n, d] = dsq[r0 : r0 + n] if dsq is not None else 0.0
        stage[n:] = 0.0
        stage[n:, d] = float("inf")
        target[b].copy_(stage.view(n_super, g2, g1, width))
    del stage
    Qa = torch.zeros(nq, width, dtype=Qp.dtype, device=dev)
    torch.mul(Qp, -2.0 if dsq is not None else -1.0, out=Qa[:, :d])
    Qa[:, d] = 1.0

    out_v = torch.empty(nq, k, dtype=Qp.dtype, device=dev)
    out_i = torch.empty(nq, k, dtype=torch.long, device=dev)
    p = gmin = None
    for q0, q1 in _ranges(nq, qb):
        m = q1 - q0
        Qb = Qa[q0:q1]
        if p is None or p.shape[0] != m:
            p = torch.empty(m, nb, dtype=Qp.dtype, device=dev)
            gmin = torch.empty(n_blocks, m, g2, n_super, dtype=Qp.dtype, device=dev)
        for b in range(n_blocks):
            torch.mm(Qb, Dperm[b * nb : (b + 1) * nb].T, out=p)
            torch.amin(p.view(m, g1, -1), dim=1, out=gmin[b].view(m, -1))
        with _few_threads(dev, _SERIAL_SELECTION):
            _select(out_v, out_i, q0, m, Qb, Dperm, gmin, qsq, k, metric, exclude_self, shape, nd)
    return out_v, out_i


_SERIAL_SELECTION = True


@contextmanager
def _few_threads(device: torch.device, serial: bool = True) -> Iterator[None]:
    """Run the small selection steps on one CPU thread (of the calling thread's OpenMP team).

    They touch about a sixteenth of a block each; splitting them across threads costs a
    synchronisation per operation, which on a loaded machine outweighs the work.
    """
    n = torch.get_num_threads()
    if device.type != "cpu" or n == 1 or not serial:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _select(
    out_v: torch.Tensor,
    out_i: torch.Tensor,
    q0: int,
    m: int,
    Qb: torch.Tensor,
    Dperm: torch.Tensor,
    gmin: torch.Tensor,
    qsq: torch.Tensor | None,
    k: int,
    metric: str,
    exclude_self: bool,
    shape: GroupShape,
    nd: int,
) -> None:
    """Stages 1a, 1b and 2 of :func:`_knn_grouped` for queries ``q0 : q0 + m``."""
    dev = Qb.device
    g1, g2 = shape.g1, shape.g2
    n_blocks, n_super = gmin.shape[0], gmin.shape[3]
    k_eff = k + int(exclude_self)
    k_super = min(k_eff, n_blocks * n_super)
    k_group = min(k_eff, n_blocks * n_super * g2)
    signed = metric == "inner"
    super_ids = torch.arange(n_blocks * n_super, dtype=torch.int32, device=dev)
    t_range = torch.arange(g1, device=dev)
    u_range = torch.arange(g2, device=dev)
    qs = None if qsq is None else qsq[q0 : q0 + m, None]
    rows = torch.arange(m, device=dev)[:, None]

    # Stage 1a: the best super-groups, id = b * n_super + s.
    sval = _finish(gmin.amin(dim=2).permute(1, 0, 2).reshape(m, -1), qs, metric)
    skeys = torch.topk(_to_keys(sval, super_ids, signed), k_super, 1, largest=False)[0]
    sid = _key_ids(skeys)  # (m, k_super)
    # Stage 1b: their groups, id = super id * g2 + u.
    blk = torch.div(sid, n_super, rounding_mode="floor")[:, :, None]
    gval = gmin[blk, rows[:, :, None], u_range, (sid[:, :, None] - blk * n_super)]
    gval = _finish(gval.view(m, -1), qs, metric)
    gid = (sid[:, :, None] * g2 + u_range).view(m, -1)
    gkeys = torch.topk(_to_keys(gval, gid.int(), signed), k_group, 1, largest=False)[0]
    # Stage 2: recompute the members of the best groups and rank them exactly.
    idx = (_key_ids(gkeys)[:, :, None] * g1 + t_range).view(m, -1)
    cand = torch.bmm(Dperm[_permuted_rows(idx, shape, n_super)], Qb[:, :, None]).view(m, -1)
    if exclude_self:
        cand.masked_fill_(idx == rows + q0, float("inf"))
    keys = _to_keys(_finish(cand, qs, metric), idx.int(), signed)
    if Dperm.shape[0] > nd:
        keys.masked_fill_(idx >= nd, _KEY_MAX)
    best = torch.topk(keys, k, 1, largest=False, sorted=True)[0]
    out_v[q0 : q0 + m] = _key_values(best, signed)
    out_i[q0 : q0 + m] = _key_ids(best)


def _permuted_rows(rows: torch.Tensor, shape: GroupShape, n_super: int) -> torch.Tensor:
    """Positions in the permuted database of :func:`_knn_grouped` of the database ``rows``."""
    g1, g2, nb = shape.g1, shape.g2, shape.db_block
    w = rows % nb
    return rows - w + (w % g1) * (g2 * n_super) + (w // g1 % g2) * n_super + w // (g1 * g2)


def nearest(
    Q: torch.Tensor,
    D: torch.Tensor,
    *,
    metric: str = "sqeuclidean",
    omega: torch.Tensor | None = None,
    q_block: int | None = None,
    db_block: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest database row of every query: ``(distance (nq,), index (nq,))``, lower index on ties."""
    Qp, Dp, qsq, dsq = _prepare(Q, D, metric, omega)
    if D.shape[0] == 0:
        raise ValueError("D is empty; nearest needs at least one database row")
    nq, nd = Q.shape[0], D.shape[0]
    qb, dbb = block_sizes(nq, nd, Q.device, Qp.dtype, q_block, db_block)
    best_v = torch.full((nq,), float("inf"), dtype=Qp.dtype, device=Q.device)
    best_i = torch.zeros(nq, dtype=torch.long, device=Q.device)
    Qa, Da = _augment(Qp, Dp, qsq, dsq)
    inf = float("inf")
    for q0, q1 in _ranges(nq, qb):
        for d0, d1 in _ranges(nd, dbb):
            dist = _block(Qa[q0:q1], Da[d0:d1], metric)
            # NaN is never nearest (knn and torch.topk rank it last); in place unless the
            # euclidean sqrt's backward needs the block
            fix = torch.nan_to_num if dist.requires_grad else torch.nan_to_num_
            v, i = fix(dist, nan=inf, posinf=inf, neginf=-inf).min(dim=1)
            better = v < best_v[q0:q1]
            best_v[q0:q1] = torch.where(better, v, best_v[q0:q1])
            best_i[q0:q1] = torch.where(better, i + d0, best_i[q0:q1])
    return best_v.to(Q.dtype), best_i


def label_min(
    Q: torch.Tensor,
    D: torch.Tensor,
    labels: torch.Tensor,
    n_labels: int,
    *,
    metric: str = "sqeuclidean",
    omega: torch.Tensor | None = None,
    q_block: int | None = None,
    db_block: int | None = None,
) -> torch.Tensor:
    """Minimum distance from each query to the database rows of each label.

    Args:
        labels: (nd,) integer codes in ``[0, n_labels)``.

    Returns:
        (nq, n_labels); ``inf`` where a label has no database row. A NaN distance (a NaN
        query or database row) is never a minimum, as in ``nearest``: a label whose
        distances are all NaN gets ``inf`` too.
    """
    _check_pair(Q, D, omega)
    try:
        labels = torch.as_tensor(labels, device=D.device)
    except (TypeError, ValueError, RuntimeError) as exc:  # strings, None, objects
        raise TypeError(
            f"labels must be integer codes in [0, n_labels) (encode them with "
            f"blockops.LabelEncoder), got {type(labels).__name__}: {exc}"
        ) from exc
    if labels.ndim != 1 or labels.shape[0] != D.shape[0]:
        raise ValueError(
            f"labels must have shape ({D.shape[0]},) to match D, got {tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integer codes, got {labels.dtype}")
    n_labels = positive_int(n_labels, "n_labels")
    labels = labels.long()
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_labels):
        raise ValueError(
            f"labels must lie in [0, {n_labels}), got {int(labels.min())}..{int(labels.max())}"
        )
    Qp, Dp, qsq, dsq = _prepare(Q, D, metric, omega)
    nq, nd = Q.shape[0], D.shape[0]
    out = torch.full((nq, n_labels), float("inf"), dtype=Qp.dtype, device=Q.device)
    if nd == 0 or nq == 0:
        return out.to(Q.dtype)
    qb, dbb = block_sizes(nq, nd, Q.device, Qp.dtype, q_block, db_block)
    Qa, Da = _augment(Qp, Dp, qsq, dsq)
    inf = float("inf")
    for q0, q1 in _ranges(nq, qb):
        rows = torch.full_like(out[q0:q1], inf)
        for d0, d1 in _ranges(nd, dbb):
            dist = _block(Qa[q0:q1], Da[d0:d1], metric)
            # NaN is never a minimum (amin propagates it); in place unless autograd needs the block
            fix = torch.nan_to_num if dist.requires_grad else torch.nan_to_num_
            dist = fix(dist, nan=inf, posinf=inf, neginf=-inf)
            index = labels[d0:d1].expand(q1 - q0, -1)
            # not in place: the amin's backward keeps its result (only (q_block, n_labels))
            rows = rows.scatter_reduce(1, index, dist, reduce="amin", include_self=True)
        out[q0:q1] = rows
    return out.to(Q.dtype)
