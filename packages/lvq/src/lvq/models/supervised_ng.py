"""Family D: supervised neural-gas cooperation (SNG, SRNG, SMNG, SCMNG, SLNG, STNG, the
cross-entropy NG variants and the RSLVQ NG variants).

Every model is a base model of families A/C with the :class:`lvq.neighbourhood.NeuralGas`
neighbourhood: the prototypes of the sample's class are ranked by distance and weighted by
``h(r) = exp(-r / gamma)`` (normalised). ``gamma`` follows its schedule only, from
``gamma_init`` (default: half the largest number of prototypes of a class, at least 0.5) to
``gamma_final``, geometrically over the optimizer steps, or by ``gamma_decay`` per step when
given (down to ``gamma_final``). It is never a trainable parameter (the published library let
the optimizer move it too).

- GLVQ-type (SNG ... STNG, Hammer et al. 2005): the cost is the rank-weighted sum of the GLVQ
  costs of every correct prototype against the nearest wrong one,
  ``sum_k h_k f((d_k - d-) / (d_k + d-))``. ``lr_ratio`` scales the gradient that reaches the
  nearest wrong prototype relative to the correct ones (``eps- / eps+``); the metric's
  gradient is not scaled.
  With ``gamma -> 0`` and ``lr_ratio=1`` each is exactly its base model (GLVQ, GRLVQ, GMLVQ,
  LGMLVQ, GTLVQ).
- Cross-entropy NG: the NG-weighted distance of every class is a logit
  (``-sum_k h_k d_k``); ``gamma -> 0`` gives CELVQ with that metric.
- RSLVQ NG: ``log h`` is added to the Gaussian-mixture logits of every class;
  ``gamma -> 0`` keeps only each class's nearest prototype (RSLVQ exactly with one prototype
  per class) and ``gamma -> inf`` weights them uniformly (RSLVQ exactly for any number).
"""

from __future__ import annotations

import numpy as np
import torch

from .._checks import check_number
from ..base import SupervisedPrototypeModel
from ..distances import LocalOmega, Omega, Relevance, Tangent, local_omega_distance
from ..losses import GLVQ_EPS, TRANSFER_SLOPES, CrossEntropyLoss, GLVQLoss
from ..neighbourhood import Nearest, NeuralGas
from ..registry import register
from .glvq import LocalMatrixMixin, MatrixMixin, RelevanceMixin, _fitted, _no_distance_fn
from .probabilistic import _Probabilistic

__all__ = [
    "CELVQ_NG",
    "LCELVQ_NG",
    "LMRSLVQ_NG",
    "MCELVQ_NG",
    "MRSLVQ_NG",
    "RSLVQ_NG",
    "SCMNG",
    "SLNG",
    "SMNG",
    "SNG",
    "SRNG",
    "STNG",
    "TCELVQ_NG",
    "ClassOmega",
    "NGGLVQLoss",
    "rank_weights",
]

_FAST = {"max_iter": 30, "lr": 0.05}


