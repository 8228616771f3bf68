"""Family A: gradient GLVQ models (GLVQ, GLVQ1, GLVQ21, GRLVQ, GMLVQ, LGMLVQ, GTLVQ, CELVQ)."""

from __future__ import annotations

import blockops
import numpy as np

from ..base import SupervisedPrototypeModel
from ..distances import LocalOmega, Omega, Relevance, Tangent
from ..losses import CrossEntropyLoss, GLVQLoss, LVQ1Loss, LVQ21Loss
from ..registry import register

_FAST = {"max_iter": 30, "lr": 0.05}


def _fitted(model, name: str) -> np.ndarray:
    """The fitted array ``model.<name>``; :class:`blockops.NotFittedError` before ``fit``."""
    blockops.check_is_fitted(model, name)
    return getattr(model, name)


def _no_distance_fn(model) -> None:
    if model.distance_fn is not None:
        raise ValueError(
            f"{type(model).__name__} learns its own metric; distance_fn must be None, "
            f"got {model.distance_fn!r}"
        )


class MatrixMixin:
    """``omega_matrix`` (d, l), ``lambda_matrix`` Λ = ΩΩᵀ (d, d) with trace 1, ``relevance_profile``."""

    @property
    def omega_matrix(self) -> np.ndarray:
        """The learned projection Ω ``(d, l)``, scaled so that ``trace(Λ) = 1``."""
        return _fitted(self, "omega_")

    @property
    def lambda_matrix(self) -> np.ndarray:
        """Λ = ΩΩᵀ ``(d, d)``, symmetric positive semi-definite, trace 1."""
        om = _fitted(self, "omega_").astype(np.float64)
        return om @ om.T

    @property
    def relevance_profile(self) -> np.ndarray:
        """Diagonal of Λ ``(d,)``: the relevance of each feature (sums to 1)."""
        return np.diag(self.lambda_matrix).copy()

    def project(self, X) -> np.ndarray:
        """Data mapped into the learned space, ``X Ω`` ``(n, l)``."""
        Xt = self._check_X(X)
        om = self._make_distance().effective(self._inference_params())["omega"]
        return (Xt @ om).cpu().numpy()


class LocalMatrixMixin:
    """Per-prototype ``omega_matrix`` (P, d, l), ``lambda_matrix`` (P, d, d), ``relevance_profile``."""

    @property
    def omega_matrix(self) -> np.ndarray:
        """The local projections Ω_k ``(P, d, l)``, jointly scaled so that the traces of the
        Λ_k average 1 (their relative scale, which decides between prototypes, is learned)."""
        return _fitted(self, "omegas_")

    @property
    def lambda_matrix(self) -> np.ndarray:
        """Λ_k = Ω_kΩ_kᵀ ``(P, d, d)``, with traces averaging 1."""
        om = _fitted(self, "omegas_").astype(np.float64)
        return om @ om.transpose(0, 2, 1)

    @property
    def relevance_profile(self) -> np.ndarray:
        """Diagonals of the Λ_k ``(P, d)``."""
        return np.diagonal(self.lambda_matrix, axis1=1, axis2=2).copy()


class RelevanceMixin:
    """``relevance_profile`` λ (d,) on the simplex; ``lambda_matrix`` = diag(λ)."""

    @property
    def relevance_profile(self) -> np.ndarray:
        """Non-negative feature relevances summing to 1 ``(d,)``."""
        return _fitted(self, "relevances_").copy()

    @property
    def lambda_matrix(self) -> np.ndarray:
        """``diag(λ)`` ``(d, d)``."""
        return np.diag(_fitted(self, "relevances_").astype(np.float64))

    @property
    def omega_matrix(self) -> np.ndarray:
        """``diag(sqrt(λ))`` ``(d, d)``."""
        return np.diag(np.sqrt(_fitted(self, "relevances_").astype(np.float64)))


@register("A", _FAST)
class GLVQ(SupervisedPrototypeModel):
    """Generalized LVQ (Sato & Yamada 1996): minimises ``f(mu)``, ``mu = (d+ - d-)/(d+ + d-)``.

    Parameters are the shared training options (see :data:`lvq.base.BASE_PARAMS`) plus
    ``beta`` (steepness of ``transfer_fn`` ``'sigmoid_beta'`` / ``'swish_beta'``).
    """

    _own_params = {"beta": 10.0}

    def _make_loss(self, n_classes):
        return GLVQLoss(self.transfer_fn, self.beta, self.margin)


