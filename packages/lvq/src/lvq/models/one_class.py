"""Families K, L and N: one-class prototype models with visibility radii.

Every prototype ``w_k`` of the target (normal) class carries a learned visibility radius
``θ_k`` (stored as ``r_k^2``, so it stays non-negative): a sample is target-like where its
distance to a prototype is below that prototype's radius. Training data are the target class and,
when available, labelled outliers (every label other than ``target_label`` is an outlier; the
most frequent label is the target when ``target_label`` is ``None``; ``y=None`` means all target).

* Family K (OC-GLVQ, Staps et al. 2022): ``μ = s (d_k* - θ_k*) / (d_k* + θ_k*)`` at the nearest
  prototype ``k*`` (``s = +1`` target, ``-1`` outlier), loss ``f(μ + margin)`` with the sigmoid
  transfer ``f`` (``beta``) unless ``transfer_fn`` says otherwise. Score
  ``1 - sigmoid(beta μ)`` with ``s = +1``: above 0.5 exactly where ``d < θ``.
* Family L (OC-RSLVQ): the per-prototype ``μ_k`` weighted by the Gaussian mixture
  responsibilities ``p(k | x) = softmax(-d_k / (2 sigma^2))``; score
  ``1 - sigmoid(beta Σ_k p(k|x) μ_k)``.
* Family N (OC-DK): family K on the differentiating-kernel distances of family G (Gaussian
  kernel with learned bandwidths, or the exponential kernel with learned ``Ω̂``); the radii live
  on the kernel-distance scale.
* ``_NG`` variants weight every prototype by the neural-gas rank weight ``exp(-rank / gamma)``
  (:class:`lvq.neighbourhood.NeuralGas`, ``gamma_init`` -> ``gamma_final``, a schedule); family
  K and N score with the nearest prototype (the ``gamma -> 0`` limit), family L combines the
  Gaussian responsibilities with the rank weights at the final ``gamma_``.

Every model has ``decision_function`` (scores in ``[0, 1]``, boundary 0.5), ``predict``,
``predict_proba`` ``(n, 2)`` (columns in ``classes_`` order) and one rejection API,
:meth:`OneClassPrototypeModel.predict_with_reject`. The initial radii are the mean distance of
the target samples in each prototype's Voronoi cell.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import blockops
import numpy as np
import torch

from .._checks import check_number, is_number, seeded_generator
from ..base import (
    BASE_PARAMS,
    SupervisedPrototypeModel,
    _reject_sparse_and_1d,
    _to_python,
    export_inference_onnx,
)
from ..distances import (
    Distance,
    ExponentialKernel,
    GaussianKernel,
    LocalOmega,
    Omega,
    Relevance,
    SquaredEuclidean,
    Tangent,
)
from ..initializers import resolve_initializer
from ..losses import get_transfer, sigmoid_beta
from ..neighbourhood import Nearest, NeuralGas
from ..registry import register
from .glvq import LocalMatrixMixin, MatrixMixin, RelevanceMixin, _no_distance_fn
from .kernel import BandwidthMixin, ExpKernelMixin
from .supervised_ng import _NGMixin

__all__ = [
    "OCDKGLVQ",
    "OCDKGLVQ_NG",
    "OCDKGMLVQ",
    "OCDKGMLVQ_NG",
    "OCDKGRLVQ",
    "OCDKGRLVQ_NG",
    "OCGLVQ",
    "OCGLVQ_NG",
    "OCGMLVQ",
    "OCGMLVQ_NG",
    "OCGRLVQ",
    "OCGRLVQ_NG",
    "OCGTLVQ",
    "OCGTLVQ_NG",
    "OCLGMLVQ",
    "OCLGMLVQ_NG",
    "OCLMRSLVQ",
    "OCLMRSLVQ_NG",
    "OCMRSLVQ",
    "OCMRSLVQ_NG",
    "OCRSLVQ",
    "OCRSLVQ_NG",
    "OneClassPrototypeModel",
]

_EPS = 1e-10
_FAST = {"max_iter": 25, "lr": 0.05}
_ONE_CLASS_BASE = {k: v for k, v in BASE_PARAMS.items() if k != "n_prototypes_per_class"}


class _NotForOneClass:
    """A supervised-only method, absent on one-class models (``hasattr`` is ``False``)."""

    def __init__(self, hint: str):
        self.hint = hint

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, objtype=None):
        owner = (objtype or type(obj)).__name__
        raise AttributeError(f"{owner} is a one-class model and has no {self.name}; {self.hint}")


def _default_outlier(target: Any) -> Any:
    """The outlier label when the training labels hold only the target."""
    if isinstance(target, (bool, np.bool_)):
        return not bool(target)
    if isinstance(target, (int, float, np.integer, np.floating)):
        return type(target)(0 if target != 0 else 1)
    return "outlier" if target != "outlier" else "non-target"


def _equal_mask(arr: np.ndarray, value: Any) -> np.ndarray:
    mask = np.asarray(arr == value)
    if mask.shape != arr.shape:  # numpy compared the whole array with a foreign type
        mask = np.array([v == value for v in arr.tolist()], dtype=bool)
    return mask.astype(bool)


def _with_reject(pred: np.ndarray, reject: np.ndarray, reject_label: Any) -> np.ndarray:
    """``pred`` with ``reject_label`` where ``reject`` (object dtype where the types differ)."""
    out = pred.astype(object) if pred.dtype.kind in "OUS" else pred.copy()
    if reject.any():
        if out.dtype.kind in "iuf" and isinstance(reject_label, (int, float)):
            out = out.astype(np.result_type(out.dtype, np.asarray(reject_label).dtype))
        else:
            out = out.astype(object)
        out[reject] = reject_label
    return out


class OneClassPrototypeModel(SupervisedPrototypeModel):
    """Base of the one-class families K, L, M and N (see the module docstring).

    Parameters are the shared training options of :data:`lvq.base.BASE_PARAMS` (without
    ``n_prototypes_per_class``) plus ``n_prototypes`` (prototypes of the target class) and
    ``target_label`` (``None``: the most frequent label of ``y``).

    Fitted attributes: ``target_label_``, ``outlier_label_`` (the first other label of ``y``
    in sorted order; where ``y`` holds only the target, ``0`` for a non-zero numeric target,
    ``1`` for target ``0``, ``not target`` for booleans and ``'outlier'`` for strings),
    ``classes_`` (both, sorted), ``prototypes_``, ``thetas_`` (visibility radii ``θ_k``, also
    ``visibility_radii``), ``radii_`` (``sqrt(θ_k)``, the trained parameter) and the metric's
    groups (``relevances_``, ``omega_``, ``sigmas_``, ...).
    """

    _base_params = _ONE_CLASS_BASE
    _own_params: dict[str, Any] = {"n_prototypes": 3, "target_label": None}
    #: ``"glvq"`` (nearest prototype), ``"soft"`` (Gaussian responsibilities) or ``"svq"``
    _scoring = "glvq"
    _ng = False

    # supervised-only API, absent here: one rejection API per model
    _hint = "one-class models reject with predict_with_reject(X, upper, lower, reject_label)"
    predict_with_rejection = _NotForOneClass(_hint)
    confidence = _NotForOneClass(_hint)
    rejection_rate = _NotForOneClass(_hint)
    accuracy_coverage_curve = _NotForOneClass(_hint)
    optimal_threshold = _NotForOneClass(_hint)
    partial_fit = _NotForOneClass("refit, or fit(X, y, resume=True) to continue training")

    # ------------------------------------------------------------------ composition

    def _make_distance(self) -> Distance:
        return SquaredEuclidean(self.distance_fn)

    def _make_loss(self, n_classes):
        return None  # the one-class losses live in _one_class_losses

    def _make_neighbourhood(self):
        return Nearest()  # the _NG models use the neural-gas schedule of family D

    def _transfer(self):
        return sigmoid_beta if self.transfer_fn is None else get_transfer(self.transfer_fn)

    # ------------------------------------------------------------------ validation

    def _validate_params(self) -> None:
        super()._validate_params()
        k = self.n_prototypes
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"n_prototypes must be a positive int, got {k!r}")
        for name in ("beta", "sigma"):
            if name in self._all_params:
                check_number(name, getattr(self, name), 0.0)

    # ------------------------------------------------------------------ labels

    def _setup_labels(self, y_arr: np.ndarray | None) -> None:
        tl = self.target_label
        if y_arr is None:
            target = 1 if tl is None else tl
            others: list[Any] = []
        else:
            values, counts = np.unique(y_arr, return_counts=True)
            if tl is None:
                target = values[int(np.argmax(counts))]
            else:
                hit = _equal_mask(values, tl)
                if not hit.any():
                    raise ValueError(
                        f"target_label={tl!r} does not occur in y; labels present: "
                        f"{_to_python(values)}"
                    )
                target = values[hit][0]
            others = list(values[~_equal_mask(values, target)])
        outlier = others[0] if others else _default_outlier(target)
        labels = np.array([outlier, target])
        if labels.dtype.kind not in "iufbU":
            labels = np.empty(2, dtype=object)
            labels[:] = [outlier, target]
        self._encoder = blockops.LabelEncoder().fit(labels)
        self.classes_ = self._encoder.classes_
        self.n_classes_ = 2
        self._target_code = int(_equal_mask(self.classes_, target).argmax())
        self._set_label_attrs()

    def _set_label_attrs(self) -> None:
        t = self._target_code
        self.target_label_ = _to_python(np.asarray(self.classes_[[t]]))[0]
        self.outlier_label_ = _to_python(np.asarray(self.classes_[[1 - t]]))[0]

    def _encode(self, y: Any, name: str = "y") -> torch.Tensor:
        """Labels to codes: the target's code for the target, the outlier code for the rest."""
        arr = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
        t = self._target_code
        codes = np.where(_equal_mask(arr, self.target_label_), t, 1 - t)
        return torch.from_numpy(codes.astype(np.int64))

    # ------------------------------------------------------------------ fit

    def fit(
        self,
        X: Any,
        y: Any = None,
        initial_prototypes: Any = None,
        validation_data: tuple[Any, Any] | None = None,
        sample_weight: Any = None,
        resume: bool = False,
    ) -> OneClassPrototypeModel:
        """Fit on target samples and (optionally) labelled outliers; returns ``self``.

        Args:
            X: training data ``(n, d)``.
            y: labels ``(n,)`` of any hashable type; ``target_label`` (or the most frequent
                label) is the target, every other label an outlier. ``None``: all target.
            initial_prototypes: ``(n_prototypes', d)`` starting prototypes (warm start).
            validation_data: ``(X_val, y_val)`` monitored each epoch.
            sample_weight: ``(n,)`` non-negative weights in the loss.
            resume: continue from the fitted parameters with a fresh optimizer.
        """
        if type(self) is OneClassPrototypeModel:
            raise TypeError(
                "OneClassPrototypeModel is the base class; fit one of its models "
                "(OCGLVQ, OCRSLVQ, SVQOCC, OCDKGLVQ, ...; see lvq.list_models(kind='one_class'))"
            )
        self._validate_params()
        device = blockops.resolve_device(self.device, name="device")
        if y is None:
            _reject_sparse_and_1d(X)
            Xt = blockops.as_tensor(X, name="X", device=device)
            y_arr = None
        else:
            Xt, y_arr = self._check_X_y(X, y, device)
        if resume:
            blockops.check_is_fitted(self, "prototypes_")
            if initial_prototypes is not None:
                raise ValueError("resume=True cannot be combined with initial_prototypes")
            if self._quantized is not None:
                raise ValueError("this model is quantized; call dequantize() before training")
            self._check_features(Xt)
            params = {k: v.detach().to(device).clone() for k, v in self._params.items()}
            self._plabels = self._plabels.to(device)
        else:
            self._setup_labels(y_arr)
            self.n_features_in_ = Xt.shape[1]
        if y_arr is None:
            codes = torch.full((Xt.shape[0],), self._target_code, dtype=torch.long, device=device)
        else:
            codes = self._encode(y_arr).to(device)
        self._check_training_options(codes, sample_weight)
        if not resume:
            params = self._init_params(Xt, codes, initial_prototypes, None)
        self._device = device
        self._quantized = None
        weights = self._one_class_weights(codes, y_arr, sample_weight)
        val = self._prepare_validation(validation_data, device)
        self._optimizer_state = None
        self._train(params, Xt, codes, weights, val, int(self.max_iter), fresh=True)
        return self

    def _one_class_weights(
        self, codes: torch.Tensor, y_arr: np.ndarray | None, sample_weight: Any
    ) -> torch.Tensor | None:
        """Per-sample loss weights. A ``class_weight`` dict weighs each label of ``y`` on its
        own (outlier labels may weigh differently, unnamed labels weigh 1): the codes know only
        target and outlier, so a key naming a second outlier label was refused as unseen."""
        cw = self.class_weight
        if not isinstance(cw, dict) or y_arr is None:
            return self._sample_weights(codes, sample_weight, 2)
        table = np.ones(len(y_arr))
        for label, weight in cw.items():
            hit = _equal_mask(y_arr, label)
            if not hit.any():
                raise ValueError(
                    f"class_weight key {label!r} is not a label of y; labels present: "
                    f"{_to_python(np.unique(y_arr))}"
                )
            table[hit] = check_number(f"class_weight[{label!r}]", weight, 0.0, False)
        self.class_weight = None  # the base class then checks sample_weight alone
        try:
            w = self._sample_weights(codes, sample_weight, 2)
        finally:
            self.class_weight = cw
        w = torch.ones(len(y_arr), device=codes.device) if w is None else w
        w = w * torch.as_tensor(table, dtype=w.dtype, device=w.device)
        if not float(w.sum()) > 0:
            raise ValueError(
                f"class_weight={cw!r} (times sample_weight) leaves every training sample with "
                "weight 0; at least one sample needs a weight > 0"
            )
        return w

    def _check_training_options(self, codes: torch.Tensor, sample_weight: Any) -> None:
        """Hook: refuse options a model cannot honour (none here)."""

    def _init_params(self, X, codes, initial_prototypes, initial_labels) -> dict[str, torch.Tensor]:
        gen = seeded_generator("random_seed", self.random_seed)
        Xt = X[codes == self._target_code]
        if Xt.shape[0] == 0:
            raise ValueError(f"y has no sample of the target label {self.target_label_!r}")
        zeros = torch.zeros(Xt.shape[0], dtype=torch.long, device=X.device)
        if initial_prototypes is not None:
            W = blockops.as_tensor(initial_prototypes, name="initial_prototypes", device=X.device)
            if W.shape[1] != X.shape[1]:
                raise ValueError(
                    f"initial_prototypes has {W.shape[1]} features but X has {X.shape[1]}"
                )
        else:
            init, kwargs = resolve_initializer(self.prototypes_initializer)
            W, _ = init(Xt, zeros, [int(self.n_prototypes)], gen, **kwargs)
            W = blockops.as_tensor(W, name="initialised prototypes", device=X.device)
            if W.shape != (int(self.n_prototypes), X.shape[1]):
                raise ValueError(
                    f"the prototypes initializer returned shape {tuple(W.shape)}; expected "
                    f"({int(self.n_prototypes)}, {X.shape[1]})"
                )
        k = W.shape[0]
        self._plabels = torch.full((k,), self._target_code, dtype=torch.long, device=X.device)
        distance = self._make_distance()
        distance.check(X.shape[1], k)
        plab = torch.zeros(k, dtype=torch.long, device=X.device)
        params = {"prototypes": W.clone()}
        params.update(distance.init_params(Xt, zeros, W, plab, gen))
        with torch.no_grad():
            D = distance(Xt, params["prototypes"], params)
            near = D.argmin(1)
            dn = D.gather(1, near[:, None]).squeeze(1)
            sums = torch.zeros(k, dtype=D.dtype, device=D.device).index_add_(0, near, dn)
            cnt = torch.bincount(near, minlength=k).to(D.dtype)
            theta = torch.where(cnt > 0, sums / cnt.clamp_min(1), dn.mean())
        params["radii"] = theta.clamp_min(1e-12).sqrt().to(W.dtype)
        params.update(self._extra_params(Xt, zeros, gen))
        return params

    # ------------------------------------------------------------------ losses and scores

    def _forward_losses(self, params, Xb, yb, components) -> torch.Tensor:
        distance, _, neigh = components
        dist = distance(Xb, params["prototypes"], params).float()
        theta = params["radii"].float().pow(2)
        s = (yb == self._target_code).float() * 2.0 - 1.0
        if self._ng:
            self.gamma_ = float(neigh.gamma)
        return self._one_class_losses(dist, theta, s, neigh, params)

    def _one_class_losses(self, dist, theta, s, neigh, params) -> torch.Tensor:
        f = self._transfer()
        beta, margin = float(self.beta), float(self.margin)
        if self._scoring == "glvq" and not self._ng:
            with torch.no_grad():
                j = dist.argmin(1, keepdim=True)
            d = dist.gather(1, j).squeeze(1)
            th = theta[j.squeeze(1)]
            return f(s * (d - th) / (d + th + _EPS) + margin, beta)
        mu = s[:, None] * (dist - theta) / (dist + theta + _EPS)
        cost = f(mu + margin, beta)
        return (self._weights(dist, neigh) * cost).sum(1)

    def _weights(self, dist: torch.Tensor, neigh) -> torch.Tensor:
        """Per-prototype weights ``(n, P)`` summing to 1 (responsibilities x rank weights)."""
        everything = torch.ones_like(dist, dtype=torch.bool)
        if self._scoring == "soft":
            w = torch.softmax(-dist / (2.0 * float(self.sigma) ** 2), dim=1)
            if self._ng:
                w = w * neigh._weights(dist, everything)
                w = w / w.sum(1, keepdim=True).clamp_min(1e-30)
            return w
        return neigh._weights(dist, everything)

    def _scores(self, Xt: torch.Tensor) -> torch.Tensor:
        p = self._inference_params()
        dist = self._make_distance().all_distances(Xt, p["prototypes"], p).double()
        return self._score_from_distances(dist, p["radii"].double().pow(2))

    def _score_from_distances(self, dist: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Scores ``(n,)`` from the distances ``(n, P)`` and radii ``θ (P,)`` (unclamped; plain
        tensor operations, so the ONNX export traces the same computation)."""
        mu = (dist - theta) / (dist + theta + _EPS)
        if self._scoring == "soft":
            neigh = NeuralGas(max(float(getattr(self, "gamma_", 1.0)), 1e-12)) if self._ng else None
            mu = (self._weights(dist, neigh) * mu).sum(1)
        else:
            mu = mu.gather(1, dist.argmin(1, keepdim=True)).squeeze(1)
        return 1.0 - torch.sigmoid(float(self.beta) * mu)

    # ------------------------------------------------------------------ prediction

    def decision_function(self, X: Any) -> np.ndarray:
        """Target-likeness scores ``(n,)`` in ``[0, 1]``: near 1 target, near 0 outlier; the
        decision boundary is 0.5."""
        with torch.no_grad():
            return self._scores(self._check_X(X)).clamp(0.0, 1.0).cpu().numpy()

    def score_samples(self, X: Any) -> np.ndarray:
        """The scores of :meth:`decision_function` under the name scikit-learn's outlier
        detectors use (``IsolationForest``, ``OneClassSVM``): the lower, the more abnormal.
        Unlike theirs, the boundary is 0.5, not ``offset_``."""
        return self.decision_function(X)

    def _labels(self, is_target: np.ndarray) -> np.ndarray:
        t = self._target_code
        return self.classes_[np.where(is_target, t, 1 - t)]

    def predict(self, X: Any) -> np.ndarray:
        """``target_label_`` where the score is at least 0.5, ``outlier_label_`` elsewhere."""
        return self._labels(self.decision_function(X) >= 0.5)

    def predict_proba(self, X: Any) -> np.ndarray:
        """``(n, 2)`` probabilities in ``classes_`` order: the score for the target's column,
        one minus it for the outlier's."""
        s = self.decision_function(X)
        out = np.empty((s.shape[0], 2), dtype=np.float64)
        out[:, self._target_code] = s
        out[:, 1 - self._target_code] = 1.0 - s
        return out

    def predict_with_reject(
        self, X: Any, upper: float = 0.5, lower: float | None = None, reject_label: Any = -1
    ) -> np.ndarray:
        """Predictions with a reject band: target where ``score >= upper``, outlier where
        ``score < lower``, ``reject_label`` in between (``lower`` defaults to ``upper``: no
        rejection, the same as :meth:`predict`).

        Output types follow :meth:`lvq.base.SupervisedPrototypeModel.predict_with_rejection`:
        numeric labels stay numeric with a numeric ``reject_label``, otherwise ``object``.
        """
        upper = _check_unit("upper", upper)
        lower = upper if lower is None else _check_unit("lower", lower)
        if lower > upper:
            raise ValueError(f"lower must not exceed upper, got lower={lower!r} > upper={upper!r}")
        blockops.check_is_fitted(self, "prototypes_")
        if any(_equal_mask(np.asarray(self.classes_), reject_label)):
            raise ValueError(
                f"reject_label={reject_label!r} is one of the model's labels "
                f"{_to_python(np.asarray(self.classes_))}; choose another value"
            )
        s = self.decision_function(X)
        return _with_reject(self._labels(s >= upper), (s >= lower) & (s < upper), reject_label)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy of target-versus-outlier (every non-target label counts as outlier)."""
        pred = self.decision_function(X) >= 0.5
        truth = self._encode(blockops.as_labels(y, n_samples=pred.shape[0])).numpy()
        return self._weighted_accuracy((truth == self._target_code) == pred, sample_weight)

    # ------------------------------------------------------------------ export

    def inference_module(self) -> torch.nn.Module:
        """A CPU float32 ``torch.nn.Module`` mapping ``X (n, d)`` to ``(label (n,), score (n,),
        proba (n, 2))`` -- what :meth:`predict` (as codes into ``classes_``),
        :meth:`decision_function` and :meth:`predict_proba` compute; what :meth:`export_onnx`
        writes. It holds a copy of the fitted parameters: refitting the model leaves it as is."""
        blockops.check_is_fitted(self, "prototypes_")
        return _OneClassInference(self)

    def export_onnx(
        self, path: str | Path, batch_size: int | None = None, opset_version: int = 17
    ) -> Path:
        """Export prediction to ONNX; needs ``pip install lvq[onnx]``.

        The graph takes ``X (n, d)`` float32 and returns

        * ``label``: int64 ``(n,)`` codes into ``classes_`` (as the supervised exports):
          ``classes_[label]`` is :meth:`predict`; the target's code is
          ``list(classes_).index(target_label_)`` (``label == code`` means target, anything
          else outlier -- every non-target label of ``y`` was learned as the one outlier
          class ``outlier_label_``);
        * ``score``: float32 ``(n,)``, :meth:`decision_function` (in ``[0, 1]``, target where
          ``score >= 0.5``, which is how ``label`` is decided);
        * ``proba``: float32 ``(n, 2)``, :meth:`predict_proba` (columns in ``classes_`` order).

        The graph computes in float32 where the model computes in float64, so a sample whose
        score lies within float32 rounding of 0.5 may get the other label. ``batch_size`` fixes
        the batch dimension; ``None`` keeps it dynamic. Every distance of the one-class models
        has an ONNX form; a model whose distance had none would raise ``NotImplementedError``
        naming why, as the supervised export does.
        """
        blockops.check_is_fitted(self, "prototypes_")
        obstacle = getattr(self._make_distance(), "onnx_obstacle", None)
        if obstacle is not None:
            raise NotImplementedError(
                f"{type(self).__name__} cannot be exported to ONNX: {obstacle}; predict in "
                "PyTorch (the model or its inference_module()) instead"
            )
        return export_inference_onnx(
            self, path, ("label", "score", "proba"), batch_size, opset_version
        )

    @property
    def visibility_radii(self) -> np.ndarray:
        """The learned visibility radii ``θ_k`` ``(P,)`` (on the model's distance scale)."""
        blockops.check_is_fitted(self, "thetas_")
        return self.thetas_

    # ------------------------------------------------------------------ state

    def _publish(self) -> None:
        super()._publish()
        r = self._inference_params()["radii"].detach().double()
        self.radii_ = r.cpu().numpy()
        self.thetas_ = r.pow(2).cpu().numpy()

    def _checkpoint_config(self) -> dict[str, Any]:
        gamma = getattr(self, "gamma_", None)
        return {
            **super()._checkpoint_config(),
            "target_code": int(self._target_code),
            "gamma": None if gamma is None else float(gamma),
        }

    def _restore_config(self, config: dict[str, Any]) -> None:
        if "target_code" not in config:
            raise ValueError(
                f"this checkpoint names the one-class model {config['model']} but holds no "
                "target_code; it was not written by its save()"
            )
        super()._restore_config(config)
        self._target_code = int(config["target_code"])
        self._set_label_attrs()
        if config.get("gamma") is not None:
            self.gamma_ = float(config["gamma"])


class _OneClassInference(torch.nn.Module):
    """``X -> (label codes, score, proba)`` of a fitted one-class model, in float32."""

    def __init__(self, model: OneClassPrototypeModel):
        super().__init__()
        p = model._inference_params()
        self.distance = model._make_distance()
        self.names = list(p)
        for k, v in p.items():
            self.register_buffer(f"p_{k}", v.detach().float().cpu().clone())
        self.target_code = int(model._target_code)
        # a shallow copy: the scoring settings (beta, sigma, gamma_, ...) as fitted
        self.scorer = copy.copy(model)

    def forward(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = {k: getattr(self, f"p_{k}") for k in self.names}
        eff = dict(p)
        eff.update(self.distance.effective(p))
        dist = self.distance._apply(X, p["prototypes"], eff)
        score = self.scorer._score_from_distances(dist, p["radii"].pow(2)).clamp(0.0, 1.0)
        hit = (score >= 0.5).to(torch.int64)
        label = hit if self.target_code == 1 else 1 - hit
        cols = [1.0 - score, score] if self.target_code == 1 else [score, 1.0 - score]
        return label, score, torch.stack(cols, dim=1)


# =========================================================================== families K and N


class _GLVQScore(OneClassPrototypeModel):
    _own_params = {"beta": 10.0}


class _NGParams(_NGMixin):
    """The neural-gas schedule of family D (``gamma_init`` default: ``n_prototypes / 2``)."""

    _ng = True

    def _gamma_start(self) -> float:
        if self.gamma_init is not None:
            return float(self.gamma_init)
        return max(self.n_prototypes / 2.0, 0.5, float(self.gamma_final))


@register("K", _FAST, kind="one_class")
class OCGLVQ(_GLVQScore):
    """One-class GLVQ (Staps et al. 2022): ``μ = s (d - θ_k) / (d + θ_k)`` at the nearest
    prototype, loss ``sigmoid(beta μ)``; squared Euclidean distance (or ``distance_fn``)."""


@register("K", _FAST, kind="one_class")
class OCGRLVQ(RelevanceMixin, _GLVQScore):
    """One-class GRLVQ: OC-GLVQ on the relevance distance ``sum_j λ_j (x_j - w_j)^2``
    (λ on the simplex, ``relevances_``)."""

    def _make_distance(self):
        _no_distance_fn(self)
        return Relevance()


@register("K", _FAST, kind="one_class")
class OCGMLVQ(MatrixMixin, _GLVQScore):
    """One-class GMLVQ: OC-GLVQ on ``|(x - w) Ω|^2`` with a global ``Ω (d, latent_dim)``
    (trace(Λ) = 1, ``omega_``)."""

    _own_params = {"latent_dim": None}

    def _make_distance(self):
        _no_distance_fn(self)
        return Omega(self.latent_dim)


@register("K", _FAST, kind="one_class")
class OCLGMLVQ(LocalMatrixMixin, _GLVQScore):
    """One-class localized GMLVQ: one ``Ω_k`` per prototype (``omegas_``)."""

    _own_params = {"latent_dim": None}

    def _make_distance(self):
        _no_distance_fn(self)
        return LocalOmega(self.latent_dim)


@register("K", {**_FAST, "subspace_dim": 1}, kind="one_class")
class OCGTLVQ(_GLVQScore):
    """One-class GTLVQ: the distance orthogonal to a learned ``subspace_dim``-dimensional
    subspace per prototype (``bases_``, re-orthonormalised every step)."""

    _own_params = {"subspace_dim": 2}

    def _make_distance(self):
        _no_distance_fn(self)
        return Tangent(self.subspace_dim)


@register("K", _FAST, kind="one_class")
class OCGLVQ_NG(_NGParams, OCGLVQ):
    """OC-GLVQ with neural-gas cooperation: the loss weights every prototype's
    ``sigmoid(beta μ_k)`` by ``exp(-rank_k / gamma)`` (normalised); gamma decays from
    ``gamma_init`` (default ``n_prototypes / 2``) to ``gamma_final``. Scores use the nearest
    prototype (the ``gamma -> 0`` limit)."""


@register("K", _FAST, kind="one_class")
class OCGRLVQ_NG(_NGParams, OCGRLVQ):
    """OC-GRLVQ with neural-gas cooperation (see :class:`OCGLVQ_NG`)."""


@register("K", _FAST, kind="one_class")
class OCGMLVQ_NG(_NGParams, OCGMLVQ):
    """OC-GMLVQ with neural-gas cooperation (see :class:`OCGLVQ_NG`)."""


@register("K", _FAST, kind="one_class")
class OCLGMLVQ_NG(_NGParams, OCLGMLVQ):
    """OC-LGMLVQ with neural-gas cooperation (see :class:`OCGLVQ_NG`)."""


@register("K", {**_FAST, "subspace_dim": 1}, kind="one_class")
class OCGTLVQ_NG(_NGParams, OCGTLVQ):
    """OC-GTLVQ with neural-gas cooperation (see :class:`OCGLVQ_NG`)."""


_SIGMA = {"sigma_init": "median", "sigma_min": 1e-3}
_EXP = {"latent_dim": None, "omega_hat_scale": 0.1}


@register("N", _FAST, kind="one_class")
class OCDKGLVQ(BandwidthMixin, _GLVQScore):
    """One-class differentiating-kernel GLVQ: OC-GLVQ on the Gaussian kernel distance
    ``2 (1 - exp(-|x - w_k|^2 / (2 sigma_k^2)))`` (in ``[0, 2)``) with learned bandwidths
    (``sigma_init`` 'median' | 'mean' | float over the target samples, ``>= sigma_min``);
    the radii are on the kernel scale."""

    _own_params = dict(_SIGMA)

    def _make_distance(self):
        return GaussianKernel(SquaredEuclidean(self.distance_fn), self.sigma_init, self.sigma_min)


@register("N", _FAST, kind="one_class")
class OCDKGRLVQ(RelevanceMixin, BandwidthMixin, _GLVQScore):
    """One-class DK GRLVQ: the Gaussian kernel of the relevance distance, learned bandwidths
    and relevances."""

    _own_params = dict(_SIGMA)

    def _make_distance(self):
        _no_distance_fn(self)
        return GaussianKernel(Relevance(), self.sigma_init, self.sigma_min)


@register("N", _FAST, kind="one_class")
class OCDKGMLVQ(ExpKernelMixin, _GLVQScore):
    """One-class DK GMLVQ: OC-GLVQ on the exponential-kernel distance with a learned
    ``Ω̂ (d, latent_dim)`` starting at ``omega_hat_scale`` times the identity."""

    _own_params = dict(_EXP)

    def _make_distance(self):
        _no_distance_fn(self)
        return ExponentialKernel(self.latent_dim, self.omega_hat_scale)


@register("N", _FAST, kind="one_class")
class OCDKGLVQ_NG(_NGParams, OCDKGLVQ):
    """OC-DKGLVQ with neural-gas cooperation (see :class:`OCGLVQ_NG`)."""


@register("N", _FAST, kind="one_class")
class OCDKGRLVQ_NG(_NGParams, OCDKGRLVQ):
    """OC-DKGRLVQ with neural-gas cooperation (see :class:`OCGLVQ_NG`)."""


@register("N", _FAST, kind="one_class")
class OCDKGMLVQ_NG(_NGParams, OCDKGMLVQ):
    """OC-DKGMLVQ with neural-gas cooperation (see :class:`OCGLVQ_NG`)."""


# =========================================================================== family L


class _SoftScore(OneClassPrototypeModel):
    _own_params = {"sigma": 1.0, "beta": 10.0}
    _scoring = "soft"


@register("L", _FAST, kind="one_class")
class OCRSLVQ(_SoftScore):
    """One-class robust soft LVQ: the per-prototype ``sigmoid(beta μ_k)`` weighted by the
    Gaussian responsibilities ``softmax(-d_k / (2 sigma^2))``; score
    ``1 - sigmoid(beta Σ_k p(k|x) μ_k)``."""


@register("L", _FAST, kind="one_class")
class OCMRSLVQ(MatrixMixin, _SoftScore):
    """One-class matrix RSLVQ: OC-RSLVQ with a global ``Ω`` metric (trace(Λ) = 1)."""

    _own_params = {"latent_dim": None}

    def _make_distance(self):
        _no_distance_fn(self)
        return Omega(self.latent_dim)


@register("L", _FAST, kind="one_class")
class OCLMRSLVQ(LocalMatrixMixin, _SoftScore):
    """One-class localized matrix RSLVQ: OC-RSLVQ with one ``Ω_k`` per prototype."""

    _own_params = {"latent_dim": None}

    def _make_distance(self):
        _no_distance_fn(self)
        return LocalOmega(self.latent_dim)


@register("L", _FAST, kind="one_class")
class OCRSLVQ_NG(_NGParams, OCRSLVQ):
    """OC-RSLVQ with neural-gas cooperation: the Gaussian responsibilities are multiplied by
    the rank weights ``exp(-rank / gamma)`` and renormalised, in training and (with the final
    ``gamma_``) in scoring."""


@register("L", _FAST, kind="one_class")
class OCMRSLVQ_NG(_NGParams, OCMRSLVQ):
    """OC-MRSLVQ with neural-gas cooperation (see :class:`OCRSLVQ_NG`)."""


@register("L", _FAST, kind="one_class")
class OCLMRSLVQ_NG(_NGParams, OCLMRSLVQ):
    """OC-LMRSLVQ with neural-gas cooperation (see :class:`OCRSLVQ_NG`)."""


def _check_unit(name: str, value: Any) -> float:
    if not is_number(value) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)
