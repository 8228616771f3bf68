"""Family C: probabilistic soft LVQ (SLVQ, RSLVQ, MRSLVQ, LMRSLVQ).

Each prototype is the centre of a Gaussian of bandwidth ``sigma``; ``predict_proba`` is the
mixture posterior ``p(c | x)`` (computed with log-sum-exp), which is what the loss trains.
``predict`` is the class of the nearest prototype (winner takes all, as in the published
library); with several prototypes per class a sample near a boundary can get a label other
than the argmax of ``predict_proba`` (a few in a hundred on wine with two per class).
"""

from __future__ import annotations

from .._checks import check_number, is_number
from ..base import SupervisedPrototypeModel
from ..distances import LocalOmega, Omega
from ..losses import RSLVQLoss, SLVQLoss
from ..registry import register
from .glvq import LocalMatrixMixin, MatrixMixin, _no_distance_fn

_FAST = {"max_iter": 30, "lr": 0.05}


class _Probabilistic(SupervisedPrototypeModel):
    _own_params = {"sigma": 1.0, "rejection_confidence": None}
    _loss_options = frozenset()  # a likelihood: no transfer function, no margin

    def _validate_params(self):
        super()._validate_params()
        check_number("sigma", self.sigma, 0.0)
        rc = self.rejection_confidence
        if rc is not None and (not is_number(rc) or not 0.0 <= float(rc) <= 1.0):
            raise ValueError(f"rejection_confidence must be None or in [0, 1], got {rc!r}")

    def _make_loss(self, n_classes):
        return RSLVQLoss(self.sigma)


@register("C", _FAST)
class SLVQ(_Probabilistic):
    """Soft LVQ (Seo & Obermayer 2003): minimises ``-log(p(correct | x) / p(wrong | x))``."""

    def _make_loss(self, n_classes):
        return SLVQLoss(self.sigma)


@register("C", _FAST)
class RSLVQ(_Probabilistic):
    """Robust Soft LVQ (Seo & Obermayer 2003): minimises ``-log p(y | x)`` of the mixture."""


@register("C", _FAST)
class MRSLVQ(MatrixMixin, _Probabilistic):
    """Matrix RSLVQ (Schneider et al. 2009): RSLVQ with a global ``Ω`` metric (trace(Λ) = 1)."""

    _own_params = {"latent_dim": None}

    def _make_distance(self):
        _no_distance_fn(self)
        return Omega(self.latent_dim)


@register("C", _FAST)
class LMRSLVQ(LocalMatrixMixin, _Probabilistic):
    """Localized Matrix RSLVQ: RSLVQ with one ``Ω_k`` per prototype."""

    _own_params = {"latent_dim": None}

    def _make_distance(self):
        _no_distance_fn(self)
        return LocalOmega(self.latent_dim)
