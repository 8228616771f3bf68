"""Family G: differentiating-kernel GLVQ (Villmann, Haase & Kaden 2015).

The GLVQ loss on a kernel distance in feature space, with the kernel's parameters learned by
gradient descent alongside the prototypes:

* :class:`DKGLVQ`: Gaussian kernel distance ``2 (1 - exp(-|x - w_k|^2 / (2 sigma_k^2)))`` with one
  learnable bandwidth ``sigma_k`` per prototype (``sigma_init`` 'median' | 'mean' | float, kept
  at ``>= sigma_min``);
* :class:`DKGRLVQ`: the same kernel around the relevance distance ``sum_j λ_j (x_j - w_j)^2``;
* :class:`DKGMLVQ`: the exponential kernel ``exp(x^T Λ̂ w)`` with ``Λ̂ = Ω̂ Ω̂^T`` learned
  (``Ω̂`` starts at ``omega_hat_scale`` times the identity);
* the ``_NG`` variants use the supervised neural-gas cost of family D
  (:mod:`lvq.models.supervised_ng`): every prototype of the sample's class against the nearest
  wrong one, weighted by ``exp(-rank / gamma)`` (``gamma_init`` -> ``gamma_final``, a schedule,
  never trained), with ``lr_ratio`` scaling the prototypes' gradient through the nearest wrong
  prototype (``eps- / eps+``).

The distances are components of :mod:`lvq.distances` (:class:`~lvq.distances.GaussianKernel`,
:class:`~lvq.distances.ExponentialKernel`), so every shared training option, ``save``/``load``,
quantization and ONNX export work as for the other classifiers.
"""

from __future__ import annotations

import numpy as np

from ..base import SupervisedPrototypeModel
from ..distances import ExponentialKernel, GaussianKernel, Relevance, SquaredEuclidean
from ..losses import GLVQLoss
from ..registry import register
from .glvq import RelevanceMixin, _fitted, _no_distance_fn
from .supervised_ng import _GLVQNG

__all__ = ["DKGLVQ", "DKGLVQ_NG", "DKGMLVQ", "DKGMLVQ_NG", "DKGRLVQ", "DKGRLVQ_NG"]

_FAST = {"max_iter": 30, "lr": 0.05}
_SIGMA = {"sigma_init": "median", "sigma_min": 1e-3, "beta": 10.0}
_EXP = {"latent_dim": None, "omega_hat_scale": 0.1, "beta": 10.0}


class BandwidthMixin:
    """``kernel_bandwidths``: the learned per-prototype ``sigma_k`` ``(P,)``."""

    @property
    def kernel_bandwidths(self) -> np.ndarray:
        """Learned Gaussian-kernel bandwidths, one per prototype ``(P,)``."""
        return _fitted(self, "sigmas_")


class ExpKernelMixin:
    """``omega_hat_matrix`` Ω̂ ``(d, l)`` and ``lambda_hat_matrix`` Λ̂ = Ω̂Ω̂ᵀ ``(d, d)``."""

    @property
    def omega_hat_matrix(self) -> np.ndarray:
        """The learned Ω̂ ``(d, latent_dim)`` of the exponential kernel."""
        return _fitted(self, "omega_hat_")

    @property
    def lambda_hat_matrix(self) -> np.ndarray:
        """Λ̂ = Ω̂Ω̂ᵀ ``(d, d)``."""
        om = _fitted(self, "omega_hat_").astype(np.float64)
        return om @ om.T


class _DK(SupervisedPrototypeModel):
    def _make_loss(self, n_classes):
        return GLVQLoss(self.transfer_fn, self.beta, self.margin)


@register("G", _FAST)
class DKGLVQ(BandwidthMixin, _DK):
    """Differentiating-kernel GLVQ: GLVQ on ``2 (1 - exp(-d(x, w_k) / (2 sigma_k^2)))``.

    ``d`` is the squared Euclidean distance (or ``distance_fn``); one bandwidth ``sigma_k`` per
    prototype is learned, starting at the median (``sigma_init='median'``), the mean
    (``'mean'``) of the distances from the prototype to its class or at a given float, and kept
    at ``>= sigma_min``. Fitted: ``sigmas_`` (``kernel_bandwidths``).
    """

    _own_params = dict(_SIGMA)

    def _make_distance(self):
        return GaussianKernel(SquaredEuclidean(self.distance_fn), self.sigma_init, self.sigma_min)


@register("G", _FAST)
class DKGRLVQ(RelevanceMixin, BandwidthMixin, _DK):
    """Differentiating-kernel GRLVQ: the Gaussian kernel distance of the relevance distance
    ``sum_j λ_j (x_j - w_j)^2`` (λ on the simplex, as in :class:`lvq.GRLVQ`), learnable
    bandwidth per prototype. Fitted: ``relevances_``, ``sigmas_``."""

    _own_params = dict(_SIGMA)

    def _make_distance(self):
        _no_distance_fn(self)
        return GaussianKernel(Relevance(), self.sigma_init, self.sigma_min)


@register("G", _FAST)
class DKGMLVQ(ExpKernelMixin, _DK):
    """Differentiating-kernel GMLVQ with the exponential kernel ``exp(x^T Λ̂ w)``, Λ̂ = Ω̂Ω̂ᵀ.

    Distance ``exp(x^TΛ̂x) + exp(w^TΛ̂w) - 2 exp(x^TΛ̂w)`` evaluated without cancellation
    (:func:`lvq.distances.exponential_kernel_distance`); ``Ω̂ (d, latent_dim)`` starts at
    ``omega_hat_scale`` times the identity (small values keep ``exp`` in range: standardise the
    data). Fitted: ``omega_hat_``.
    """

    _own_params = dict(_EXP)

    def _make_distance(self):
        _no_distance_fn(self)
        return ExponentialKernel(self.latent_dim, self.omega_hat_scale)


@register("G", _FAST)
class DKGLVQ_NG(_GLVQNG, DKGLVQ):
    """DKGLVQ with neural-gas cooperation (the cost of :class:`lvq.SNG` on the Gaussian kernel
    distance): every prototype of the sample's class enters against the nearest wrong one,
    weighted by ``exp(-rank / gamma)``; ``gamma`` decays from ``gamma_init`` (default: half the
    largest number of prototypes of a class, at least 0.5) to ``gamma_final`` (``gamma_decay``:
    per-step factor instead), recovering DKGLVQ as ``gamma -> 0`` with ``lr_ratio=1``.
    ``lr_ratio`` (0.5) scales the prototypes' gradient through the nearest wrong prototype."""


@register("G", _FAST)
class DKGRLVQ_NG(_GLVQNG, DKGRLVQ):
    """DKGRLVQ with neural-gas cooperation (see :class:`DKGLVQ_NG`)."""


@register("G", _FAST)
class DKGMLVQ_NG(_GLVQNG, DKGMLVQ):
    """DKGMLVQ with neural-gas cooperation (see :class:`DKGLVQ_NG`)."""
