"""Distances between samples and prototypes: pure kernels and the learnable distance components.

Kernels are pure functions on tensors, differentiable, device following the inputs. Shapes:
``X (n, d)`` samples, ``W (p, d)`` prototypes, result ``(n, p)``. Global metrics project the
data and the prototypes once, shift both by a common centre (the distances are translation
invariant; unshifted, the form cancels every float32 digit for data far from the origin) and
use ``|a|^2 + |b|^2 - 2 a.b`` (clamped at 0), so a step costs
``(n + p) d l + n p l`` and never builds an ``(n, p, d)`` difference tensor.

Components (:class:`Distance` subclasses) own their learnable parameter groups (``omega``,
``omegas``, ``relevances``, ``bases``), initialise them, keep their invariants after each
optimizer step (trace-normalised Λ, relevances on the simplex, orthonormal tangent bases) and
provide a blocked, no-grad class-wise minimum for prediction through :mod:`blockops`.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import blockops
import torch

from ._checks import check_number, is_number

Params = dict[str, torch.Tensor]

# --------------------------------------------------------------------------- kernels


def squared_euclidean(X: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``(n, p)`` via ``|x|^2 + |w|^2 - 2 x.w``, clamped at 0.

    Both sides are first shifted by the prototypes' mean (the distance is translation
    invariant): far from the origin (rows near 1e4 with unit spread) the unshifted form
    cancels every digit of float32.
    """
    if W.shape[0]:
        centre = W.detach().mean(0)
        X, W = X - centre, W - centre
    return _expanded_squared_euclidean(X, W)