@register("A", _FAST)
class GLVQ1(SupervisedPrototypeModel):
    """GLVQ with the LVQ1 rule as loss: ``d+`` if the winner is correct, else ``-d-``.

    ``beta`` is the steepness of ``transfer_fn`` ``'sigmoid_beta'`` / ``'swish_beta'``.
    """

    _own_params = {"beta": 10.0}

    def _make_loss(self, n_classes):
        return LVQ1Loss(self.transfer_fn, self.beta, self.margin)


@register("A", _FAST)
class GLVQ21(SupervisedPrototypeModel):
    """GLVQ with the (unnormalised) LVQ2.1 loss ``d+ - d-``.

    ``beta`` is the steepness of ``transfer_fn`` ``'sigmoid_beta'`` / ``'swish_beta'``.
    """

    _own_params = {"beta": 10.0}

    def _make_loss(self, n_classes):
        return LVQ21Loss(self.transfer_fn, self.beta, self.margin)


@register("A", _FAST)
class GRLVQ(RelevanceMixin, SupervisedPrototypeModel):
    """Generalized Relevance LVQ (Hammer & Villmann 2002): ``d = sum_j λ_j (x_j - w_j)^2``.

    λ is parametrised as ``r^2 / |r|^2`` (non-negative, sums to 1); the raw ``r`` is what
    ``resume``, ``partial_fit`` and ``save``/``load`` carry.
    """

    _own_params = {"beta": 10.0}

    def _make_distance(self):
        _no_distance_fn(self)
        return Relevance()

    def _make_loss(self, n_classes):
        return GLVQLoss(self.transfer_fn, self.beta, self.margin)


@register("A", _FAST)
class GMLVQ(MatrixMixin, SupervisedPrototypeModel):
    """Generalized Matrix LVQ (Schneider, Biehl & Hammer 2009): ``d = |(x - w) Ω|^2``.

    ``Ω (d, latent_dim)`` starts at the identity (random orthonormal when ``latent_dim < d``)
    and is kept at ``|Ω|_F = 1`` so ``trace(Λ) = 1``. Distances cost ``(n + p) d l``.
    """

    _own_params = {"latent_dim": None, "beta": 10.0}

    def _make_distance(self):
        _no_distance_fn(self)
        return Omega(self.latent_dim)

    def _make_loss(self, n_classes):
        return GLVQLoss(self.transfer_fn, self.beta, self.margin)


@register("A", _FAST)
class LGMLVQ(LocalMatrixMixin, SupervisedPrototypeModel):
    """Localized GMLVQ: one ``Ω_k (d, latent_dim)`` per prototype, each of unit Frobenius norm."""

    _own_params = {"latent_dim": None, "beta": 10.0}

    def _make_distance(self):
        _no_distance_fn(self)
        return LocalOmega(self.latent_dim)

    def _make_loss(self, n_classes):
        return GLVQLoss(self.transfer_fn, self.beta, self.margin)


@register("A", {**_FAST, "subspace_dim": 1})
class GTLVQ(SupervisedPrototypeModel):
    """Generalized Tangent LVQ (Saralajew & Villmann 2016): distance orthogonal to a learned
    ``subspace_dim``-dimensional subspace per prototype (bases re-orthonormalised every step,
    initialised from the class's principal directions)."""

    _own_params = {"subspace_dim": 2, "beta": 10.0}

    def _make_distance(self):
        _no_distance_fn(self)
        return Tangent(self.subspace_dim)

    def _make_loss(self, n_classes):
        return GLVQLoss(self.transfer_fn, self.beta, self.margin)


@register("A", _FAST)
class CELVQ(SupervisedPrototypeModel):
    """Cross-Entropy LVQ: cross-entropy of ``softmax(-class-wise nearest distance)``."""

    _loss_options = frozenset()  # no transfer function, no margin

    def _make_loss(self, n_classes):
        return CrossEntropyLoss(n_classes)
