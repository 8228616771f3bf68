"""Family M: supervised vector quantization for one-class classification (SVQ-OCC, Staps et al.
2022) and its relevance, matrix, local-matrix and tangent variants.

The cost is ``E = alpha R + (1 - alpha) C``:

* ``R``, the neural-gas representation cost of the target samples: the distances to every
  prototype weighted by the normalised rank weights ``exp(-rank / lambda)`` (``lambda`` decays
  from ``lambda_init``, default ``n_prototypes / 2``, to ``lambda_final``: a schedule, never
  trained);
* ``C``, a classification cost on the responsibilities
  ``r(x) = Σ_k p(k | x) sigmoid((θ_k - d_k) / sigma)`` with ``p(k | x)`` a Gaussian
  (``softmax(-gamma_resp d_k)``), Student-t (``nu`` degrees of freedom) or uniform response:
  the contrastive score ``1 - (TP TN - FP FN) / ((TP + FP)(TN + FN))`` of the soft confusion
  matrix (``cost_function='contrastive'``, a batch-level score, so it needs labelled outliers
  and takes no sample or class weights), the Brier score or the binary cross-entropy.

``decision_function`` is ``r(x)`` in ``[0, 1]`` (boundary 0.5).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from .._checks import check_number, is_number
from ..distances import LocalOmega, Omega, Relevance, Tangent
from ..neighbourhood import NeuralGas
from ..registry import register
from .glvq import LocalMatrixMixin, MatrixMixin, RelevanceMixin, _no_distance_fn
from .one_class import OneClassPrototypeModel, _check_unit

__all__ = ["SVQOCC", "SVQOCC_LM", "SVQOCC_M", "SVQOCC_R", "SVQOCC_T"]

_FAST = {"max_iter": 25, "lr": 0.05}
_COSTS = ("contrastive", "brier", "cross_entropy")
_RESPONSES = ("gaussian", "student_t", "uniform")


@register("M", _FAST, kind="one_class")
class SVQOCC(OneClassPrototypeModel):
    """SVQ-OCC: ``E = alpha R + (1 - alpha) C`` (see the module docstring) with squared
    Euclidean distances (or ``distance_fn``).

    Own parameters: ``alpha`` (0.5), ``cost_function`` ('contrastive' | 'brier' |
    'cross_entropy'), ``response_type`` ('gaussian' | 'student_t' | 'uniform'), ``sigma``
    (0.1, width of the smooth step at ``d = θ_k``), ``gamma_resp`` (1.0), ``nu`` (1.0),
    ``lambda_init`` (``None``: ``n_prototypes / 2``), ``lambda_final`` (0.01),
    ``lambda_decay`` (``None``: geometric from init to final over the training steps).
    """

    _own_params = {
        "alpha": 0.5,
        "cost_function": "contrastive",
        "response_type": "gaussian",
        "sigma": 0.1,
        "gamma_resp": 1.0,
        "nu": 1.0,
        "lambda_init": None,
        "lambda_final": 0.01,
        "lambda_decay": None,
    }
    _scoring = "svq"
    _loss_options = frozenset()  # E = alpha R + (1 - alpha) C: no transfer function, no margin

    def _validate_params(self) -> None:
        super()._validate_params()
        _check_unit("alpha", self.alpha)
        if self.cost_function not in _COSTS:
            raise ValueError(f"cost_function must be one of {_COSTS}, got {self.cost_function!r}")
        if self.response_type not in _RESPONSES:
            raise ValueError(
                f"response_type must be one of {_RESPONSES}, got {self.response_type!r}"
            )
        for name in ("gamma_resp", "nu", "lambda_final"):
            v = getattr(self, name)
            if not is_number(v) or not v > 0:
                raise ValueError(f"{name} must be a number > 0, got {v!r}")
        li = self.lambda_init
        if li is not None and (not is_number(li) or not li > 0):
            raise ValueError(f"lambda_init must be None or a number > 0, got {li!r}")
        if li is not None and li < self.lambda_final:
            # the schedule never rises: lambda_init was ignored, lambda held at lambda_final
            raise ValueError(
                f"lambda_init={li!r} is smaller than lambda_final={self.lambda_final!r}; lambda "
                "only decays (set lambda_init >= lambda_final)"
            )
        if self.lambda_decay is not None:
            check_number("lambda_decay", self.lambda_decay, 0.0, high=1.0)

    def _check_training_options(self, codes: torch.Tensor, sample_weight: Any) -> None:
        if self.cost_function != "contrastive":
            return
        if sample_weight is not None or self.class_weight is not None:
            raise ValueError(
                "cost_function='contrastive' is a score of the whole batch and takes no "
                "sample_weight or class_weight; use cost_function='brier' or 'cross_entropy'"
            )
        if not bool((codes != self._target_code).any()):
            # with no outlier the contrastive score is the constant 1: no gradient reaches θ_k
            warnings.warn(
                f"{type(self).__name__}: cost_function='contrastive' needs labelled outliers; "
                "without any the visibility radii are not trained and keep their initial "
                "values (use cost_function='brier' or 'cross_entropy', or add outliers)",
                stacklevel=3,
            )

    def _make_neighbourhood(self):
        g0 = self.lambda_init if self.lambda_init is not None else max(self.n_prototypes / 2, 0.5)
        return NeuralGas(g0, self.lambda_final, self.lambda_decay)

    def _log_responsibility(self, dist: torch.Tensor, theta: torch.Tensor):
        """``(log r, log(1 - r))`` with ``r = Σ_k p(k|x) sigmoid((θ_k - d_k) / sigma)``, both
        as log-sum-exps (``1 - r = Σ_k p(k|x) sigmoid((d_k - θ_k) / sigma)``), so neither
        saturates nor needs clipping."""
        if self.response_type == "gaussian":
            logp = torch.log_softmax(-float(self.gamma_resp) * dist, dim=1)
        elif self.response_type == "student_t":
            nu = float(self.nu)
            logp = torch.log_softmax(-(nu + 1.0) / 2.0 * torch.log1p(dist / nu), dim=1)
        else:
            logp = torch.full_like(dist, -math.log(dist.shape[1]))
        z = (theta - dist) / float(self.sigma)
        inside = torch.logsumexp(logp + torch.nn.functional.logsigmoid(z), dim=1)
        outside = torch.logsumexp(logp + torch.nn.functional.logsigmoid(-z), dim=1)
        return inside, outside

    def _one_class_losses(self, dist, theta, s, neigh, params) -> torch.Tensor:
        n = dist.shape[0]
        target = (s > 0).to(dist.dtype)
        w = neigh._weights(dist, torch.ones_like(dist, dtype=torch.bool))
        rep = (w * dist).sum(1) * target * (n / target.sum().clamp_min(1.0))
        log_r, log_not_r = self._log_responsibility(dist, theta)
        r = log_r.exp()
        if self.cost_function == "contrastive":
            tp = (target * r).sum()
            fn = target.sum() - tp
            fp = ((1.0 - target) * r).sum()
            tn = (1.0 - target).sum() - fp
            cost = 1.0 - (tp * tn - fp * fn) / ((tp + fp) * (tn + fn) + 1e-10)
            cls = cost.expand(n)
        elif self.cost_function == "brier":
            cls = (target - r).pow(2)
        else:
            cls = -(target * log_r + (1.0 - target) * log_not_r)
        a = float(self.alpha)
        return a * rep + (1.0 - a) * cls

    def _score_from_distances(self, dist: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return self._log_responsibility(dist, theta)[0].exp()


@register("M", _FAST, kind="one_class")
class SVQOCC_R(RelevanceMixin, SVQOCC):
    """Relevance SVQ-OCC: the relevance distance ``sum_j λ_j (x_j - w_j)^2`` (λ on the
    simplex, ``relevances_``)."""

    def _make_distance(self):
        _no_distance_fn(self)
        return Relevance()


@register("M", _FAST, kind="one_class")
class SVQOCC_M(MatrixMixin, SVQOCC):
    """Matrix SVQ-OCC: a global ``Ω (d, latent_dim)`` metric (trace(Λ) = 1, ``omega_``)."""

    _own_params = {"latent_dim": None}

    def _make_distance(self):
        _no_distance_fn(self)
        return Omega(self.latent_dim)


@register("M", _FAST, kind="one_class")
class SVQOCC_LM(LocalMatrixMixin, SVQOCC):
    """Local-matrix SVQ-OCC: one ``Ω_k`` per prototype (``omegas_``)."""

    _own_params = {"latent_dim": None}

    def _make_distance(self):
        _no_distance_fn(self)
        return LocalOmega(self.latent_dim)


@register("M", {**_FAST, "subspace_dim": 1}, kind="one_class")
class SVQOCC_T(SVQOCC):
    """Tangent SVQ-OCC: the distance orthogonal to a learned ``subspace_dim``-dimensional
    subspace per prototype (``bases_``)."""

    _own_params = {"subspace_dim": 2}

    def _make_distance(self):
        _no_distance_fn(self)
        return Tangent(self.subspace_dim)
