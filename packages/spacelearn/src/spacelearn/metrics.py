"""How partitioned and how decodable a set of subspaces is."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from ._checks import numeric_tensor, warn
from ._find_subspaces import decoders_from_moments
from ._stats import DEFAULT_BLOCK, as_latent, flat_target, moments
from .loss._common import check_mapping
from .optim._subspace_change import check_direction, principal_cosines


def max_principal_cosine(W: Mapping[str, Tensor]) -> float:
    """Largest principal-angle cosine between the subspaces of two *different* quantities.

    1.0: two quantities share a latent direction; 0.0: all subspaces are mutually orthogonal.
    Bases may be tensors, numpy arrays or nested lists. A basis that is not ``(k, D)`` with
    the same ``D`` as the others, is all zero (no direction) or holds NaN / inf, is a
    ``ValueError`` naming its quantity. An empty ``(0, D)`` basis shares no direction (0).
    """
    bases = {q: numeric_tensor(W[q], f"W[{q!r}]") for q in check_mapping(W, "W").keys()}
    width = None
    for q, w in bases.items():
        if w.ndim != 2 or (width is not None and w.shape[1] != width):
            like = "" if width is None else f"={width}, like the other bases"
            raise ValueError(f"W[{q!r}] must be a (k, D{like}) basis, got shape {tuple(w.shape)}")
        width = w.shape[1]
        check_direction(w, f"W[{q!r}]")
    names = list(bases)
    best = 0.0
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            cosines = principal_cosines(bases[a], bases[b])  # empty for a (0, D) basis
            best = max(best, float(cosines.max())) if cosines.numel() else best
    return best


def decoding_r2(
    W: Mapping[str, Tensor],
    Z_fit: Tensor,
    Y_fit: Mapping[str, Tensor],
    Z_eval: Tensor,
    Y_eval: Mapping[str, Tensor],
) -> dict[str, dict[str, float]]:
    """Held-out R^2 of decoding each quantity linearly from each subspace.

    Decoders (and the means) are fitted on ``(Z_fit, Y_fit)``; R^2 = 1 - SSE / SST is measured
    on ``(Z_eval, Y_eval)`` over all target entries (SST about the evaluation means): scikit-learn's
    ``r2_score(..., multioutput="variance_weighted")``, not its default average of per-column
    scores. The evaluation set is streamed in row blocks cast to float64 one at a time, so the
    extra memory is a block (4096 rows), not a float64 copy of ``Z_eval``.

    Returns:
        ``r2[q][p]``: quantity ``q`` decoded from subspace ``p``. ``r2[q][q]`` is the own-subspace
        score, the others are cross scores. NaN (with a warning) for a quantity that is constant
        over the evaluation set: R^2 is undefined there.

    Raises:
        ValueError: ``Z_fit`` has fewer than 2 rows (nothing to fit a decoder on), ``Z_eval``
            has fewer than 2 rows (no variance to explain), ``Z_eval`` or a
            basis ``W[p]`` does not match ``Z_fit``'s width, a basis is not numeric or holds
            NaN / inf, or a ``Y_eval[q]`` has another width than ``Y_fit[q]``.
        KeyError: ``Y_eval`` lacks a quantity of ``Y_fit``.
        TypeError: ``W``, ``Y_fit`` or ``Y_eval`` is not a dict.
    """
    mom = moments(Z_fit, Y_fit, names=("Z_fit", "Y_fit"))
    if mom.n < 2:  # centred on one row, every latent is 0: the decoders would be all zero
        raise ValueError(
            f"Z_fit must have at least 2 rows (the decoders are fitted on centred latents), "
            f"got {mom.n}"
        )
    if not isinstance(Y_eval, Mapping):
        raise TypeError(f"Y_eval must be a dict {{name: tensor}}, got {type(Y_eval).__name__}")
    Ze = as_latent(Z_eval, name="Z_eval", device=mom.device)  # its own dtype: cast per block
    if Ze.shape[0] < 2:
        raise ValueError(
            f"Z_eval must have at least 2 rows (R^2 compares against the evaluation variance), "
            f"got {Ze.shape[0]}"
        )
    D = mom.Szz.shape[0]
    if Ze.shape[1] != D:
        raise ValueError(
            f"Z_eval has {Ze.shape[1]} columns but Z_fit has {D}; they must be the same latents"
        )
    bases = {}
    for p in check_mapping(W, "W").keys():
        w64 = numeric_tensor(W[p], f"W[{p!r}]").to(device=Ze.device, dtype=torch.float64)
        if w64.ndim != 2 or w64.shape[1] != D:
            raise ValueError(
                f"W[{p!r}] must be a (k, D={D}) basis matching Z_fit, got shape {tuple(w64.shape)}"
            )
        if not bool(torch.isfinite(w64).all()):  # a diverged trainable basis: R^2 would be NaN
            raise ValueError(f"W[{p!r}] contains NaN or infinite values")
        bases[p] = w64
    targets: dict[str, Tensor] = {}
    for q in Y_fit:
        if q not in Y_eval:
            raise KeyError(
                f"Y_eval has no entry for quantity {q!r} of Y_fit; its keys are {list(Y_eval)}"
            )
        y = numeric_tensor(Y_eval[q], f"Y_eval[{q!r}]")
        ye = flat_target(  # floating targets keep their dtype (cast per block), others float64
            y,
            name=q,
            n_rows=Ze.shape[0],
            device=Ze.device,
            dtype=y.dtype if y.is_floating_point() else torch.float64,
            arg="Y_eval",
            rows_of="Z_eval",
        )
        if ye.shape[1] != mom.mean_y[q].shape[0]:
            raise ValueError(
                f"Y_eval[{q!r}] has {ye.shape[1]} columns (flattened) but Y_fit[{q!r}] has "
                f"{mom.mean_y[q].shape[0]}"
            )
        targets[q] = ye
    decoders = {
        q: {p: decoders_from_moments(_single(mom, q), {q: w64})[q] for p, w64 in bases.items()}
        for q in targets
    }
    # Two passes over row blocks of DEFAULT_BLOCK, all in float64: the evaluation means of the
    # targets first (SST is then centred exactly, as scikit-learn does), then SSE and SST.
    n, block = Ze.shape[0], DEFAULT_BLOCK
    mean_y: dict[str, Tensor] = {}
    constant: dict[str, bool] = {}
    for q, ye in targets.items():
        first = ye[:1].to(torch.float64)
        total = torch.zeros_like(first[0])
        same = True
        for yb in ye.split(block):
            yb = yb.to(torch.float64)
            total += yb.sum(0)
            same = same and bool((yb == first).all())  # exactly: rounding leaves sst > 0
        mean_y[q], constant[q] = total / n, same
    sst = {q: 0.0 for q in targets}
    sse = {q: dict.fromkeys(bases, 0.0) for q in targets}
    for start in range(0, n, block):
        centred = Ze[start : start + block] - mom.mean_z  # float64 by promotion, exact
        codes = {p: centred @ w64.mT for p, w64 in bases.items()}
        for q, ye in targets.items():
            yb = ye[start : start + block].to(torch.float64)
            sst[q] += float((yb - mean_y[q]).pow(2).sum())
            for p, A in decoders[q].items():
                sse[q][p] += float((codes[p] @ A + mom.mean_y[q] - yb).pow(2).sum())
    out: dict[str, dict[str, float]] = {}
    for q in targets:
        if constant[q]:
            warn(f"Y_eval[{q!r}] is constant over the evaluation set; its R^2 is undefined (NaN)")
            out[q] = dict.fromkeys(bases, math.nan)
        else:
            out[q] = {p: 1.0 - sse[q][p] / sst[q] for p in bases}
    return out


class _single:
    """View of a :class:`Moments` restricted to one quantity (duck-typed for the decoders)."""

    def __init__(self, mom, q: str) -> None:
        self.Szz = mom.Szz
        self.Szy = {q: mom.Szy[q]}


def mean_own_r2(r2: Mapping[str, Mapping[str, float]]) -> float:
    """Mean over quantities of the own-subspace score of :func:`decoding_r2`.

    Raises:
        KeyError: a quantity ``q`` of ``r2`` has no own score ``r2[q][q]``, i.e. the bases ``W``
            given to :func:`decoding_r2` lack a quantity of its targets ``Y_fit``.
    """
    for q in r2:
        if q not in r2[q]:
            raise KeyError(
                f"r2[{q!r}] has no own-subspace score r2[{q!r}][{q!r}]: the bases W given to "
                f"decoding_r2 lack quantity {q!r} of Y_fit (W has {list(r2[q])})"
            )
    return sum(r2[q][q] for q in r2) / max(len(r2), 1)


__all__ = ["decoding_r2", "max_principal_cosine", "mean_own_r2"]
