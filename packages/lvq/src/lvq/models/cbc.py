"""Family F: Classification-By-Components (CBC, ImageCBC; Saralajew et al. 2019).

Components are classless prototypes. A sample *detects* every component with a similarity
``s_k(x)`` in ``[0, 1]`` (``similarity_fn`` of the distance, Gaussian by default); per class
``c`` and component ``k`` a learned reasoning says whether the component's presence is evidence
for the class (positive reasoning ``p_kc``) or its absence is (negative reasoning ``n_kc``)::

    P(c | x) = (sum_k s_k p_kc + (1 - s_k) n_kc) / sum_k (p_kc + n_kc)

with ``p = sigmoid(a)``, ``n = (1 - p) sigmoid(b)`` from the raw reasonings ``(a, b)``
(``reasonings (K, C, 2)``; ``reasonings_`` holds ``p`` and ``n``). Training minimises the margin
loss ``max(0, max_{c != y} P(c | x) - P(y | x) + margin)`` (``margin`` 0.3 by default).
``predict`` takes the largest ``P``; ``predict_proba`` normalises the ``P`` to sum to 1.

``n_components=None`` places ``n_prototypes_per_class`` components per class with
``prototypes_initializer`` (their class is only where they start); an int spreads that many
over the classes. ``prototype_labels_`` reports each component's most positively reasoned
class. ImageCBC detects components in the embedding of the same CNN as the images
(see :mod:`lvq.models.backbone`).
"""

from __future__ import annotations

import math

import blockops
import numpy as np
import torch

from .._checks import is_number, seeded_generator
from ..base import SupervisedPrototypeModel, _InferenceModule
from ..losses import Loss
from ..registry import register
from .backbone import _CNN, _TEST_CNN, BackboneMixin

__all__ = ["CBC", "SIMILARITIES", "CBCLoss", "ImageCBC"]


def gaussian_similarity(dist: torch.Tensor, sigma: float) -> torch.Tensor:
    """``exp(-d / (2 sigma^2))`` of squared distances ``(n, K)``."""
    return torch.exp(-dist / (2.0 * sigma * sigma))


def inverse_similarity(dist: torch.Tensor, sigma: float) -> torch.Tensor:
    """``1 / (1 + d / sigma^2)`` of squared distances ``(n, K)`` (heavier tails)."""
    return 1.0 / (1.0 + dist / (sigma * sigma))


#: similarity functions of squared distances, by name (``similarity_fn``)
SIMILARITIES = {"gaussian": gaussian_similarity, "inverse": inverse_similarity}

#: ``ds/dd`` of the built-in similarities, from the similarities ``s`` (closed-form gradients)
SIMILARITY_SLOPES = {
    gaussian_similarity: lambda s, sigma: s * (-0.5 / (sigma * sigma)),
    inverse_similarity: lambda s, sigma: s * s * (-1.0 / (sigma * sigma)),
}