def _expanded_squared_euclidean(X: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """``|x|^2 + |w|^2 - 2 x.w`` ``(n, p)`` clamped at 0, for inputs already near the origin."""
    xx = (X * X).sum(1, keepdim=True)
    ww = (W * W).sum(1)
    return torch.addmm(xx + ww, X, W.T, beta=1.0, alpha=-2.0).clamp_min(0.0)


def _centred(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(c, X - c)`` for the column mean ``c (d,)`` of ``X (n, d)``. The distances are
    translation invariant; the closed forms shift the data and the prototypes by ``c`` so that
    their expanded products do not cancel far from the origin."""
    c = X.mean(0)
    return c, X - c


def _centred_with_squares(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`_centred` plus the squares ``(X - c)^2`` for the relevance gradient."""
    c, Xc = _centred(X)
    return c, Xc, Xc * Xc


def _centred_with_ones(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`_centred` plus ``[X - c, 1] (n, d + 1)`` for the local-Ω forward GEMM."""
    c, Xc = _centred(X)
    return c, Xc, torch.cat([Xc, Xc.new_ones(Xc.shape[0], 1)], 1)


def _squared_euclidean_vjp(
    G: torch.Tensor, A: torch.Tensor, B: torch.Tensor, need_A: bool = True
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Gradients of ``sum_ij G_ij |a_i - b_j|^2`` with respect to ``A (n, l)`` and ``B (p, l)``."""
    dB = 2.0 * (G.sum(0).unsqueeze(1) * B - G.T @ A)
    dA = 2.0 * (G.sum(1).unsqueeze(1) * A - G @ B) if need_A else None
    return dA, dB


def euclidean(X: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``(n, p)`` (gradient-safe at 0)."""
    return (squared_euclidean(X, W) + 1e-12).sqrt()


def manhattan(X: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """L1 distances ``(n, p)`` (``torch.cdist`` with ``p=1``)."""
    return torch.cdist(X, W, p=1.0)


def omega_distance(X: torch.Tensor, W: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """``|(x - w) Ω|^2`` for a global ``Ω (d, l)``: project once, then squared Euclidean."""
    return squared_euclidean(X @ omega, W @ omega)


class _LocalOmegaDistance(torch.autograd.Function):
    """``|x Ω_k - w_k Ω_k|^2`` with a hand-written backward.

    Forward: one GEMM ``X [Ω_1 .. Ω_p] - [w_1 Ω_1 .. w_p Ω_p]`` and a row norm. Backward: one
    GEMM, or, where the incoming gradient is sparse (GLVQ-type losses touch two prototypes
    per sample), only the ``(sample, prototype)`` pairs that carry gradient: ``2 n d l`` instead
    of ``n p d l``.
    """

    @staticmethod
    def forward(ctx, X, W, omegas):
        D, Y = _local_omega_forward(X, W, omegas)
        ctx.save_for_backward(X, W, omegas, Y)
        return D

    @staticmethod
    def backward(ctx, G):
        X, W, omegas, Y = ctx.saved_tensors
        return _local_omega_vjp(X, W, omegas, Y, G, *ctx.needs_input_grad)


def _local_omega_forward(X, W, omegas, X_ones=None):
    """``(D (n, p), Y (n, p, l))``: distances and the projected differences ``(x - w_k) Ω_k``.

    ``X_ones = [X, 1] (n, d + 1)``, when given, folds the prototypes' offsets into the GEMM
    (``[X, 1] [Ω_1 .. Ω_p; -w_1 Ω_1 .. -w_p Ω_p]``): no broadcast pass over ``Y``.
    """
    p, d, l = omegas.shape
    if X_ones is None:
        WP = torch.bmm(W.unsqueeze(1), omegas).reshape(1, p * l)
        Y = torch.addmm(WP, X, omegas.permute(1, 0, 2).reshape(d, p * l), beta=-1.0)
    else:
        B = torch.empty(d + 1, p * l, dtype=omegas.dtype, device=omegas.device)
        B[:d].view(d, p, l).copy_(omegas.permute(1, 0, 2))
        torch.bmm(W.unsqueeze(1), omegas, out=B[d:].view(p, 1, l)).neg_()
        Y = X_ones @ B
    Y = Y.view(X.shape[0], p, l)
    return torch.linalg.vector_norm(Y, dim=-1).square(), Y


def _local_omega_vjp(X, W, omegas, Y, G, need_X, need_W, need_O):
    """Gradients ``(gX, gW, gO)`` of ``sum(G * D)`` for the local-Ω distance ``D``."""
    n, p, l = Y.shape
    d = X.shape[1]
    dt = Y.dtype  # under autocast the GEMM ran in reduced precision
    G = G.to(dt)
    gX = gW = gO = None
    pairs = None
    if not X.is_cuda and not need_X:
        GT = G.T.contiguous()
        nz = GT.view(-1).nonzero().squeeze(1)  # ordered by prototype, then sample
        if nz.shape[0] <= 0.3 * n * p:
            pairs = nz
    if pairs is None:
        GZ = Y * (2.0 * G).unsqueeze(-1)  # (n, p, l)
        S = GZ.sum(0)
        if need_O:
            gO = (X.to(dt).T @ GZ.reshape(n, p * l)).view(d, p, l).permute(1, 0, 2)
        if need_X:
            gX = torch.einsum("npl,pdl->nd", GZ, omegas.to(dt)).to(X.dtype)
    else:
        k = pairs // n
        i = pairs - k * n
        GZ = Y.reshape(n * p, l).index_select(0, i * p + k)
        GZ.mul_(GT.view(-1).index_select(0, pairs).mul_(2.0).unsqueeze(1))  # (m, l)
        S = torch.zeros(p, l, dtype=dt, device=X.device).index_add_(0, k, GZ)
        if need_O:
            counts = torch.bincount(k, minlength=p).tolist()
            gO = torch.zeros(p, d, l, dtype=dt, device=X.device)
            Xs = X.to(dt).index_select(0, i)
            start = 0
            for proto, c in enumerate(counts):
                if c:
                    torch.mm(Xs[start : start + c].T, GZ[start : start + c], out=gO[proto])
                start += c
    if gO is not None:
        gO = (gO - W.to(dt).unsqueeze(2) * S.unsqueeze(1)).to(omegas.dtype)
    if need_W:
        gW = -torch.bmm(omegas.to(dt), S.unsqueeze(2)).squeeze(2).to(W.dtype)
    return gX, gW, gO


def local_omega_distance(X: torch.Tensor, W: torch.Tensor, omegas: torch.Tensor) -> torch.Tensor:
    """``|(x - w_k) Ω_k|^2`` with one ``Ω_k (d, l)`` per prototype: ``omegas (p, d, l)``.

    One GEMM ``X @ [Ω_1 .. Ω_p]`` of cost ``n d p l`` (inherent to local metrics) forward and
    one backward; differentiable in all three arguments.
    """
    if W.shape[0]:
        centre = W.detach().mean(0)  # translation invariant; see squared_euclidean
        X, W = X - centre, W - centre
    return _LocalOmegaDistance.apply(X, W, omegas)


def relevance_distance(X: torch.Tensor, W: torch.Tensor, relevances: torch.Tensor) -> torch.Tensor:
    """``sum_j λ_j (x_j - w_j)^2`` for non-negative relevances ``λ (d,)``."""
    s = relevances.clamp_min(0.0).sqrt()
    return squared_euclidean(X * s, W * s)


def tangent_distance(X: torch.Tensor, W: torch.Tensor, bases: torch.Tensor) -> torch.Tensor:
    """Distance orthogonal to each prototype's subspace: ``|x - w_k|^2 - |U_k^T (x - w_k)|^2``.

    ``bases (p, d, s)`` with orthonormal columns per prototype.
    """
    p, d, s = bases.shape
    full = squared_euclidean(X, W)
    XU = (X @ bases.permute(1, 0, 2).reshape(d, p * s)).view(X.shape[0], p, s)
    WU = torch.einsum("pd,pds->ps", W, bases)
    inside = (XU - WU.unsqueeze(0)).pow(2).sum(-1)
    return (full - inside).clamp_min(0.0)


DISTANCE_FUNCTIONS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "squared_euclidean": squared_euclidean,
    "euclidean": euclidean,
    "manhattan": manhattan,
}
_BLOCKOPS_METRIC = {"squared_euclidean": "sqeuclidean", "euclidean": "euclidean"}


def _row_blocks(n: int, p: int, width: int, budget: int = 64 * 2**20) -> int:
    return max(1, min(n, budget // max(1, 4 * p * max(width, 1))))


def _classwise_min(dist: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    out = torch.full((dist.shape[0], n_classes), float("inf"), dtype=dist.dtype, device=dist.device)
    return out.scatter_reduce_(1, labels.expand(dist.shape[0], -1), dist, reduce="amin")


# --------------------------------------------------------------------------- components


class Distance:
    """A distance family: parameter groups, the ``(n, p)`` distance, invariants, fast prediction."""

    #: parameter groups this distance owns (besides ``prototypes``)
    groups: tuple[str, ...] = ()
    #: whether :meth:`closed_form` is implemented (then training needs no autograd graph)
    has_closed_form = False
    #: whether the closed form's ``vjp`` also gives ``dL/dX`` (``inputs=True``), which a
    #: backbone needs to continue the backward pass into the embedding network
    has_input_gradient = False

    def init_params(
        self,
        X: torch.Tensor,
        y: torch.Tensor,
        W: torch.Tensor,
        labels: torch.Tensor,
        gen: torch.Generator,
    ) -> Params:
        """Initial parameters from training data ``X``/codes ``y`` and prototypes ``W``/``labels``."""
        return {}

    def effective(self, params: Params) -> Params:
        """Parameters as the distance uses them (normalised), differentiable."""
        return {}

    def __call__(self, X: torch.Tensor, W: torch.Tensor, params: Params) -> torch.Tensor:
        raise NotImplementedError

    def closed_form(
        self, X: torch.Tensor, W: torch.Tensor, params: Params
    ) -> tuple[torch.Tensor, Callable[[torch.Tensor], Params]]:
        """``(D (n, p), vjp)``: the distances and ``vjp(G, prototypes_only=False) ->
        {group: dL/dgroup}`` for the raw parameters given ``G = dL/dD (n, p)`` (only
        ``"prototypes"`` when asked; also ``"inputs": dL/dX`` with ``inputs=True`` where
        :attr:`has_input_gradient`); the values autograd gives, without a graph (where rounding
        clamps a distance at 0 the gradient is passed through). Call under ``torch.no_grad()``.
        Only called where :attr:`has_closed_form` is true; the training loop uses autograd
        otherwise."""
        raise NotImplementedError(
            f"{type(self).__name__} has no closed-form gradient (has_closed_form is False); "
            "differentiate its __call__ with autograd"
        )

    @torch.no_grad()
    def constrain(self, params: Params) -> None:
        """Restore invariants in place after an optimizer step (no-op by default)."""

    @torch.no_grad()
    def constrain_copy(self, params: Params) -> None:
        """Restore invariants in place on parameters that are not the training iterate (a
        moving average, a kept best): as :meth:`constrain`, leaving alone any state the
        distance keeps about the run (a step limit measured from the last iterate)."""
        self.constrain(params)

    def check(self, d: int, n_prototypes: int) -> None:
        """Validate settings against the data dimension."""

    @torch.no_grad()
    def all_distances(self, X: torch.Tensor, W: torch.Tensor, params: Params) -> torch.Tensor:
        """All ``(n, p)`` distances without gradients, in row blocks."""
        eff = self.effective(params)
        step = _row_blocks(X.shape[0], W.shape[0], self._width(W, params))
        return torch.cat([self._apply(X[i : i + step], W, eff) for i in range(0, X.shape[0], step)])

    @torch.no_grad()
    def class_min(
        self, X: torch.Tensor, W: torch.Tensor, params: Params, labels: torch.Tensor, n_classes: int
    ) -> torch.Tensor:
        """Minimum distance to each class ``(n, n_classes)`` without gradients, blocked."""
        eff = self.effective(params)
        step = _row_blocks(X.shape[0], W.shape[0], self._width(W, params))
        parts = [
            _classwise_min(self._apply(X[i : i + step], W, eff), labels, n_classes)
            for i in range(0, X.shape[0], step)
        ]
        return torch.cat(parts)

    def _width(self, W: torch.Tensor, params: Params) -> int:
        return 1

    def _apply(self, X: torch.Tensor, W: torch.Tensor, eff: Params) -> torch.Tensor:
        return self(X, W, eff)

    def _per_batch(
        self, X: torch.Tensor, make: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """``make(X)``, kept for the last ``X`` seen: full-batch training passes the same
        tensor every step, so data-only terms of a closed form are computed once per fit."""
        cached = getattr(self, "_batch_cache", None)
        if cached is None or cached[0] is not X:
            cached = self._batch_cache = (X, make(X))
        return cached[1]


class SquaredEuclidean(Distance):
    """Squared Euclidean distance (or a named / callable ``distance_fn``)."""

    def __init__(self, fn: str | Callable | None = None):
        if fn is None:
            fn = "squared_euclidean"
        if isinstance(fn, str):
            if fn not in DISTANCE_FUNCTIONS:
                raise ValueError(
                    f"distance_fn={fn!r} is not known; use one of {sorted(DISTANCE_FUNCTIONS)} "
                    "or a callable (X, W) -> (n, p)"
                )
            self.name = fn
            self.fn = DISTANCE_FUNCTIONS[fn]
        elif callable(fn):
            self.name = None
            self.fn = fn
        else:
            raise TypeError(
                f"distance_fn must be None, a name or a callable, got {type(fn).__name__}"
            )

    def __call__(self, X, W, params):
        return self.fn(X, W)

    @property
    def has_closed_form(self) -> bool:
        return self.name == "squared_euclidean"

    has_input_gradient = True

    def closed_form(self, X, W, params):
        c, Xc = self._per_batch(X, _centred)
        Wc = W - c

        def vjp(G, prototypes_only=False, inputs=False):
            dX, dW = _squared_euclidean_vjp(G, Xc, Wc, need_A=inputs)
            return {"prototypes": dW} if dX is None else {"prototypes": dW, "inputs": dX}

        return _expanded_squared_euclidean(Xc, Wc), vjp

    def effective(self, params):
        return {}

    @torch.no_grad()
    def class_min(self, X, W, params, labels, n_classes):
        metric = _BLOCKOPS_METRIC.get(self.name or "")
        if metric is not None:
            return blockops.label_min(X, W, labels, n_classes, metric=metric)
        return super().class_min(X, W, params, labels, n_classes)

    @torch.no_grad()
    def all_distances(self, X, W, params):
        metric = _BLOCKOPS_METRIC.get(self.name or "")
        if metric is not None:
            return blockops.pairwise_distances(X, W, metric=metric)
        return super().all_distances(X, W, params)


def _random_orthonormal(d: int, k: int, gen: torch.Generator, device, dtype) -> torch.Tensor:
    A = torch.randn(d, k, generator=gen, dtype=torch.float64).to(device)
    Q, R = torch.linalg.qr(A)
    Q = Q * torch.sign(torch.diagonal(R)).clamp_min(0).mul(2).sub(1)
    return Q.to(dtype).contiguous()  # QR returns column-major; saved tensors are contiguous


def _omega_init(d: int, l: int, gen: torch.Generator, device, dtype) -> torch.Tensor:
    """Identity (``l == d``) or ``l`` random orthonormal columns; raw scale (not normalised)."""
    if l == d:
        return torch.eye(d, device=device, dtype=dtype)
    return _random_orthonormal(d, l, gen, device, dtype)


class Omega(Distance):
    """Global metric ``d(x, w) = |(x - w) Ω|^2`` with ``Ω (d, l)`` normalised to ``|Ω|_F = 1``
    (``trace(Λ) = 1``). The raw parameter is unconstrained (it starts at the identity); the
    distance uses ``Ω / |Ω|_F``, so the gradient never changes the scale and the reported
    ``Λ`` always has trace 1."""

    groups = ("omega",)
    has_closed_form = True
    has_input_gradient = True

    def __init__(self, latent_dim: int | None = None):
        self.latent_dim = latent_dim

    def check(self, d, n_prototypes):
        _check_dim("latent_dim", self.latent_dim, d)

    def init_params(self, X, y, W, labels, gen):
        d = X.shape[1]
        return {"omega": _omega_init(d, self.latent_dim or d, gen, X.device, X.dtype)}

    def effective(self, params):
        om = params["omega"]
        return {"omega": om / om.norm().clamp_min(1e-12)}

    def __call__(self, X, W, params):
        return omega_distance(X, W, self.effective(params)["omega"])

    def closed_form(self, X, W, params):
        om = params["omega"]
        norm = om.norm()
        scale = norm.clamp_min(1e-12)
        E = om / scale
        c, Xc = self._per_batch(X, _centred)
        Wc = W - c
        Z, V = Xc @ E, Wc @ E

        def vjp(G, prototypes_only=False, inputs=False):
            dZ, dV = _squared_euclidean_vjp(G, Z, V, need_A=inputs or not prototypes_only)
            out = {"prototypes": dV @ E.T}
            if inputs:
                out["inputs"] = dZ @ E.T
            if prototypes_only:
                return out
            dE = Xc.T @ dZ + Wc.T @ dV
            radial = (dE * E).sum() * (norm >= 1e-12)  # through E = Ω / |Ω|
            out["omega"] = (dE - E * radial) / scale
            return out

        return _expanded_squared_euclidean(Z, V), vjp

    def _apply(self, X, W, eff):
        return omega_distance(X, W, eff["omega"])

    @torch.no_grad()
    def class_min(self, X, W, params, labels, n_classes):
        om = self.effective(params)["omega"]
        return blockops.label_min(X, W, labels, n_classes, omega=om)

    @torch.no_grad()
    def all_distances(self, X, W, params):
        return blockops.pairwise_distances(X, W, omega=self.effective(params)["omega"])


class LocalOmega(Distance):
    """One metric per prototype: ``d(x, w_k) = |(x - w_k) Ω_k|^2``.

    The raw ``Ω_k`` start at the identity; the distance uses them jointly normalised so that
    the traces of the ``Λ_k`` average 1 (``sum_k |Ω_k|_F^2 = P``): the overall scale is fixed,
    the relative scale of the local metrics (which decides between prototypes) stays learnable.
    """

    groups = ("omegas",)
    has_closed_form = True

    def __init__(self, latent_dim: int | None = None):
        self.latent_dim = latent_dim

    def check(self, d, n_prototypes):
        _check_dim("latent_dim", self.latent_dim, d)

    def init_params(self, X, y, W, labels, gen):
        d = X.shape[1]
        l = self.latent_dim or d
        oms = torch.stack([_omega_init(d, l, gen, X.device, X.dtype) for _ in range(W.shape[0])])
        return {"omegas": oms}

    def effective(self, params):
        oms = params["omegas"]
        return {"omegas": oms / oms.pow(2).sum().div(oms.shape[0]).sqrt().clamp_min(1e-12)}

    def __call__(self, X, W, params):
        return local_omega_distance(X, W, self.effective(params)["omegas"])

    def closed_form(self, X, W, params):
        oms = params["omegas"]
        P = oms.shape[0]
        rms = oms.pow(2).sum().div(P).sqrt()
        scale = rms.clamp_min(1e-12)
        E = oms / scale
        c, Xc, X_ones = self._per_batch(X, _centred_with_ones)
        Wc = W - c
        D, Y = _local_omega_forward(Xc, Wc, E, X_ones)

        def vjp(G, prototypes_only=False):
            _, dW, dE = _local_omega_vjp(Xc, Wc, E, Y, G, False, True, not prototypes_only)
            if prototypes_only:
                return {"prototypes": dW}
            radial = (dE * E).sum() / P * (rms >= 1e-12)  # through the joint normalisation
            return {"prototypes": dW, "omegas": (dE - E * radial) / scale}

        return D, vjp

    def _apply(self, X, W, eff):
        return local_omega_distance(X, W, eff["omegas"])

    def _width(self, W, params):
        return params["omegas"].shape[2]


class Relevance(Distance):
    """Per-feature relevances ``λ_j = r_j^2 / sum r^2`` (non-negative, summing to 1).

    The raw ``r`` starts at 1 and is unconstrained (the normalisation is part of the
    distance), so its scale sets how fast Adam moves the relevances, as in GRLVQ's literature
    parametrisation; ``resume``/``save`` carry ``r``, never the normalised ``λ``.
    """

    groups = ("relevances",)
    has_closed_form = True

    def init_params(self, X, y, W, labels, gen):
        return {"relevances": torch.ones(X.shape[1], device=X.device, dtype=X.dtype)}

    def effective(self, params):
        r2 = params["relevances"].pow(2)
        return {"relevances": r2 / r2.sum().clamp_min(1e-30)}

    def __call__(self, X, W, params):
        return relevance_distance(X, W, self.effective(params)["relevances"])

    def closed_form(self, X, W, params):
        r = params["relevances"]
        r2 = r * r
        total = r2.sum()
        denom = total.clamp_min(1e-30)
        lam = r2 / denom
        s = lam.sqrt()
        c, Xc, XX = self._per_batch(X, _centred_with_squares)
        W = W - c

        def vjp(G, prototypes_only=False):
            g_cols = G.sum(0)
            GX = G.T @ Xc  # (p, d)
            d_prototypes = 2.0 * lam * (g_cols.unsqueeze(1) * W - GX)
            if prototypes_only:
                return {"prototypes": d_prototypes}
            g_rows = G.sum(1)
            # D_ij = sum_k λ_k (x_ik - w_jk)^2, so dL/dλ needs no division by sqrt(λ)
            dlam = g_rows @ XX - 2.0 * (W * GX).sum(0) + g_cols @ (W * W)
            radial = (dlam * lam).sum() * (total >= 1e-30)  # through λ = r^2 / |r|^2
            return {"prototypes": d_prototypes, "relevances": 2.0 * r / denom * (dlam - radial)}

        return _expanded_squared_euclidean(Xc * s, W * s), vjp

    def _apply(self, X, W, eff):
        return relevance_distance(X, W, eff["relevances"])

    @torch.no_grad()
    def class_min(self, X, W, params, labels, n_classes):
        s = self.effective(params)["relevances"].sqrt()
        return blockops.label_min(X * s, W * s, labels, n_classes)

    @torch.no_grad()
    def all_distances(self, X, W, params):
        s = self.effective(params)["relevances"].sqrt()
        return blockops.pairwise_distances(X * s, W * s)


class Tangent(Distance):
    """Tangent distance: the part of ``x - w_k`` outside prototype ``k``'s learned subspace."""

    groups = ("bases",)

    def __init__(self, subspace_dim: int = 2):
        self.subspace_dim = subspace_dim

    def check(self, d, n_prototypes):
        s = self.subspace_dim
        if d < 2:  # "an int in [1, 0]" named an empty range
            raise ValueError(
                f"the tangent distance needs at least 2 features (a subspace_dim in [1, d - 1] "
                f"and the rest outside it); X has {d}"
            )
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or not 1 <= s < d:
            raise ValueError(f"subspace_dim must be an int in [1, {d - 1}] for d={d}, got {s!r}")

    def init_params(self, X, y, W, labels, gen):
        s = self.subspace_dim
        bases = []
        for k in range(W.shape[0]):
            rows = X[y == labels[k]]
            bases.append(_pca_basis(rows - W[k], s, gen))
        return {"bases": torch.stack(bases).to(X.dtype)}

    def effective(self, params):
        return {"bases": params["bases"]}

    def __call__(self, X, W, params):
        return tangent_distance(X, W, params["bases"])

    def _apply(self, X, W, eff):
        return tangent_distance(X, W, eff["bases"])

    def _width(self, W, params):
        return params["bases"].shape[2]

    @torch.no_grad()
    def constrain(self, params):
        B = params["bases"]
        Q, R = torch.linalg.qr(B)
        sign = torch.sign(torch.diagonal(R, dim1=1, dim2=2))
        sign[sign == 0] = 1
        B.copy_(Q * sign.unsqueeze(1))


def _pca_basis(Z: torch.Tensor, s: int, gen: torch.Generator) -> torch.Tensor:
    """Leading ``s`` principal directions of ``Z`` (random orthonormal where too few rows)."""
    d = Z.shape[1]
    if Z.shape[0] > s:
        _, _, Vh = torch.linalg.svd(Z.double(), full_matrices=False)
        if Vh.shape[0] >= s:
            return Vh[:s].T.to(Z.dtype).contiguous()
    return _random_orthonormal(d, s, gen, Z.device, Z.dtype)


def _check_dim(name: str, value, d: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= d:
        raise ValueError(f"{name} must be None or an int in [1, {d}] for d={d}, got {value!r}")


# --------------------------------------------------------------------------- kernel distances
# (part 3: the differentiating-kernel families G and N, Villmann, Haase & Kaden 2015)

#: exponents of the exponential kernel are capped here so float32 stays finite
EXP_KERNEL_CAP = 40.0


def gaussian_kernel_distance(q: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Gaussian kernel distance ``2 (1 - exp(-q / (2 sigma_k^2)))`` in ``[0, 2)``.

    ``q (n, p)`` are squared distances, ``sigmas (p,)`` one bandwidth per prototype.
    """
    return -2.0 * torch.expm1(-q / (2.0 * sigmas * sigmas))


def exponential_kernel_distance(
    X: torch.Tensor, W: torch.Tensor, omega_hat: torch.Tensor
) -> torch.Tensor:
    """Squared distance of the exponential kernel ``k(x, w) = exp(x^T Λ̂ w)``, ``Λ̂ = Ω̂ Ω̂^T``.

    ``k(x, x) + k(w, w) - 2 k(x, w)`` for ``X (n, d)``, ``W (p, d)``, ``omega_hat (d, l)``,
    evaluated without cancellation as ``2 e^u (2 sinh^2(δ/2) - expm1(-q/2))`` with
    ``a = |Ω̂^T x|^2``, ``b = |Ω̂^T w|^2``, ``u = (a + b)/2``, ``δ = (a - b)/2`` and
    ``q = |Ω̂^T (x - w)|^2``: both terms are non-negative, so the result is never negative
    (the naive form subtracts nearly equal exponentials and can), and no difference of
    exponentials is formed. ``a`` and ``b`` are capped at :data:`EXP_KERNEL_CAP`.
    """
    Z = X @ omega_hat
    V = W @ omega_hat
    a = (Z * Z).sum(1, keepdim=True).clamp_max(EXP_KERNEL_CAP)
    b = (V * V).sum(1).clamp_max(EXP_KERNEL_CAP)
    q = squared_euclidean(Z, V)
    u = 0.5 * (a + b)
    half_delta = 0.25 * (a - b)
    return 2.0 * torch.exp(u) * (2.0 * torch.sinh(half_delta).pow(2) - torch.expm1(-0.5 * q))


def init_bandwidths(
    q: torch.Tensor, y: torch.Tensor, labels: torch.Tensor, how, sigma_min: float
) -> torch.Tensor:
    """Per-prototype bandwidths ``(p,)`` from squared distances ``q (n, p)``.

    ``how``: ``'median'`` / ``'mean'`` of the (non-squared) distances from each prototype to the
    samples of its class (all samples where the class has none), or a positive float for all.
    Values are at least ``sigma_min``.
    """
    p = q.shape[1]
    if is_number(how):
        if not how > 0:
            raise ValueError(f"sigma_init must be 'median', 'mean' or a number > 0, got {how!r}")
        return torch.full((p,), float(how), dtype=q.dtype, device=q.device).clamp_min(sigma_min)
    if how not in ("median", "mean"):
        raise ValueError(f"sigma_init must be 'median', 'mean' or a number > 0, got {how!r}")
    dist = q.detach().clamp_min(0.0).sqrt()
    out = torch.empty(p, dtype=q.dtype, device=q.device)
    for k in range(p):
        own = dist[y == labels[k], k]
        if own.numel() == 0:
            own = dist[:, k]
        out[k] = own.median() if how == "median" else own.mean()
    return out.clamp_min(sigma_min)


class GaussianKernel(Distance):
    """Gaussian kernel distance ``2 (1 - exp(-q / (2 sigma_k^2)))`` around another distance.

    ``q`` is the ``inner`` distance (squared Euclidean by default, or :class:`Relevance`, ...);
    the group ``sigmas`` holds one learnable bandwidth per prototype, initialised by
    :func:`init_bandwidths` and kept at ``>= sigma_min``.
    """

    def __init__(self, inner: Distance | None = None, sigma_init="median", sigma_min: float = 1e-3):
        self.inner = SquaredEuclidean() if inner is None else inner
        self.sigma_init = sigma_init
        self.sigma_min = sigma_min
        self.groups = tuple(self.inner.groups) + ("sigmas",)

    def check(self, d, n_prototypes):
        self.inner.check(d, n_prototypes)
        check_number("sigma_min", self.sigma_min, 0.0)
        s = self.sigma_init
        if not ((is_number(s) and s > 0) or s in ("median", "mean")):
            raise ValueError(f"sigma_init must be 'median', 'mean' or a number > 0, got {s!r}")

    def init_params(self, X, y, W, labels, gen):
        out = self.inner.init_params(X, y, W, labels, gen)
        with torch.no_grad():
            q = self.inner(X, W, {"prototypes": W, **out})
        out["sigmas"] = init_bandwidths(q, y, labels, self.sigma_init, float(self.sigma_min))
        return out

    def effective(self, params):
        eff = dict(self.inner.effective(params))
        eff["sigmas"] = params["sigmas"].abs().clamp_min(float(self.sigma_min))
        return eff

    def __call__(self, X, W, params):
        return self._apply(X, W, {**params, **self.effective(params)})

    def _apply(self, X, W, eff):
        return gaussian_kernel_distance(self.inner._apply(X, W, eff), eff["sigmas"])

    def _width(self, W, params):
        return self.inner._width(W, params)

    @torch.no_grad()
    def constrain(self, params):
        self.inner.constrain(params)
        params["sigmas"].copy_(params["sigmas"].abs().clamp_min(float(self.sigma_min)))


class ExponentialKernel(Distance):
    """Exponential-kernel distance (:func:`exponential_kernel_distance`) with a learned
    ``Ω̂ (d, latent_dim)`` (group ``omega_hat``), initialised as ``omega_hat_scale`` times the
    first ``latent_dim`` columns of the identity and left unnormalised (its scale is the
    kernel's bandwidth)."""

    groups = ("omega_hat",)

    def __init__(self, latent_dim: int | None = None, omega_hat_scale: float = 0.1):
        self.latent_dim = latent_dim
        self.omega_hat_scale = omega_hat_scale

    def check(self, d, n_prototypes):
        _check_dim("latent_dim", self.latent_dim, d)
        check_number("omega_hat_scale", self.omega_hat_scale, 0.0)

    def init_params(self, X, y, W, labels, gen):
        d = X.shape[1]
        eye = torch.eye(d, self.latent_dim or d, device=X.device, dtype=X.dtype)
        return {"omega_hat": float(self.omega_hat_scale) * eye}

    def effective(self, params):
        return {"omega_hat": params["omega_hat"]}

    def __call__(self, X, W, params):
        return exponential_kernel_distance(X, W, params["omega_hat"])

    def _apply(self, X, W, eff):
        return exponential_kernel_distance(X, W, eff["omega_hat"])

    def _width(self, W, params):
        return params["omega_hat"].shape[1]