@torch.no_grad()
def rank_weights(dist: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """Normalised ``exp(-rank / gamma)`` of every masked entry of ``dist (n, p)`` (0 elsewhere).

    Same values as :class:`lvq.neighbourhood.NeuralGas` weights, with one sort and a lookup
    table of the ``p`` possible weights instead of a second sort and an ``(n, p)`` ``exp``.
    """
    return _masked_rank_weights(dist.masked_fill(~mask, float("inf")), mask, gamma)


def _masked_rank_weights(masked: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """:func:`rank_weights` from ``dist`` already set to ``inf`` outside ``mask``."""
    n, p = masked.shape
    order = masked.argsort(dim=1)
    ranks = torch.empty_like(order).scatter_(
        1, order, torch.arange(p, device=masked.device).expand(n, p)
    )
    table = torch.exp(-torch.arange(p, device=masked.device, dtype=masked.dtype) / gamma)
    w = table[ranks] * mask
    return w / w.sum(1, keepdim=True).clamp_min(1e-30)


class NGGLVQLoss(GLVQLoss):
    """Rank-weighted GLVQ cost of the correct prototypes against the nearest wrong one.

    ``sum_k h_k f(mu_k + margin)`` with ``mu_k = (d_k - d-) / (d_k + d-)`` over the prototypes
    ``k`` of the sample's class, ``h`` the neighbourhood's normalised rank weights (the nearest
    correct prototype only for :class:`lvq.neighbourhood.Nearest`). ``lr_ratio`` scales the
    gradient through ``d-`` (the forward value is unchanged).
    """

    def __init__(self, transfer_fn=None, beta=10.0, margin=0.0, lr_ratio=1.0):
        super().__init__(transfer_fn, beta, margin)
        self.lr_ratio = float(lr_ratio)

    def __call__(self, dist, y, labels, neighbourhood):
        same = y[:, None] == labels[None, :]
        with torch.no_grad():
            jm = dist.masked_fill(same, float("inf")).argmin(dim=1, keepdim=True)
        dm = dist.gather(1, jm)
        if self.lr_ratio != 1.0:
            dm = dm.detach() + self.lr_ratio * (dm - dm.detach())
        if isinstance(neighbourhood, NeuralGas):
            h = rank_weights(dist, same, neighbourhood.gamma)
        else:
            with torch.no_grad():
                jp = dist.masked_fill(~same, float("inf")).argmin(dim=1, keepdim=True)
            h = torch.zeros_like(dist).scatter_(1, jp, 1.0)
        mu = (dist - dm) / (dist + dm + GLVQ_EPS)
        cost = self.transfer(mu + self.margin, self.beta).masked_fill(~same, 0.0)
        return (h * cost).sum(1)

    def has_closed_form(self, neighbourhood):
        return type(neighbourhood) in (Nearest, NeuralGas) and self.transfer in TRANSFER_SLOPES

    def closed_form(self, dist, y, labels, neighbourhood, w):
        """``G`` is non-zero on the sample's class (rank-weighted) and at the nearest wrong
        prototype, which collects the gradient of every term through ``d-``."""
        same, off_own, off_other = self.class_masks(y, labels, dist.dtype)
        dm, jm = (dist + off_other).min(dim=1, keepdim=True)
        own = dist + off_own
        if isinstance(neighbourhood, NeuralGas):
            h = _masked_rank_weights(own, same, neighbourhood.gamma)
        else:
            h = torch.zeros_like(dist).scatter_(1, own.argmin(1, keepdim=True), 1.0)
        total = dist + dm + GLVQ_EPS
        loss, coef = self._mean_and_coef((dist - dm) / total + self.margin, w, h)
        coef = coef / (total * total)
        G = coef * (2.0 * dm + GLVQ_EPS)
        through_dm = (coef * (2.0 * dist + GLVQ_EPS)).sum(1, keepdim=True)
        return loss, G.scatter_(1, jm, -self.lr_ratio * through_dm)


class ClassOmega(LocalOmega):
    """One metric per class: ``d(x, w_k) = |(x - w_k) Ω_c(k)|^2`` (``class_omegas (C, d, l)``).

    The raw ``Ω_c`` start at the identity (random orthonormal columns when ``latent_dim < d``)
    and are used jointly normalised so that the traces of the ``Λ_c`` average 1.

    Args:
        latent_dim: columns of every ``Ω_c`` (default: ``d``).
        labels: prototype class codes ``(P,)``.
        n_classes: number of classes ``C``.
    """

    groups = ("class_omegas",)

    has_closed_form = False  # the local-Ω closed form does not map classes to prototypes

    def __init__(self, latent_dim: int | None, labels: torch.Tensor, n_classes: int):
        super().__init__(latent_dim)
        self.labels = labels
        self.n_classes = int(n_classes)

    def init_params(self, X, y, W, labels, gen):
        oms = super().init_params(X, y, W[: self.n_classes], labels, gen)["omegas"]
        return {"class_omegas": oms}

    def effective(self, params):
        oms = params["class_omegas"]
        norm = oms.pow(2).sum().div(oms.shape[0]).sqrt().clamp_min(1e-12)
        return {"class_omegas": oms / norm}

    def _per_prototype(self, eff, device):
        return eff["class_omegas"][self.labels.to(device)]

    def __call__(self, X, W, params):
        return local_omega_distance(X, W, self._per_prototype(self.effective(params), X.device))

    def _apply(self, X, W, eff):
        return local_omega_distance(X, W, self._per_prototype(eff, X.device))

    def _width(self, W, params):
        return params["class_omegas"].shape[2]


class _NGMixin:
    """The ``gamma_init`` / ``gamma_final`` / ``gamma_decay`` schedule of every family-D model."""

    _own_params = {"gamma_init": None, "gamma_final": 0.01, "gamma_decay": None}

    def _validate_params(self):
        super()._validate_params()
        gi, gf, gd = self.gamma_init, self.gamma_final, self.gamma_decay
        check_number("gamma_final", gf, 0.0)
        if gi is not None:
            check_number("gamma_init", gi, 0.0)
            if gi < gf:
                raise ValueError(
                    f"gamma_init={gi!r} is smaller than gamma_final={gf!r}; gamma only decays "
                    "(set gamma_init >= gamma_final)"
                )
        if gd is not None:
            check_number("gamma_decay", gd, 0.0, high=1.0)

    def _gamma_start(self) -> float:
        if self.gamma_init is not None:
            return float(self.gamma_init)
        counts = self._counts(self.n_classes_) if hasattr(self, "n_classes_") else [1]
        return max(max(counts) / 2.0, 0.5, float(self.gamma_final))

    def _make_neighbourhood(self):
        return NeuralGas(self._gamma_start(), float(self.gamma_final), self.gamma_decay)

    def gamma_schedule(self, n_steps: int) -> np.ndarray:
        """The values of ``gamma`` over ``n_steps`` optimizer steps ``(n_steps,)``."""
        ng = self._make_neighbourhood()
        out = []
        for step in range(n_steps):
            ng.set_step(step, n_steps)
            out.append(ng.gamma)
        return np.array(out)


class _GLVQNG(_NGMixin, SupervisedPrototypeModel):
    _own_params = {"beta": 10.0, "lr_ratio": 0.5}

    def _validate_params(self):
        super()._validate_params()
        check_number("lr_ratio", self.lr_ratio, 0.0)

    def _make_loss(self, n_classes):
        # lr_ratio is applied to the prototypes' gradients in _forward_losses
        return NGGLVQLoss(self.transfer_fn, self.beta, self.margin, 1.0)

    def _forward_losses(self, params, Xb, yb, components):
        """``lr_ratio`` scales the gradient that reaches the *prototypes* through the pairs
        ``(sample, prototype of another class)``; the metric's gradient is left whole (scaling
        it too, as the published library does, unbalances the metric: on digits as images its
        SRNG lost 12 points of accuracy that way)."""
        r = float(self.lr_ratio)
        if r == 1.0:
            return super()._forward_losses(params, Xb, yb, components)
        distance, loss, neigh = components
        W = params["prototypes"]
        wrong = yb[:, None] != self._plabels[None, :]
        scale = torch.where(wrong, r, 1.0)
        metric = [k for k in params if k != "prototypes"]
        if not metric:
            d = distance(Xb, W, params)
            dist = d.detach() + scale * (d - d.detach())
        else:
            fixed = {k: (v if k == "prototypes" else v.detach()) for k, v in params.items()}
            d_w = distance(Xb, W, fixed)  # gradient reaches the prototypes only
            d_m = distance(Xb, W.detach(), params)  # gradient reaches the metric only
            dist = d_m + scale * (d_w - d_w.detach())
        return loss(dist.float(), yb, self._plabels, neigh)

    def _closed_form_loss(self, params, Xb, yb, wb, components):
        distance, loss, neigh = components
        dist, vjp = distance.closed_form(Xb, params["prototypes"], params)
        value, G = loss.closed_form(dist, yb, self._plabels, neigh, wb)
        grads = vjp(G)
        r = float(self.lr_ratio)
        if r != 1.0:  # as in _forward_losses: only the prototypes' share through wrong pairs
            same = loss.class_masks(yb, self._plabels, G.dtype)[0]
            scaled = torch.where(same, G, r * G)
            grads["prototypes"] = vjp(scaled, prototypes_only=True)["prototypes"]
        return value, grads


@register("D", _FAST)
class SNG(_GLVQNG):
    """Supervised Neural Gas (Hammer, Strickert & Villmann 2005): GLVQ where every prototype of
    the sample's class takes part, weighted by its rank; ``gamma -> 0`` recovers GLVQ.

    Own parameters: ``beta``, ``gamma_init``, ``gamma_final``, ``gamma_decay`` and
    ``lr_ratio`` (gradient scale of the nearest wrong prototype, ``eps- / eps+``).
    """


@register("D", _FAST)
class SRNG(RelevanceMixin, _GLVQNG):
    """Supervised Relevance Neural Gas: SNG with GRLVQ's feature relevances; ``gamma -> 0``
    recovers GRLVQ."""

    def _make_distance(self):
        _no_distance_fn(self)
        return Relevance()


@register("D", _FAST)
class SMNG(MatrixMixin, _GLVQNG):
    """Supervised Matrix Neural Gas: SNG with GMLVQ's global ``Ω``; ``gamma -> 0`` recovers
    GMLVQ."""

    _own_params = {"latent_dim": None}

    def _make_distance(self):
        _no_distance_fn(self)
        return Omega(self.latent_dim)


@register("D", _FAST)
class SLNG(LocalMatrixMixin, _GLVQNG):
    """Supervised Localized Matrix Neural Gas: one ``Ω_k`` per prototype; ``gamma -> 0``
    recovers LGMLVQ."""

    _own_params = {"latent_dim": None}

    def _make_distance(self):
        _no_distance_fn(self)
        return LocalOmega(self.latent_dim)


@register("D", {**_FAST, "subspace_dim": 1})
class STNG(_GLVQNG):
    """Supervised Tangent Neural Gas: GTLVQ's tangent distance; ``gamma -> 0`` recovers GTLVQ."""

    _own_params = {"subspace_dim": 2}

    def _make_distance(self):
        _no_distance_fn(self)
        return Tangent(self.subspace_dim)


@register("D", _FAST)
class SCMNG(_GLVQNG):
    """Supervised Class-wise Matrix Neural Gas: one ``Ω_c`` shared by the prototypes of each
    class. ``omega_lr`` (default: ``lr``) is the metric's learning rate; with one prototype
    per class, ``lr_ratio=1`` and ``gamma -> 0`` it is LGMLVQ.

    Fitted: ``class_omegas_`` ``(C, d, l)``; ``omega_matrix``, ``lambda_matrix`` and
    ``relevance_profile`` per class.
    """

    _own_params = {"latent_dim": None, "lr_ratio": 1.0, "omega_lr": None}

    def _validate_params(self):
        super()._validate_params()
        if self.omega_lr is not None:
            check_number("omega_lr", self.omega_lr, 0.0)

    def _make_distance(self):
        _no_distance_fn(self)
        return ClassOmega(self.latent_dim, self._plabels, self.n_classes_)

    def _group_lr(self, name):
        if name == "class_omegas" and self.omega_lr is not None:
            return float(self.omega_lr)
        return float(self.lr)

    @property
    def omega_matrix(self) -> np.ndarray:
        """The class-wise projections ``Ω_c`` ``(C, d, l)`` (traces of ``Λ_c`` average 1)."""
        return _fitted(self, "class_omegas_")

    @property
    def lambda_matrix(self) -> np.ndarray:
        """``Λ_c = Ω_c Ω_cᵀ`` ``(C, d, d)``."""
        om = _fitted(self, "class_omegas_").astype(np.float64)
        return om @ om.transpose(0, 2, 1)

    @property
    def relevance_profile(self) -> np.ndarray:
        """Diagonals of the ``Λ_c`` ``(C, d)``."""
        return np.diagonal(self.lambda_matrix, axis1=1, axis2=2).copy()


# ----------------------------------------------------------------------- cross-entropy NG


class _CENG(_NGMixin, SupervisedPrototypeModel):
    _loss_options = frozenset()  # cross-entropy: no transfer function, no margin

    def _make_loss(self, n_classes):
        return CrossEntropyLoss(n_classes)


@register("D", _FAST)
class CELVQ_NG(_CENG):
    """Cross-Entropy LVQ with neural-gas cooperation: per class, the rank-weighted distance of
    its prototypes is a logit; ``gamma -> 0`` recovers CELVQ."""


@register("D", _FAST)
class MCELVQ_NG(MatrixMixin, _CENG):
    """Matrix CELVQ-NG: cross-entropy NG with a global ``Ω``."""

    _own_params = {"latent_dim": None}

    def _make_distance(self):
        _no_distance_fn(self)
        return Omega(self.latent_dim)


@register("D", _FAST)
class LCELVQ_NG(LocalMatrixMixin, _CENG):
    """Localized Matrix CELVQ-NG: cross-entropy NG with one ``Ω_k`` per prototype."""

    _own_params = {"latent_dim": None}

    def _make_distance(self):
        _no_distance_fn(self)
        return LocalOmega(self.latent_dim)


@register("D", {**_FAST, "subspace_dim": 1})
class TCELVQ_NG(_CENG):
    """Tangent CELVQ-NG: cross-entropy NG with GTLVQ's tangent distance."""

    _own_params = {"subspace_dim": 2}

    def _make_distance(self):
        _no_distance_fn(self)
        return Tangent(self.subspace_dim)


# ----------------------------------------------------------------------- RSLVQ NG


@register("D", _FAST)
class RSLVQ_NG(_NGMixin, _Probabilistic):
    """Robust Soft LVQ with neural-gas cooperation: ``log h`` of each prototype's rank in its
    class is added to the Gaussian-mixture logits during training."""


@register("D", _FAST)
class MRSLVQ_NG(MatrixMixin, _NGMixin, _Probabilistic):
    """Matrix RSLVQ-NG: RSLVQ-NG with a global ``Ω``."""

    _own_params = {"latent_dim": None}

    def _make_distance(self):
        _no_distance_fn(self)
        return Omega(self.latent_dim)


@register("D", _FAST)
class LMRSLVQ_NG(LocalMatrixMixin, _NGMixin, _Probabilistic):
    """Localized Matrix RSLVQ-NG: RSLVQ-NG with one ``Ω_k`` per prototype."""

    _own_params = {"latent_dim": None}

    def _make_distance(self):
        _no_distance_fn(self)
        return LocalOmega(self.latent_dim)
