"""Family H: Wasserstein Gaussian-prototype LVQ (WGLVQ, WGRLVQ, WGMLVQ).

Every prototype is a diagonal Gaussian ``N(w_k, diag(s_k^2))``; a sample is the point mass at
``x``. The squared 2-Wasserstein distance between the two is the squared distance to the mean
plus the trace of the covariance, both seen through the learned metric:

- WGLVQ: ``|x - w_k|^2 + sum_j s_kj^2``
- WGRLVQ: ``sum_j λ_j (x_j - w_kj)^2 + sum_j λ_j s_kj^2`` (relevances on the simplex)
- WGMLVQ: ``|(x - w_k) Ω|^2 + trace(Ωᵀ diag(s_k^2) Ω)`` (the Gaussian pushed through ``Ω``)

(The published library adds the unprojected ``sum_j s_kj^2`` in the relevance and matrix
variants; here the covariance is mapped with the data, which is the exact W2 distance in the
learned space.) The log-variances are learned with the prototypes; a prototype's variance acts
as a learned offset of its distance, so the decision boundaries move even where the means stay
at the class centres. Fitted: ``variances_`` ``(P, d)``.
"""

from __future__ import annotations

import blockops
import numpy as np
import torch

from .._checks import is_number
from ..base import SupervisedPrototypeModel
from ..distances import Distance, Omega, Relevance, SquaredEuclidean
from ..losses import GLVQLoss
from ..registry import register
from .glvq import MatrixMixin, RelevanceMixin, _no_distance_fn

__all__ = ["WGLVQ", "WGMLVQ", "WGRLVQ", "Wasserstein"]

_FAST = {"max_iter": 30, "lr": 0.05}
_LOGVAR_MIN, _LOGVAR_MAX = -20.0, 20.0


class Wasserstein(Distance):
    """Squared 2-Wasserstein distance from points to diagonal-Gaussian prototypes.

    Args:
        metric: ``"euclidean"``, ``"relevance"`` or ``"omega"``.
        latent_dim: columns of ``Ω`` for ``metric="omega"``.
        init_variance: ``"class"`` (each prototype starts with its class's per-feature
            variance) or a positive float.
    """

    def __init__(
        self,
        metric: str = "euclidean",
        latent_dim: int | None = None,
        init_variance: str | float = "class",
    ):
        self.metric = metric
        self.init_variance = init_variance
        self.inner = {
            "euclidean": SquaredEuclidean(),
            "relevance": Relevance(),
            "omega": Omega(latent_dim),
        }[metric]
        self.groups = (*self.inner.groups, "log_variances")

    def check(self, d, n_prototypes):
        self.inner.check(d, n_prototypes)

    def init_params(self, X, y, W, labels, gen):
        # contiguous copies (QR gives a column-major Ω): a reloaded model computes bit for bit
        out = {k: v.contiguous() for k, v in self.inner.init_params(X, y, W, labels, gen).items()}
        iv = self.init_variance
        if iv == "class":
            rows = [X[y == labels[k]] for k in range(W.shape[0])]
            var = torch.stack(
                [
                    r.var(0, unbiased=False) if r.shape[0] > 1 else torch.ones_like(W[0])
                    for r in rows
                ]
            )
        elif is_number(iv) and iv > 0:
            var = torch.full_like(W, float(iv))
        else:
            raise ValueError(f"init_variance must be 'class' or a positive number, got {iv!r}")
        out["log_variances"] = var.clamp_min(1e-6).log().to(W.dtype)
        return out

    def effective(self, params):
        eff = dict(self.inner.effective(params))
        lv = params["log_variances"].clamp(_LOGVAR_MIN, _LOGVAR_MAX)
        eff["variances"] = lv.exp()
        return eff

    def trace_term(self, eff: dict, like: torch.Tensor) -> torch.Tensor:
        """``trace`` of every prototype's covariance in the metric's space ``(P,)``."""
        var = eff["variances"].to(like.dtype)
        if self.metric == "relevance":
            return var @ eff["relevances"].to(like.dtype)
        if self.metric == "omega":
            return var @ eff["omega"].to(like.dtype).pow(2).sum(1)
        return var.sum(1)

    def __call__(self, X, W, params):
        return self._apply(X, W, self.effective(params))

    def _apply(self, X, W, eff):
        base = self.inner._apply(X, W, eff)
        return base + self.trace_term(eff, base)

    @property
    def has_closed_form(self) -> bool:
        return self.metric == "euclidean"

    def closed_form(self, X, W, params):
        base, inner_vjp = self.inner.closed_form(X, W, params)
        lv = params["log_variances"]
        var = lv.clamp(_LOGVAR_MIN, _LOGVAR_MAX).exp()

        def vjp(G, prototypes_only=False):
            grads = inner_vjp(G, prototypes_only)
            if prototypes_only:
                return grads
            inside = (lv >= _LOGVAR_MIN) & (lv <= _LOGVAR_MAX)  # where the clamp passes
            grads["log_variances"] = G.sum(0).unsqueeze(1) * var * inside
            return grads

        return base + var.sum(1), vjp


class _Wasserstein(SupervisedPrototypeModel):
    _own_params = {"beta": 10.0, "init_variance": "class"}
    _metric = "euclidean"

    def _make_distance(self):
        _no_distance_fn(self)
        return Wasserstein(
            self._metric, self.get_params(deep=False).get("latent_dim"), self.init_variance
        )

    def _make_loss(self, n_classes):
        return GLVQLoss(self.transfer_fn, self.beta, self.margin)

    @property
    def variances_(self) -> np.ndarray:
        """Per-prototype, per-feature variances ``s_k^2`` ``(P, d)``."""
        blockops.check_is_fitted(self, "prototypes_")
        eff = self._make_distance().effective(self._inference_params())
        return eff["variances"].cpu().numpy()


@register("H", _FAST)
class WGLVQ(_Wasserstein):
    """Wasserstein GLVQ: GLVQ on the W2 distance ``|x - w_k|^2 + sum_j s_kj^2`` to Gaussian
    prototypes (own parameters ``beta``, ``init_variance``)."""


@register("H", _FAST)
class WGRLVQ(RelevanceMixin, _Wasserstein):
    """Wasserstein GRLVQ: relevance-weighted W2 distance ``sum_j λ_j ((x_j - w_kj)^2 + s_kj^2)``."""

    _metric = "relevance"


@register("H", _FAST)
class WGMLVQ(MatrixMixin, _Wasserstein):
    """Wasserstein GMLVQ: W2 distance in the space of a global ``Ω (d, latent_dim)``,
    ``|(x - w_k) Ω|^2 + trace(Ωᵀ diag(s_k^2) Ω)``."""

    _own_params = {"latent_dim": None}
    _metric = "omega"