def reasoning_probabilities(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positive and negative reasonings ``(K, C)`` each from raw ``(K, C, 2)``."""
    pos = torch.sigmoid(raw[..., 0])
    neg = (1.0 - pos) * torch.sigmoid(raw[..., 1])
    return pos, neg


def cbc_probabilities(sim: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
    """Class evidences ``P(c | x)`` in ``[0, 1]`` ``(n, C)`` from detections ``(n, K)``."""
    pos, neg = reasoning_probabilities(raw.to(sim.dtype))
    num = sim @ (pos - neg) + neg.sum(0)
    return num / (pos + neg).sum(0).clamp_min(1e-8)


class CBCLoss(Loss):
    """Margin loss on the CBC class evidences; holds the similarity function."""

    def __init__(self, similarity, sigma: float, margin: float):
        self.similarity = similarity
        self.sigma = float(sigma)
        self.margin = float(margin)

    def evidences(self, dist: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """``P(c | x)`` ``(n, C)`` from component distances ``(n, K)``."""
        return cbc_probabilities(self.similarity(dist, self.sigma), raw)

    def per_sample(self, dist, raw, y):
        prob = self.evidences(dist, raw)
        correct = prob.gather(1, y[:, None]).squeeze(1)
        wrong = prob.scatter(1, y[:, None], float("-inf")).max(1).values
        return torch.relu(wrong - correct + self.margin)

    def has_closed_form(self, neighbourhood) -> bool:
        return self.similarity in SIMILARITY_SLOPES

    def closed_form(self, dist, raw, y, w):
        """``(loss, dloss/ddist (n, K), dloss/draw (K, C, 2))`` without autograd: the
        (``w``-weighted) mean of :meth:`per_sample`. Call under ``torch.no_grad()``."""
        sim = self.similarity(dist, self.sigma)
        pos, gate = torch.sigmoid(raw[..., 0]), torch.sigmoid(raw[..., 1])
        neg = (1.0 - pos) * gate
        R = pos - neg
        den_raw = (pos + neg).sum(0)
        den = den_raw.clamp_min(1e-8)
        P = (sim @ R + neg.sum(0)) / den  # (n, C)
        own = y[:, None]
        wrong, jw = P.scatter(1, own, float("-inf")).max(1, keepdim=True)
        per = torch.relu(wrong - P.gather(1, own) + self.margin)  # (n, 1)
        active = (per > 0).to(per.dtype)
        if w is None:
            loss, coef = per.mean(), active / dist.shape[0]
        else:
            w_sum = w.sum().clamp_min(1e-30)  # an all-zero-weight mini-batch gives 0, not NaN
            loss, coef = (per.squeeze(1) * w).sum() / w_sum, active * (w / w_sum)[:, None]
        dP = torch.zeros_like(P).scatter_(1, jw, coef).scatter_(1, own, -coef)
        dnum = dP / den
        dden = -(dP * P).sum(0) / den * (den_raw >= 1e-8)
        dR = sim.T @ dnum  # (K, C)
        dneg = dnum.sum(0) + dden - dR
        dpos = dR + dden - dneg * gate  # neg = (1 - pos) gate
        draw = torch.stack(
            [dpos * pos * (1.0 - pos), dneg * (1.0 - pos) * gate * (1.0 - gate)], dim=-1
        )
        ddist = (dnum @ R.T) * SIMILARITY_SLOPES[self.similarity](sim, self.sigma)
        return loss, ddist, draw


def _random_reasonings(n_components, n_classes, gen, plabels):
    return 0.01 * torch.randn(n_components, n_classes, 2, generator=gen)


def _pure_positive(n_components, n_classes, gen, plabels):
    raw = torch.full((n_components, n_classes, 2), -2.0)
    raw[torch.arange(n_components), plabels.cpu(), 0] = 2.0
    return raw + 0.01 * torch.randn(raw.shape, generator=gen)


_REASONINGS = {"random": _random_reasonings, "pure_positive": _pure_positive}


@register("F", {"max_iter": 60, "lr": 0.05})
class CBC(SupervisedPrototypeModel):
    """Classification-By-Components (see the module docstring).

    Own parameters: ``n_components`` (None: ``n_prototypes_per_class`` per class),
    ``sigma`` (similarity bandwidth; None, the default, scales it to the data:
    ``sqrt(median d(x, w_k) / 2)`` over the training samples and the initial components, so
    that the Gaussian similarity is ``exp(-1)`` at the median distance; the value used is
    ``sigma_``), ``margin`` (0.3), ``similarity_fn`` (``'gaussian'``,
    ``'inverse'`` or a callable ``(dist (n, K), sigma) -> (n, K)`` in ``[0, 1]``),
    ``components_initializer`` (None: ``prototypes_initializer``; or a callable
    ``(X, n_components, generator) -> (K, d)``), ``reasonings_initializer`` (``'random'``
    near 0.5, ``'pure_positive'`` (each component positive for its starting class), or a
    callable ``(n_components, n_classes, generator) -> (K, C, 2)`` values in ``[0, 1]``:
    positive reasoning and negative factor). The components are the parameter group
    ``"prototypes"``, also named ``"components"`` in ``freeze_params``.
    """

    _group_aliases = {"components": "prototypes"}
    _loss_options = frozenset({"margin"})  # the margin loss on evidences has no transfer
    _own_params = {
        "n_components": None,
        "sigma": None,
        "margin": 0.3,
        "similarity_fn": None,
        "components_initializer": None,
        "reasonings_initializer": None,
    }

    def _prediction_params(self):
        return {"distance_fn", "similarity_fn"}

    def _validate_params(self):
        super()._validate_params()
        k = self.n_components
        if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
            raise ValueError(f"n_components must be None or a positive int, got {k!r}")
        s = self.sigma
        if s is not None and (not is_number(s) or not s > 0):
            raise ValueError(f"sigma must be None or a positive number, got {s!r}")
        self._similarity()
        r = self.reasonings_initializer
        if not (r is None or callable(r) or r in _REASONINGS):
            raise ValueError(
                f"reasonings_initializer must be None, {sorted(_REASONINGS)} or a callable, "
                f"got {r!r}"
            )
        c = self.components_initializer
        if c is not None and not callable(c):
            raise TypeError(f"components_initializer must be None or a callable, got {c!r}")

    def _similarity(self):
        fn = self.similarity_fn
        if fn is None:
            return gaussian_similarity
        if isinstance(fn, str):
            if fn not in SIMILARITIES:
                raise ValueError(
                    f"similarity_fn={fn!r} is not known; use one of {sorted(SIMILARITIES)} or a "
                    "callable (dist, sigma) -> similarities"
                )
            return SIMILARITIES[fn]
        if callable(fn):
            return fn
        raise TypeError(f"similarity_fn must be None, a name or a callable, got {fn!r}")

    def _counts(self, n_classes):
        if self.n_components is None:
            return super()._counts(n_classes)
        k = int(self.n_components)
        return [k // n_classes + (c < k % n_classes) for c in range(n_classes)]

    def _make_loss(self, n_classes):
        sigma = self.sigma if self.sigma is not None else self.sigma_
        return CBCLoss(self._similarity(), sigma, self.margin)

    def _data_sigma(self, X: torch.Tensor, params: dict[str, torch.Tensor]) -> float:
        """``sqrt(median d(x, w_k) / 2)`` over (at most 2048 evenly spaced) samples and the
        initial components: the Gaussian similarity is ``exp(-1)`` at the median distance."""
        rows = torch.linspace(0, X.shape[0] - 1, min(X.shape[0], 2048)).round().long()
        with torch.no_grad():
            dist = self._make_distance().all_distances(
                X[rows.to(X.device)], params["prototypes"], params
            )
        med = float(dist.double().median())
        return math.sqrt(med / 2.0) if math.isfinite(med) and med > 0 else 1.0

    def _init_params(self, X, codes, initial_prototypes, initial_labels):
        params = super()._init_params(X, codes, initial_prototypes, initial_labels)
        init = self.components_initializer
        if init is not None and initial_prototypes is None:
            gen = seeded_generator("random_seed", self.random_seed)
            K = params["prototypes"].shape[0]
            W = blockops.as_tensor(init(X, K, gen), name="components", device=X.device)
            if W.shape != params["prototypes"].shape:
                raise ValueError(
                    f"components_initializer returned shape {tuple(W.shape)}; expected "
                    f"{tuple(params['prototypes'].shape)}"
                )
            params["prototypes"] = W.clone()
        self.sigma_ = float(self.sigma) if self.sigma is not None else self._data_sigma(X, params)
        return params

    def _extra_params(self, X, y, gen):
        K, C = int(self._plabels.shape[0]), int(self.n_classes_)
        init = self.reasonings_initializer
        if init is None or isinstance(init, str):
            raw = _REASONINGS[init or "random"](K, C, gen, self._plabels)
        else:
            vals = torch.as_tensor(np.asarray(init(K, C, gen), dtype=np.float32))
            if vals.shape != (K, C, 2):
                raise ValueError(
                    f"reasonings_initializer returned shape {tuple(vals.shape)}; expected "
                    f"({K}, {C}, 2)"
                )
            raw = torch.logit(vals.clamp(1e-3, 1 - 1e-3))
        return {"reasonings": raw.to(device=X.device, dtype=X.dtype)}

    # ------------------------------------------------------------ training and prediction

    def _forward_losses(self, params, Xb, yb, components):
        distance, loss, _ = components
        dist = distance(Xb, params["prototypes"], params)
        return loss.per_sample(dist.float(), params["reasonings"].float(), yb)

    _closed_form_groups = frozenset({"reasonings"})

    def _closed_form_loss(self, params, Xb, yb, wb, components):
        distance, loss, _ = components
        dist, vjp = distance.closed_form(Xb, params["prototypes"], params)
        value, ddist, draw = loss.closed_form(dist, params["reasonings"], yb, wb)
        grads = vjp(ddist)
        grads["reasonings"] = draw
        return value, grads

    def _evidences(self, Xt):
        p = self._inference_params()
        dist = self._make_distance().all_distances(Xt, p["prototypes"], p)
        with torch.no_grad():
            return self._make_loss(self.n_classes_).evidences(dist.float(), p["reasonings"])

    def _class_distances(self, Xt):
        return 1.0 - self._evidences(Xt)

    def predict_proba(self, X):
        """The class evidences ``P(c | x)`` normalised to sum to 1 ``(n, C)``."""
        ev = self._evidences(self._check_X(X)).double().clamp_min(0.0)
        total = ev.sum(1, keepdim=True)
        uniform = torch.full_like(ev, 1.0 / ev.shape[1])
        return torch.where(total > 0, ev / total.clamp_min(1e-300), uniform).cpu().numpy()

    def evidences(self, X) -> np.ndarray:
        """Unnormalised class evidences ``P(c | x)`` in ``[0, 1]`` ``(n, C)``."""
        return self._evidences(self._check_X(X)).cpu().numpy()

    def _publish(self):
        super()._publish()
        raw = self._inference_params()["reasonings"].float()
        pos, neg = reasoning_probabilities(raw)
        self.components_ = self.prototypes_
        self.reasonings_ = torch.stack([pos, neg], -1).cpu().numpy()
        self.prototype_labels_ = self._encoder.inverse_transform(pos.argmax(1).cpu())

    def inference_module(self) -> torch.nn.Module:
        """A ``torch.nn.Module`` mapping ``X (n, d)`` to ``(class codes (n,), proba (n, C))``."""
        blockops.check_is_fitted(self, "prototypes_")
        return _CBCInference(self)

    def _checkpoint_config(self):
        return {**super()._checkpoint_config(), "sigma": self.sigma_}

    def _restore_config(self, config):
        super()._restore_config(config)
        self.sigma_ = float(config.get("sigma", 1.0 if self.sigma is None else self.sigma))


class _CBCInference(_InferenceModule):
    def forward(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dist, p = self._distances(X)
        ev = self.loss.evidences(dist, p["reasonings"]).clamp_min(0.0)
        proba = ev / ev.sum(1, keepdim=True).clamp_min(1e-30)
        return ev.argmax(1), proba


@register("F", {**_TEST_CNN, "max_iter": 40})
class ImageCBC(BackboneMixin, CBC):
    """CBC with a CNN: images and component images pass through the same backbone, and the
    components are detected in its embedding (parameters of ImageGLVQ plus those of CBC)."""

    _image = True
    _own_params = dict(_CNN)
