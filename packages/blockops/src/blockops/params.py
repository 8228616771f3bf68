"""scikit-learn's parameter contract (get_params/set_params/clone) without importing it."""

from __future__ import annotations

import copy
import inspect
from typing import Any, TypeVar

import numpy as np
import torch

T = TypeVar("T", bound="ParamsMixin")


class ParamsMixin:
    """Parameters are the keyword arguments of ``__init__``, stored unchanged as attributes."""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        names = []
        for p in sig.parameters.values():
            if p.name == "self":
                continue
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(f"{cls.__name__}.__init__ must not take *args or **kwargs")
            names.append(p.name)
        return sorted(names)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters of this estimator (and, with ``deep``, of nested estimators as ``a__b``)."""
        out: dict[str, Any] = {}
        for name in self._param_names():
            value = getattr(self, name)
            out[name] = value
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                for k, v in value.get_params(deep=True).items():
                    out[f"{name}__{k}"] = v
        return out

    def set_params(self: T, **params: Any) -> T:
        """Set parameters (``a__b`` reaches nested estimators); returns ``self``."""
        valid = self._param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            head, sep, tail = key.partition("__")
            if head not in valid:
                raise ValueError(
                    f"Invalid parameter {head!r} for {type(self).__name__}; valid: {valid}"
                )
            if sep:
                nested.setdefault(head, {})[tail] = value
            else:
                setattr(self, head, value)
        for head, sub in nested.items():
            getattr(self, head).set_params(**sub)
        return self

    def __repr__(self) -> str:
        defaults = {
            p.name: p.default
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.default is not inspect.Parameter.empty
        }
        shown = []
        for name, value in self.get_params(deep=False).items():
            default = defaults.get(name, inspect.Parameter.empty)
            try:
                same = bool(value == default) if not isinstance(value, np.ndarray) else False
            except Exception:
                same = False
            if not same:
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


def clone(estimator: Any) -> Any:
    """A new unfitted estimator with the same parameters (deep-copied)."""
    if isinstance(estimator, (list, tuple, set, frozenset)):
        return type(estimator)(clone(e) for e in estimator)
    if not hasattr(estimator, "get_params") or isinstance(estimator, type):
        return copy.deepcopy(estimator)
    params = estimator.get_params(deep=False)
    return type(estimator)(**{k: clone(v) for k, v in params.items()})


class ClassifierMixin:
    """``score`` (accuracy) and the tags scikit-learn reads to treat the object as a classifier."""

    _estimator_type = "classifier"

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy of ``predict(X)`` against ``y`` (optionally weighted)."""
        from .validation import as_labels

        pred = np.asarray(self.predict(X))  # type: ignore[attr-defined]
        truth = as_labels(y, name="y", n_samples=pred.shape[0])
        return self._weighted_accuracy(pred == truth, sample_weight)

    @staticmethod
    def _weighted_accuracy(hits: np.ndarray, sample_weight: Any = None) -> float:
        """The mean of the boolean ``hits (n,)``, weighted by ``sample_weight (n,)`` if given
        (for subclasses whose hits are not ``predict == y``)."""
        hits = np.asarray(hits, dtype=np.float64)
        if sample_weight is None:
            return float(hits.mean())
        if isinstance(sample_weight, torch.Tensor):  # a CUDA tensor has no numpy view
            sample_weight = sample_weight.detach().cpu().numpy()
        try:
            w = np.asarray(sample_weight, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"sample_weight must hold numbers: {exc}") from exc
        if w.shape != hits.shape:
            raise ValueError(f"sample_weight must have shape {hits.shape}, got {w.shape}")
        if not np.isfinite(w).all():
            raise ValueError("sample_weight contains NaN or infinite values")
        if w.sum() == 0:
            raise ValueError("sample_weight sums to 0; at least one non-zero weight is required")
        return float((hits * w).sum() / w.sum())

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier",
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags(),
            input_tags=InputTags(),
        )
