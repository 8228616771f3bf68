"""The estimator framework: parameters, the training loop (written once), prediction, rejection,
persistence, quantization and export shared by every prototype model.

A model is a composition declared in a few lines::

    class GMLVQ(SupervisedPrototypeModel):
        _own_params = {"latent_dim": None, "beta": 10.0}

        def _make_distance(self):
            return Omega(self.latent_dim)

        def _make_loss(self, n_classes):
            return GLVQLoss(self.transfer_fn, self.beta, self.margin)

The constructor is generated from the shared training options plus ``_own_params`` (keyword-only,
stored unchanged), so ``get_params``/``set_params``/``clone`` of scikit-learn work and a changed
parameter changes the next ``fit``: nothing is built before ``fit``.
"""

from __future__ import annotations

import copy
import inspect
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import blockops
import numpy as np
import torch

from .__about__ import __version__
from ._checks import (
    check_callbacks,
    check_int,
    check_number,
    is_number,
    load_platform,
    resolve_load_device,
    seeded_generator,
)
from .distances import Distance, SquaredEuclidean
from .initializers import resolve_initializer
from .losses import GLVQLoss, Loss, identity
from .neighbourhood import Nearest, Neighbourhood
from .optim import EMA, Lookahead, make_optimizer, make_schedule

#: Training options shared by every gradient-trained model, with their defaults (the spec's names).
BASE_PARAMS: dict[str, Any] = {
    "n_prototypes_per_class": 1,
    "max_iter": 100,
    "lr": 0.01,
    "epsilon": 1e-6,
    "random_seed": 42,
    "distance_fn": None,
    "optimizer": "adam",
    "transfer_fn": None,
    "margin": 0.0,
    "callbacks": None,
    "batch_size": None,
    "lr_scheduler": None,
    "lr_scheduler_kwargs": None,
    "prototypes_initializer": None,
    "patience": None,
    "restore_best": False,
    "class_weight": None,
    "gradient_accumulation_steps": None,
    "ema_decay": None,
    "freeze_params": None,
    "lookahead": None,
    "mixed_precision": None,
    "device": "auto",
    "verbose": False,
}

# Dynamic float16 loss scaling: start high, halve on an overflowing step (which is skipped),
# double again after this many finite updates in a row.
_FLOAT16_LOSS_SCALE = 2.0**15
_LOSS_SCALE_GROWTH_INTERVAL = 2000


def _make_init(defaults: dict[str, Any]) -> Callable[..., None]:
    names = list(defaults)

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unexpected parameter(s) {unknown}; valid: {sorted(names)}"
            )
        for name in names:
            setattr(self, name, params.get(name, defaults[name]))

    kw = inspect.Parameter.KEYWORD_ONLY
    __init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(n, kw, default=defaults[n]) for n in names]
    )
    return __init__


class Callback:
    """Training hooks. ``on_iteration_end`` returning ``True`` stops training.

    ``info`` holds ``iteration`` (1-based epoch), ``loss``, ``val_loss`` (or ``None``), ``lr``
    and ``params`` (detached current tensors by group name, e.g. ``params["prototypes"]``).
    """

    def on_fit_start(self, model: Any) -> None:
        """Called once before the first epoch."""

    def on_iteration_end(self, model: Any, info: dict[str, Any]) -> bool | None:
        """Called after every epoch; return ``True`` to stop."""
        return None

    def on_fit_end(self, model: Any) -> None:
        """Called once after training (parameters final)."""


_Model = TypeVar("_Model", bound="PrototypeModel")


class PrototypeModel(blockops.ParamsMixin):
    """Base of every model: generated constructor, device, persistence, registry hooks."""

    _base_params: dict[str, Any] = BASE_PARAMS
    _own_params: dict[str, Any] = {}
    _all_params: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        merged: dict[str, Any] = dict(cls._base_params)
        for klass in reversed(cls.__mro__):
            merged.update(klass.__dict__.get("_own_params", {}))
        cls._all_params = merged
        if "__init__" not in cls.__dict__:
            cls.__init__ = _make_init(merged)  # type: ignore[method-assign]

    # ------------------------------------------------------------------ persistence

    def _config_params(self) -> dict[str, Any]:
        """Parameters as YAML-safe values; callables that affect prediction refuse to save."""
        out: dict[str, Any] = {}
        for name, value in self.get_params(deep=False).items():
            value = _plain(value)
            if _yaml_safe(value):
                out[name] = value
            elif name in self._prediction_params():
                raise ValueError(
                    f"cannot save {type(self).__name__}: parameter {name}={value!r} is not "
                    "serialisable and is needed for prediction; use a named option instead (a "
                    "string such as manifold='spd:3', distance_fn='squared_euclidean')"
                )
            else:
                warnings.warn(
                    f"{type(self).__name__}.save: parameter {name} ({type(value).__name__}) is not "
                    "serialisable and is stored as None (it only matters for training)",
                    stacklevel=3,
                )
                out[name] = None
        return out

    def _prediction_params(self) -> set[str]:
        return {"distance_fn"}

    # ------------------------------------------------------------------ quantization

    _quantized: str | None = None
    _qscales: dict[str, torch.Tensor] = {}

    def _quantizable(self) -> dict[str, torch.Tensor]:
        """The tensors :meth:`quantize` stores at low precision (as stored now)."""
        raise NotImplementedError

    def _store_quantized(
        self, tensors: dict[str, torch.Tensor], scales: dict[str, torch.Tensor], dtype: str | None
    ) -> None:
        """Keep ``tensors`` (``dtype``, with the int8 ``scales``; ``None``: float32) as the
        model's learned tensors."""
        raise NotImplementedError

    def _dequantized(self) -> dict[str, torch.Tensor]:
        """float32 values of the quantized tensors (what prediction uses)."""
        return dequantize_tensors(self._quantizable(), self._qscales)

    def quantize(self: _Model, dtype: str = "int8") -> _Model:
        """A copy for inference with parameters stored as ``float16``, ``bfloat16`` or ``int8``.

        ``int8`` uses one symmetric scale per tensor. Predictions use the float32 values of the
        stored ones (the classifiers dequantize on the fly, the unsupervised models once);
        training a quantized model raises (call :meth:`dequantize`).
        """
        blockops.check_is_fitted(self, "prototypes_")
        if dtype not in QUANTIZE_DTYPES:
            raise ValueError(f"dtype must be 'float16', 'bfloat16' or 'int8', got {dtype!r}")
        if self._quantized is not None:
            raise ValueError(f"this model is already quantized ({self._quantized})")
        model = copy.copy(self)
        model._store_quantized(*quantize_tensors(self._quantizable(), dtype), dtype)
        model._publish()
        return model

    def dequantize(self: _Model) -> _Model:
        """A float32 copy of a quantized model (values as quantized)."""
        if self._quantized is None:
            return self
        model = copy.copy(self)
        model._store_quantized({k: v.clone() for k, v in self._dequantized().items()}, {}, None)
        model._publish()
        return model


#: the storage types :meth:`PrototypeModel.quantize` offers
QUANTIZE_DTYPES = ("float16", "bfloat16", "int8")


def quantize_tensors(
    tensors: dict[str, torch.Tensor], dtype: str
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``tensors`` stored as ``dtype`` and the int8 scales (one symmetric scale per tensor)."""
    out, scales = {}, {}
    for k, v in tensors.items():
        v = v.detach()
        if dtype == "int8":
            s = v.abs().max().clamp_min(1e-30) / 127.0
            out[k] = torch.round(v / s).clamp(-127, 127).to(torch.int8)
            scales[k] = s.float()
        else:
            out[k] = v.to(getattr(torch, dtype))
    return out, scales


def dequantize_tensors(
    tensors: dict[str, torch.Tensor], scales: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """float32 values of :func:`quantize_tensors`' output (``scales`` empty for float16 / bf16)."""
    return {k: v.float() * scales[k] if k in scales else v.float() for k, v in tensors.items()}


def _data_conversion_warning() -> type[Warning]:
    """scikit-learn's DataConversionWarning when it is loaded (no import otherwise)."""
    import sys

    exc = sys.modules.get("sklearn.exceptions")
    return getattr(exc, "DataConversionWarning", UserWarning)


def _reject_sparse_and_1d(X: Any) -> None:
    if type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(
            "A sparse matrix was passed, but dense data is required: sparse input is not "
            "supported by lvq; use X.toarray()"
        )
    if isinstance(X, (np.ndarray, torch.Tensor)) and X.ndim == 1:
        raise ValueError(
            f"Expected 2D array, got 1D array instead of shape {tuple(X.shape)}. Reshape your "
            "data either using X.reshape(-1, 1) if it has a single feature or "
            "X.reshape(1, -1) if it contains a single sample."
        )


def _check_magnitude(Xt: torch.Tensor, scale: float = 0.0) -> None:
    """Refuse ``X`` whose squared distances (to each other, or to prototypes of magnitude
    ``scale``) can overflow its dtype: they would turn into ``inf`` / NaN."""
    if not Xt.is_floating_point() or Xt.numel() == 0:
        return
    a = max(float(Xt.detach().abs().max()), scale)
    if (2.0 * a) ** 2 * Xt.shape[1] > torch.finfo(Xt.dtype).max:
        raise ValueError(
            f"X has values of magnitude up to {a:.3g}: the squared distances over its "
            f"{Xt.shape[1]} features overflow {Xt.dtype}; rescale X (e.g. standardise it)"
        )


def _plain(value: Any) -> Any:
    """numpy scalars (also as dict keys / list items) to Python ones and a ``torch.device`` to
    its name (``"cuda:1"``), so YAML can store them."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _yaml_safe(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return isinstance(value, list) and all(_yaml_safe(v) for v in value)
    if isinstance(value, dict):
        return all(
            isinstance(k, (str, int, float, bool)) and _yaml_safe(v) for k, v in value.items()
        )
    return False


def _same_label(a: Any, b: Any) -> bool:
    """``a == b`` for two labels (any hashable values); False where they do not compare."""
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _to_python(values: np.ndarray) -> list[Any]:
    return [v.item() if isinstance(v, np.generic) else v for v in values.tolist()]


class SupervisedPrototypeModel(blockops.ClassifierMixin, PrototypeModel):
    """Prototype classifier: a distance x a loss x a neighbourhood, trained by one loop.

    Subclasses implement :meth:`_make_distance` and :meth:`_make_loss` (and optionally
    :meth:`_make_neighbourhood`, :meth:`_group_lr`). Everything else (options, initialisation,
    training, prediction, rejection, save/load, quantization, ONNX export) is shared.
    """

    #: initializer used when the model has no ``prototypes_initializer`` parameter
    _default_initializer: Any = None
    #: other names ``freeze_params`` accepts for a parameter group (``{"components": ...}``)
    _group_aliases: dict[str, str] = {}
    #: the shared loss-shaping options (``transfer_fn``, ``margin``) this model's loss applies;
    #: a model whose loss has no transfer function or no margin refuses the option when it is
    #: set, instead of training exactly as without it
    _loss_options: frozenset[str] = frozenset({"transfer_fn", "margin"})

    # ------------------------------------------------------------------ composition hooks

    def _make_distance(self) -> Distance:
        return SquaredEuclidean(getattr(self, "distance_fn", None))

    def _make_loss(self, n_classes: int) -> Loss:
        raise NotImplementedError

    def _make_neighbourhood(self) -> Neighbourhood:
        return Nearest()

    def _group_lr(self, name: str) -> float:
        """Learning rate of a parameter group (``lr`` unless a model says otherwise)."""
        return float(self.lr)

    def _extra_params(self, X: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> dict:
        """Additional learnable groups a model owns (besides prototypes and the distance's)."""
        return {}

    # ------------------------------------------------------------------ validation

    def _validate_params(self) -> None:
        check_int("max_iter", self.max_iter)
        check_int("batch_size", self.batch_size, allow_none=True)
        check_int("patience", self.patience, allow_none=True)
        check_int("gradient_accumulation_steps", self.gradient_accumulation_steps, allow_none=True)
        if not is_number(self.lr) or not self.lr > 0:
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not is_number(self.epsilon) or not self.epsilon >= 0:
            raise ValueError(f"epsilon must be a non-negative number, got {self.epsilon!r}")
        if self.mixed_precision not in (None, "float16", "bfloat16"):
            raise ValueError(
                f"mixed_precision must be None, 'float16' or 'bfloat16', got {self.mixed_precision!r}"
            )
        check_callbacks(self.callbacks)
        fz = getattr(self, "freeze_params", None)
        if fz is not None and not (
            isinstance(fz, (list, tuple)) and all(isinstance(g, str) for g in fz)
        ):
            raise TypeError(f"freeze_params must be a list of group names, got {fz!r}")
        self._check_loss_options()

    def _check_loss_options(self) -> None:
        """Refuse ``transfer_fn`` / ``margin`` where the loss has no use for them."""
        what = {"transfer_fn": "transfer function", "margin": "margin"}
        for name, unset in (("transfer_fn", None), ("margin", 0.0)):
            if name in self._loss_options or name not in self._all_params:
                continue
            value = getattr(self, name)
            if value is None if unset is None else (is_number(value) and float(value) == 0.0):
                continue
            raise ValueError(
                f"{type(self).__name__}'s loss has no {what[name]}: {name}={value!r} would be "
                f"ignored; leave {name}={unset!r} (the GLVQ-type models apply it)"
            )

    def _counts(self, n_classes: int) -> list[int]:
        spec = getattr(self, "n_prototypes_per_class", 1)
        if isinstance(spec, dict):
            counts = []
            for c in self.classes_.tolist():
                if c not in spec:
                    raise ValueError(
                        f"n_prototypes_per_class dict has no entry for class {c!r}; keys: {list(spec)}"
                    )
                counts.append(spec[c])
        elif isinstance(spec, (list, tuple)):
            if len(spec) != n_classes:
                raise ValueError(
                    f"n_prototypes_per_class has {len(spec)} entries but there are {n_classes} classes"
                )
            counts = list(spec)
        else:
            counts = [spec] * n_classes
        for k in counts:
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
                raise ValueError(
                    f"n_prototypes_per_class entries must be positive ints, got {spec!r}"
                )
        return [int(k) for k in counts]

    def _sample_weights(
        self, y: torch.Tensor, sample_weight: Any, n_classes: int, counts: Any = None
    ) -> torch.Tensor | None:
        """Per-sample loss weights (``sample_weight`` x ``class_weight``); ``None`` if uniform.

        ``counts`` ``(n_classes,)``: the class counts ``class_weight='balanced'`` uses (by
        default those of ``y``; ``partial_fit`` passes the counts of every label seen so far).
        """
        n = y.shape[0]
        if sample_weight is None and getattr(self, "class_weight", None) is None:
            return None
        w = torch.ones(n, dtype=torch.float32, device=y.device)
        if sample_weight is not None:
            sw = blockops.as_tensor(sample_weight, name="sample_weight", ndim=1, device=y.device)
            if sw.shape[0] != n:
                raise ValueError(f"sample_weight has {sw.shape[0]} entries but X has {n} rows")
            if bool((sw < 0).any()):
                raise ValueError("sample_weight must be non-negative")
            if not float(sw.sum()) > 0:
                raise ValueError("sample_weight: all weights are zero; at least one must be > 0")
            w = w * sw
        cw = getattr(self, "class_weight", None)
        if cw is not None:
            if cw == "balanced":
                if counts is None:
                    counts = torch.bincount(y, minlength=n_classes)
                counts = torch.as_tensor(counts).float()
                table = counts.sum() / (n_classes * counts.clamp_min(1))
            elif isinstance(cw, dict):
                table = torch.ones(n_classes)
                for label, weight in cw.items():
                    code = int(self._encoder.transform([label], name="class_weight key")[0])
                    table[code] = check_number(f"class_weight[{label!r}]", weight, 0.0, False)
            else:
                raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {cw!r}")
            w = w * table.to(w.device)[y]
            if not float(w.sum()) > 0:
                raise ValueError(
                    f"class_weight={cw!r} (times sample_weight) leaves every training sample "
                    "with weight 0; at least one sample needs a weight > 0"
                )
        return w

    # ------------------------------------------------------------------ fit

    def fit(
        self,
        X: Any,
        y: Any,
        initial_prototypes: Any = None,
        initial_labels: Any = None,
        validation_data: tuple[Any, Any] | None = None,
        sample_weight: Any = None,
        resume: bool = False,
    ) -> SupervisedPrototypeModel:
        """Fit the model; returns ``self``.

        Args:
            X: training data ``(n, d)``. y: labels ``(n,)`` of any hashable type.
            initial_prototypes: ``(P, d)`` starting prototypes (warm start).
            initial_labels: their labels ``(P,)``; needed when ``P`` differs from the layout of
                ``n_prototypes_per_class``.
            validation_data: ``(X_val, y_val)`` monitored each epoch (``val_loss_history_``);
                drives ``patience`` and ``restore_best`` when given.
            sample_weight: ``(n,)`` non-negative weights in the loss.
            resume: continue from the fitted parameters (raw, unnormalised) with a fresh optimizer.
        """
        self._validate_params()
        if initial_labels is not None and initial_prototypes is None:
            raise ValueError(
                "initial_labels labels initial_prototypes, which were not given; pass both "
                "(or neither)"
            )
        device = blockops.resolve_device(self.device, name="device")
        Xt, y_arr = self._check_X_y(X, y, device)
        if resume:
            blockops.check_is_fitted(self, "prototypes_")
            if initial_prototypes is not None:
                raise ValueError("resume=True cannot be combined with initial_prototypes")
            if self._quantized is not None:
                raise ValueError("this model is quantized; call dequantize() before training")
            self._check_resume_counts()
            codes = self._encode(y_arr).to(device)
            params = {
                k: v.detach().to(device).clone(memory_format=torch.contiguous_format)
                for k, v in self._params.items()
            }
            self._plabels = self._plabels.to(device)
            self._check_features(Xt)
        else:
            self._encoder = blockops.LabelEncoder().fit(y_arr)
            self.classes_ = self._encoder.classes_
            self.n_classes_ = len(self.classes_)
            if self.n_classes_ < 2:
                raise ValueError(
                    f"{type(self).__name__} needs at least 2 classes in y, got "
                    f"{self.n_classes_} class"
                )
            self.n_features_in_ = Xt.shape[1]
            codes = self._encode(y_arr).to(device)
            params = self._init_params(Xt, codes, initial_prototypes, initial_labels)
        self._device = device
        self._quantized = None
        weights = self._sample_weights(codes, sample_weight, self.n_classes_)
        val = self._prepare_validation(validation_data, device)
        self._optimizer_state = None
        self._seen_counts = None  # a later partial_fit counts labels from its own first call
        self._train(params, Xt, codes, weights, val, int(self.max_iter), fresh=True)
        return self

    def _check_resume_counts(self) -> None:
        """Refuse ``resume=True`` once ``set_params`` changed the prototype layout."""
        before = getattr(self, "_init_counts", None)
        now = self._counts(self.n_classes_)
        if before is None or list(now) == list(before):
            return
        name = "n_components" if getattr(self, "n_components", None) else "n_prototypes_per_class"
        asked = f" ({name}={getattr(self, name)!r})" if name in self._all_params else ""
        raise ValueError(
            f"resume=True continues the {int(self._plabels.shape[0])} fitted prototypes of "
            f"{type(self).__name__} (per class {list(before)}), but its parameters now ask for "
            f"{sum(now)} (per class {list(now)}){asked}; refit without resume"
        )

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> SupervisedPrototypeModel:
        """One epoch on ``(X, y)`` keeping the optimizer state (initialises on the first call).

        ``classes`` (scikit-learn's convention) lists every label on the first call; the
        first batch must contain every class all the same (the prototypes are placed from its
        samples; a missing class is an error naming it). A learning-rate schedule (and a neural-gas
        ``gamma`` schedule) spans ``max_iter`` calls, then stays at its final value; the
        mini-batch shuffle goes on from call to call as from epoch to epoch in ``fit``.
        ``class_weight='balanced'`` weighs by the class counts of every call so far (since the
        first call, or the first after ``fit`` or ``load``), not of this batch alone.
        ``ema_decay`` and ``restore_best`` act over the calls as over the epochs of ``fit``:
        the fitted parameters are the moving average, or the parameters of the call with the
        lowest loss so far, while training goes on from the last iterate. An ``optimizer``,
        ``freeze_params``, ``ema_decay`` or ``lookahead`` changed by ``set_params`` between
        calls starts afresh from the current iterate.
        """
        if not hasattr(self, "prototypes_"):
            self._validate_params()
            device = blockops.resolve_device(self.device, name="device")
            Xt, y_arr = self._check_X_y(X, y, device)
            self._encoder = blockops.LabelEncoder().fit(y_arr if classes is None else classes)
            self.classes_ = self._encoder.classes_
            self.n_classes_ = len(self.classes_)
            if self.n_classes_ < 2:
                raise ValueError("the first partial_fit call must see at least 2 classes")
            codes = self._encode(y_arr).to(device)
            missing = sorted(set(range(self.n_classes_)) - set(codes.unique().tolist()))
            if missing:
                names = _to_python(np.asarray(self.classes_)[missing])
                raise ValueError(
                    "the first partial_fit call must hold samples of every class (the "
                    f"prototypes are placed from them); classes {names} have none in y"
                )
            self.n_features_in_ = Xt.shape[1]
            params = self._init_params(Xt, codes, None, None)
            self._device = device
            self._quantized = None
            self._optimizer_state = None
            fresh = True
        else:
            if self._quantized is not None:
                raise ValueError("this model is quantized; call dequantize() before training")
            self._validate_params()
            if classes is not None and not np.array_equal(
                np.unique(np.asarray(classes)), np.asarray(self.classes_)
            ):
                raise ValueError(
                    f"classes={_to_python(np.unique(np.asarray(classes)))} differs from the "
                    f"fitted classes_ {_to_python(np.asarray(self.classes_))}; pass the same "
                    "classes or none after the first call"
                )
            device = self._device
            Xt, y_arr = self._check_X_y(X, y, device)
            self._check_features(Xt)
            codes = self._encode(y_arr).to(device)
            state = self._optimizer_state
            fresh = state is None
            # with ema_decay / restore_best the fitted parameters are not the training iterate
            params = self._params if fresh else state.get("iterate", self._params)
        seen = torch.bincount(codes, minlength=self.n_classes_).cpu()
        if not fresh and getattr(self, "_seen_counts", None) is not None:
            seen = seen + self._seen_counts
        self._seen_counts = seen  # class_weight='balanced' weighs by all labels seen so far
        weights = self._sample_weights(codes, sample_weight, self.n_classes_, counts=seen)
        self._train(
            params, Xt, codes, weights, None, 1, fresh=fresh, keep_history=not fresh, partial=True
        )
        return self

    def _check_X_y(self, X, y, device):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        _reject_sparse_and_1d(X)
        if isinstance(y, (np.ndarray, list)) and np.ndim(y) == 2 and np.shape(y)[1] == 1:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected; it is used as (n,)",
                _data_conversion_warning(),
                stacklevel=3,
            )
        Xt, y_arr = blockops.check_X_y(X, y, device=device)
        if y_arr.dtype.kind == "f" and not np.all(np.mod(y_arr, 1) == 0):
            raise ValueError(
                "Unknown label type: continuous. lvq models are classifiers; y must hold "
                "class labels (ints, strings), not continuous values"
            )
        _check_magnitude(Xt)
        return Xt, y_arr

    def _encode(self, y: Any, name: str = "y") -> torch.Tensor:
        """Labels to class codes; vectorised (``searchsorted``) for numeric labels."""
        classes = np.asarray(self.classes_)
        arr = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
        if arr.ndim == 1 and classes.dtype.kind in "iub" and arr.dtype.kind in "iub":
            idx = np.clip(np.searchsorted(classes, arr), 0, len(classes) - 1)
            if np.array_equal(classes[idx], arr):
                return torch.from_numpy(idx.astype(np.int64))
        return self._encoder.transform(y, name=name)

    def _check_features(self, Xt: torch.Tensor) -> None:
        if Xt.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {Xt.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )

    def _prepare_validation(self, validation_data, device):
        if validation_data is None:
            return None
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a tuple (X_val, y_val)")
        try:  # the checks name X and y: say that they are the validation pair
            Xv, yv = blockops.check_X_y(validation_data[0], validation_data[1], device=device)
        except ValueError as exc:
            raise ValueError(f"validation_data: {exc}") from None
        if Xv.shape[1] != self.n_features_in_:
            raise ValueError(
                f"validation_data: X_val has {Xv.shape[1]} features but the training X has "
                f"{self.n_features_in_}"
            )
        cv = self._encode(yv, name="validation y").to(device)
        return Xv, cv

    def _init_params(self, X, codes, initial_prototypes, initial_labels) -> dict[str, torch.Tensor]:
        gen = seeded_generator("random_seed", self.random_seed)
        counts = self._counts(self.n_classes_)
        self._init_counts = counts  # the layout asked for, checked by fit(resume=True)
        if initial_prototypes is not None:
            W = blockops.as_tensor(initial_prototypes, name="initial_prototypes", device=X.device)
            if W.shape[1] != X.shape[1]:
                raise ValueError(
                    f"initial_prototypes has {W.shape[1]} features but X has {X.shape[1]}"
                )
            if initial_labels is not None:
                labels = self._encoder.transform(initial_labels, name="initial_labels").to(X.device)
                if labels.shape[0] != W.shape[0]:
                    raise ValueError(
                        f"initial_labels has {labels.shape[0]} entries for {W.shape[0]} prototypes"
                    )
            else:
                if W.shape[0] != sum(counts):
                    raise ValueError(
                        f"initial_prototypes has {W.shape[0]} rows but n_prototypes_per_class asks "
                        f"for {sum(counts)}; pass initial_labels"
                    )
                labels = torch.repeat_interleave(
                    torch.arange(len(counts)), torch.tensor(counts)
                ).to(X.device)
            if bool((torch.bincount(labels, minlength=self.n_classes_) == 0).any()):
                raise ValueError("initial_labels must give every class at least one prototype")
        else:
            init, kwargs = resolve_initializer(
                getattr(self, "prototypes_initializer", self._default_initializer)
            )
            W, labels = init(X, codes, counts, gen, **kwargs)
            W = blockops.as_tensor(W, name="initialised prototypes", device=X.device)
            labels = torch.as_tensor(labels, device=X.device).long()
            if W.shape != (labels.shape[0], X.shape[1]):
                raise ValueError(
                    f"the prototypes initializer returned shapes {tuple(W.shape)} and "
                    f"{tuple(labels.shape)}; expected (P, {X.shape[1]}) and (P,)"
                )
        self._plabels = labels
        distance = self._make_distance()
        distance.check(X.shape[1], W.shape[0])
        params = {"prototypes": W.clone()}
        params.update(distance.init_params(X, codes, W, labels, gen))
        params.update(self._extra_params(X, codes, gen))
        # the layout a loaded model gets: a transposed view would round differently after load
        return {k: v.contiguous() for k, v in params.items()}

    # ------------------------------------------------------------------ the training loop

    def _forward_losses(self, params, Xb, yb, components) -> torch.Tensor:
        distance, loss, neigh = components
        dist = distance(Xb, params["prototypes"], params)
        return loss(dist.float(), yb, self._plabels, neigh)

    def _closed_form_loss(self, params, Xb, yb, wb, components) -> tuple[torch.Tensor, dict]:
        """``(batch loss, {group: gradient})`` without autograd: what ``_forward_losses``
        computes, weighted and averaged, and its gradient (see ``Distance.closed_form``)."""
        distance, loss, neigh = components
        dist, vjp = distance.closed_form(Xb, params["prototypes"], params)
        value, G = loss.closed_form(dist, yb, self._plabels, neigh, wb)
        return value, vjp(G)

    #: model-owned parameter groups its ``_closed_form_loss`` differentiates
    _closed_form_groups: frozenset[str] = frozenset()

    def _has_closed_form(self, params, components) -> bool:
        distance, loss, neigh = components
        owner = next(c for c in type(self).__mro__ if "_forward_losses" in vars(c))
        return (
            "_closed_form_loss" in vars(owner)  # a model that changes the loss gives its own
            and distance.has_closed_form
            and loss.has_closed_form(neigh)
            and set(params) == {"prototypes", *distance.groups, *self._closed_form_groups}
        )

    def _warn_unused_beta(self, loss_fn: Loss) -> None:
        """Warn when a non-default ``beta`` meets the identity transfer, which ignores it."""
        default = self._all_params.get("beta")
        beta = getattr(self, "beta", default)
        if (
            isinstance(loss_fn, GLVQLoss)
            and loss_fn.transfer is identity
            and default is not None
            and beta != default
        ):
            warnings.warn(
                f"beta={beta!r} has no effect with transfer_fn={self.transfer_fn!r} (the "
                "identity); set transfer_fn='sigmoid_beta' or 'swish_beta' to use it",
                UserWarning,
                stacklevel=4,
            )

    def _train(
        self, params, X, y, w, val, epochs, fresh=True, keep_history=False, partial=False
    ) -> None:
        final = not partial
        distance = self._make_distance()
        loss_fn = self._make_loss(self.n_classes_)
        if fresh:
            self._warn_unused_beta(loss_fn)
        neigh = self._make_neighbourhood()
        components = (distance, loss_fn, neigh)
        frozen = {self._group_aliases.get(g, g) for g in self.freeze_params or []}
        unknown = frozen - set(params)
        if unknown:
            raise ValueError(
                f"freeze_params names unknown group(s) {sorted(unknown)}; groups: {sorted(params)}"
            )
        n = X.shape[0]
        bs = min(int(self.batch_size or n), n)
        steps_per_epoch = math.ceil(n / bs)
        accum = int(self.gradient_accumulation_steps or 1)
        cbs = list(self.callbacks or [])

        def build_optimizer() -> Any:
            for name, t in params.items():
                t.requires_grad_(name not in frozen)
            groups = [
                {"params": [t], "lr": self._group_lr(name), "name": name}
                for name, t in params.items()
                if name not in frozen
            ]
            if not groups:
                raise ValueError("freeze_params froze every parameter group; nothing to train")
            opt = make_optimizer(self.optimizer, groups, float(self.lr))
            if isinstance(opt, torch.optim.LBFGS) and (accum > 1 or self.mixed_precision):
                raise ValueError(
                    "optimizer 'lbfgs' does not combine with gradient_accumulation_steps or "
                    "mixed_precision"
                )
            return opt

        state = self._optimizer_state
        built_with = {
            "optimizer": self.optimizer,
            "ema_decay": self.ema_decay,
            "lookahead": self.lookahead,
            "frozen": sorted(frozen),
        }
        if fresh or state is None:
            opt = build_optimizer()
            # partial_fit trains one epoch a call: its schedules span max_iter calls
            horizon = int(self.max_iter) if partial else epochs
            total = math.ceil(horizon * steps_per_epoch / accum)
            state = {
                "opt": opt,
                "base_lrs": [g["lr"] for g in opt.param_groups],
                "schedule": make_schedule(
                    self.lr_scheduler, float(self.lr), total, self.lr_scheduler_kwargs
                ),
                "ema": EMA(params, self.ema_decay) if self.ema_decay is not None else None,
                "lookahead": (
                    None
                    if self.lookahead is None or self.lookahead is False
                    else Lookahead(params, self.lookahead)
                ),
                "updates": 0,
                "micro": 0,
                "total": total,
                "loss_scale": _FLOAT16_LOSS_SCALE,
                "finite_updates": 0,
                "built_with": built_with,
            }
            self._optimizer_state = state
        else:  # partial_fit: keep the optimizer state but honour the current learning rates
            # and what set_params changed since: a new optimizer, freeze_params, ema_decay or
            # lookahead starts afresh from the current iterate (step count, schedule and shuffle
            # go on)
            before = state["built_with"]
            if before["optimizer"] != self.optimizer or before["frozen"] != built_with["frozen"]:
                state["opt"] = build_optimizer()
            if before["ema_decay"] != self.ema_decay:
                state["ema"] = EMA(params, self.ema_decay) if self.ema_decay is not None else None
            if before["lookahead"] != self.lookahead:
                state["lookahead"] = (
                    None
                    if self.lookahead is None or self.lookahead is False
                    else Lookahead(params, self.lookahead)
                )
            state["built_with"] = built_with
            state["base_lrs"] = [self._group_lr(g["name"]) for g in state["opt"].param_groups]
            for g, base in zip(state["opt"].param_groups, state["base_lrs"]):
                g["lr"] = base
            # the schedule scales the groups by schedule(step) / lr: built with the current lr
            # (and lr_scheduler), else set_params(lr=...) would cancel out under a schedule
            state["schedule"] = make_schedule(
                self.lr_scheduler, float(self.lr), state["total"], self.lr_scheduler_kwargs
            )
        if "gen" not in state or not partial:
            # shuffles of later partial_fit calls continue the stream, as later epochs do
            state["gen"] = seeded_generator("random_seed", self.random_seed, device=X.device)
        gen = state["gen"]
        opt = state["opt"]
        is_lbfgs = isinstance(opt, torch.optim.LBFGS)
        trainable = {k: v for k, v in params.items() if k not in frozen}
        amp_dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(
            self.mixed_precision or ""
        )
        dynamic_scale = amp_dtype == torch.float16

        def batch_loss(Xb, yb, wb):
            if amp_dtype is not None:
                with torch.autocast(device_type=X.device.type, dtype=amp_dtype):
                    per = self._forward_losses(params, Xb, yb, components)
            else:
                per = self._forward_losses(params, Xb, yb, components)
            if wb is None:
                return per.float().mean()
            # a mini-batch of only zero-weight samples contributes 0, not 0 / 0
            return (per.float() * wb).sum() / wb.sum().clamp_min(1e-30)

        # Plain GLVQ losses on the built-in metrics have closed-form gradients: at LVQ sizes a
        # step is mostly per-operation overhead, and skipping autograd halves it.
        closed_form = (
            amp_dtype is None and not is_lbfgs and self._has_closed_form(params, components)
        )

        @torch.no_grad()
        def closed_form_loss(Xb, yb, wb, factor):
            """The batch loss; adds ``factor`` x its gradients to the trainable ``.grad``."""
            value, grads = self._closed_form_loss(params, Xb, yb, wb, components)
            for name, g in grads.items():
                t = trainable.get(name)
                if t is not None:
                    g = g if factor == 1.0 else g * factor
                    t.grad = g if t.grad is None else t.grad.add_(g)
            return value

        def clear_grads():
            for t in trainable.values():
                t.grad = None

        def loss_scale() -> float:
            return state["loss_scale"] if dynamic_scale else 1.0

        def apply_update() -> bool:
            """One optimizer step; False when a float16 overflow made it skip the step."""
            if dynamic_scale:
                grads = [t.grad for t in trainable.values() if t.grad is not None]
                for g in grads:
                    g.div_(state["loss_scale"])
                # one host sync for all groups
                finite = not grads or bool(torch.stack([g.isfinite().all() for g in grads]).all())
                if not finite:
                    clear_grads()
                    state["loss_scale"] = max(state["loss_scale"] / 2.0, 1.0)
                    state["finite_updates"] = 0
                    return False
                state["finite_updates"] += 1
                if state["finite_updates"] % _LOSS_SCALE_GROWTH_INTERVAL == 0:
                    state["loss_scale"] *= 2.0
            opt.step()
            clear_grads()
            after_update()
            return True

        def after_update():
            distance.constrain(params)
            self._constrain_extra(params)
            state["updates"] += 1
            if state["ema"] is not None:
                state["ema"].update(params)
            if state["lookahead"] is not None and state["lookahead"].update(trainable):
                distance.constrain(params)

        def set_step_lr():
            sched = state["schedule"]
            step = state["updates"]
            if sched is not None:
                factor = float(sched(step)) / float(self.lr)
                for g, base in zip(opt.param_groups, state["base_lrs"]):
                    g["lr"] = base * factor
            neigh.set_step(step, state["total"])

        history = list(self.loss_history_) if keep_history else []
        val_history = list(self.val_loss_history_) if keep_history else []
        # partial_fit: restore_best keeps the best parameters over the calls
        best, best_params = state.get("best", (math.inf, None)) if partial else (math.inf, None)
        best_patience = math.inf
        bad = 0
        skipped_before = idle_before = False
        monitor_val = val is not None
        epoch_iter: Any = range(epochs)
        if self.verbose:
            try:
                from tqdm.auto import tqdm
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise ImportError("verbose=True needs tqdm: pip install lvq[progress]") from exc
            epoch_iter = tqdm(epoch_iter, desc=type(self).__name__)
        for cb in cbs:
            cb.on_fit_start(self)
        n_run = 0
        for _epoch in epoch_iter:
            snapshot = None
            if self.restore_best and not monitor_val:
                snapshot = {k: v.detach().clone() for k, v in params.items()}
            perm = torch.randperm(n, generator=gen, device=X.device) if bs < n else None
            total_loss = 0.0
            total_w = 0.0
            # an overflowing float16 step changes nothing: the losses around it are not compared
            skipped = False
            updates_before = state["updates"]
            for b in range(steps_per_epoch):
                if perm is None:
                    Xb, yb, wb = X, y, w
                else:
                    # index_select gathers the rows several times faster than X[idx]
                    idx = perm[b * bs : (b + 1) * bs]
                    Xb, yb = X.index_select(0, idx), y.index_select(0, idx)
                    wb = None if w is None else w.index_select(0, idx)
                set_step_lr()
                if is_lbfgs:

                    def closure(Xb=Xb, yb=yb, wb=wb):
                        clear_grads()
                        value = batch_loss(Xb, yb, wb)
                        value.backward()
                        return value

                    with torch.no_grad():
                        value = batch_loss(Xb, yb, wb)
                    opt.step(closure)
                    clear_grads()
                    after_update()
                else:
                    if closed_form:
                        value = closed_form_loss(Xb, yb, wb, 1.0 / accum)
                    else:
                        value = batch_loss(Xb, yb, wb)
                        (value * (loss_scale() / accum)).backward()
                    state["micro"] += 1
                    if state["micro"] % accum == 0:
                        skipped = not apply_update() or skipped
                if steps_per_epoch == 1:
                    total_loss, total_w = value.detach(), 1.0
                else:
                    bw = Xb.shape[0] if wb is None else wb.sum()
                    total_loss = total_loss + value.detach() * bw
                    total_w = total_w + bw
            n_run += 1
            epoch_loss = float(total_loss / total_w)
            history.append(epoch_loss)
            val_loss = None
            if monitor_val:
                with torch.no_grad():  # in blocks of the batch size: memory bounded by it
                    Xv, yv = val
                    nv = Xv.shape[0]
                    val_loss = (
                        sum(
                            float(batch_loss(Xv[i : i + bs], yv[i : i + bs], None))
                            * min(bs, nv - i)
                            for i in range(0, nv, bs)
                        )
                        / nv
                    )
                val_history.append(val_loss)
            monitored = val_loss if monitor_val else epoch_loss
            if monitored < best:
                best = monitored
                if self.restore_best:
                    best_params = snapshot or {k: v.detach().clone() for k, v in params.items()}
            # after an epoch without an update (a gradient accumulation window still open)
            # this epoch's loss is the last one's: no progress to judge
            unchanged = skipped or skipped_before or idle_before
            if monitored < best_patience - float(self.epsilon):
                best_patience = monitored
                bad = 0
            elif not unchanged:
                bad += 1
            stop = False
            if self.patience is not None:
                stop = bad >= self.patience
            elif (
                not unchanged
                and len(history) > 1
                and abs(history[-1] - history[-2]) < float(self.epsilon)
            ):
                stop = True
            info = cbs and {
                "iteration": len(history),
                "loss": epoch_loss,
                "val_loss": val_loss,
                "lr": opt.param_groups[0]["lr"],
                "params": {k: v.detach() for k, v in params.items()},
            }
            for cb in cbs:
                if cb.on_iteration_end(self, info):
                    stop = True
            if stop:
                break
            skipped_before = skipped
            idle_before = state["updates"] == updates_before
        if not is_lbfgs and state["micro"] % accum and final:
            apply_update()  # the remainder of an unfinished accumulation window
            state["micro"] = 0
        with torch.no_grad():
            if final:  # the averaged / best parameters end the run
                fitted = params
                state.pop("iterate", None)
            else:  # partial_fit publishes them and trains on from the iterate next call
                if self.restore_best:
                    state["best"] = (best, best_params)
                if state["ema"] is None and best_params is None:
                    fitted = params
                    state.pop("iterate", None)
                else:
                    fitted = {k: v.detach().clone() for k, v in params.items()}
                    state["iterate"] = params
            if state["ema"] is not None:
                for k, v in fitted.items():
                    v.copy_(state["ema"].shadow[k])
            if best_params is not None:
                for k, v in fitted.items():
                    v.copy_(best_params[k])
            if fitted is params:
                distance.constrain(params)
            else:  # a copy beside the iterate: invariants only, no state of the run
                distance.constrain_copy(fitted)
            self._constrain_extra(fitted)
        self._params = fitted
        self.loss_history_ = history
        self.val_loss_history_ = val_history
        self.loss_ = history[-1]
        previous_best = getattr(self, "best_loss_", math.inf) if keep_history else math.inf
        self.best_loss_ = float(min(best, previous_best))
        self.n_iter_ = n_run if not keep_history else getattr(self, "n_iter_", 0) + n_run
        self._publish()
        for cb in cbs:
            cb.on_fit_end(self)

    def _constrain_extra(self, params) -> None:
        """Invariants of model-owned extra groups (none by default)."""

    # ------------------------------------------------------------------ fitted attributes

    def _inference_params(self) -> dict[str, torch.Tensor]:
        if self._quantized is None:
            return {k: v.detach() for k, v in self._params.items()}
        return self._dequantized()

    def _publish(self) -> None:
        p = self._inference_params()
        distance = self._make_distance()
        eff = distance.effective(p)
        self.prototypes_ = p["prototypes"].cpu().numpy()
        self.prototype_labels_ = self._encoder.inverse_transform(self._plabels.cpu())
        for name in distance.groups:
            setattr(self, f"{name}_", eff.get(name, p[name]).detach().cpu().numpy())

    # ------------------------------------------------------------------ prediction

    def _check_X(self, X: Any) -> torch.Tensor:
        blockops.check_is_fitted(self, "prototypes_")
        _reject_sparse_and_1d(X)
        Xt = blockops.as_tensor(X, name="X", device=self._device)
        self._check_features(Xt)
        W = self._params.get("prototypes")
        _check_magnitude(Xt, float(W.detach().abs().max()) if W is not None else 0.0)
        return Xt

    def _class_distances(self, Xt: torch.Tensor) -> torch.Tensor:
        p = self._inference_params()
        return self._make_distance().class_min(
            Xt, p["prototypes"], p, self._plabels.to(Xt.device), self.n_classes_
        )

    def _all_distances(self, Xt: torch.Tensor) -> torch.Tensor:
        p = self._inference_params()
        return self._make_distance().all_distances(Xt, p["prototypes"], p)

    def prototype_distances(self, X: Any) -> np.ndarray:
        """Distances of every sample to every prototype ``(n, P)`` under the learned metric."""
        return self._all_distances(self._check_X(X)).cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Label of the nearest prototype (winner takes all) for every row of ``X``."""
        d = self._class_distances(self._check_X(X))
        return self._encoder.inverse_transform(d.argmin(1).cpu())

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``, rows summing to 1."""
        Xt = self._check_X(X)
        loss = self._make_loss(self.n_classes_)
        with torch.no_grad():
            if loss.needs_all_distances:
                dist = self._all_distances(Xt).double()
                proba = loss.proba_all(dist, self._plabels.to(Xt.device), self.n_classes_)
            else:
                proba = loss.proba(self._class_distances(Xt).double())
        return proba.double().cpu().numpy()

    def decision_function(self, X: Any) -> np.ndarray:
        """Negative class-wise distances ``(n, C)``; for two classes ``d(class 0) - d(class 1)``."""
        d = self._class_distances(self._check_X(X)).double().cpu().numpy()
        if self.n_classes_ == 2:
            return d[:, 0] - d[:, 1]
        return -d

    def confidence(self, X: Any) -> np.ndarray:
        """Relative margin ``(d2 - d1) / (d2 + d1)`` in ``[0, 1]`` between the two nearest classes."""
        d = self._class_distances(self._check_X(X)).double()
        two = torch.topk(d, 2, dim=1, largest=False).values
        return ((two[:, 1] - two[:, 0]) / (two[:, 1] + two[:, 0]).clamp_min(1e-30)).cpu().numpy()

    def predict_with_rejection(
        self, X: Any, threshold: float | None = None, reject_label: Any = -1
    ) -> np.ndarray:
        """Predictions with Chow's reject option: ``reject_label`` where the model is unsure.

        With ``threshold`` (default 0.0) a sample is rejected when its relative margin
        (:meth:`confidence`) is below it. Probabilistic models with ``rejection_confidence``
        set and no ``threshold`` reject where the top class probability is below that value.
        ``reject_label`` must not be one of the classes (a rejection would read as that class).
        """
        blockops.check_is_fitted(self, "prototypes_")
        if any(_same_label(reject_label, c) for c in self.classes_):
            raise ValueError(
                f"reject_label={reject_label!r} is one of the classes {list(self.classes_)}; "
                "pass a reject_label outside them (e.g. None or 'rejected')"
            )
        reject = self._rejected(X, threshold)
        pred = self.predict(X)
        out = pred.astype(object) if pred.dtype.kind in "OUS" else pred.copy()
        if reject.any():
            if out.dtype.kind in "iuf" and isinstance(reject_label, (int, float)):
                out = out.astype(np.result_type(out.dtype, np.asarray(reject_label).dtype))
            else:
                out = out.astype(object)
            out[reject] = reject_label
        return out

    def _rejected(self, X: Any, threshold: float | None) -> np.ndarray:
        """The rows :meth:`predict_with_rejection` rejects at ``threshold``."""
        if threshold is not None:  # NaN compared False everywhere: nothing was rejected
            threshold = check_number("threshold", threshold)
        conf_param = getattr(self, "rejection_confidence", None)
        if threshold is None and conf_param is not None:
            return self.predict_proba(X).max(1) < float(conf_param)
        return self.confidence(X) < (0.0 if threshold is None else float(threshold))

    def rejection_rate(self, X: Any, threshold: float | None = None) -> float:
        """Fraction of samples :meth:`predict_with_rejection` rejects at ``threshold``: whose
        relative margin is below it (default 0.0), or, with no ``threshold`` and
        ``rejection_confidence`` set, whose top class probability is below that."""
        return float(self._rejected(X, threshold).mean())

    def accuracy_coverage_curve(
        self, X: Any, y: Any, thresholds: Any = None
    ) -> dict[str, np.ndarray]:
        """Accuracy on the accepted samples and coverage for each margin threshold.

        Returns ``{"thresholds", "accuracy", "coverage"}`` (accuracy is 1.0 where nothing is kept).
        """
        conf = self.confidence(X)
        correct = self.predict(X) == blockops.as_labels(y, n_samples=conf.shape[0])
        if thresholds is None:
            thresholds = np.unique(np.concatenate([[0.0], conf]))
        thresholds = np.asarray(thresholds, dtype=np.float64)
        acc, cov = [], []
        for t in thresholds:
            keep = conf >= t
            cov.append(keep.mean())
            acc.append(correct[keep].mean() if keep.any() else 1.0)
        return {"thresholds": thresholds, "accuracy": np.array(acc), "coverage": np.array(cov)}

    def optimal_threshold(
        self, X: Any, y: Any, cost_reject: float = 0.5, cost_error: float = 1.0
    ) -> float:
        """Margin threshold minimising ``cost_error * errors + cost_reject * rejections``."""
        cost_reject = check_number("cost_reject", cost_reject, 0.0, strict=False)
        cost_error = check_number("cost_error", cost_error, 0.0, strict=False)
        curve = self.accuracy_coverage_curve(X, y)
        cov, acc = curve["coverage"], curve["accuracy"]
        cost = cost_error * cov * (1.0 - acc) + cost_reject * (1.0 - cov)
        return float(curve["thresholds"][int(np.argmin(cost))])

    def prototype_win_ratios(self, X: Any, y: Any = None) -> np.ndarray:
        """Share of samples each prototype wins ``(P,)``; with ``y``, correct wins only."""
        Xt = self._check_X(X)
        win = self._all_distances(Xt).argmin(1).cpu()
        hit = torch.ones_like(win, dtype=torch.bool)
        if y is not None:
            codes = self._encode(y)
            hit = self._plabels.cpu()[win] == codes
        counts = torch.bincount(win[hit], minlength=self._plabels.shape[0]).double()
        return (counts / Xt.shape[0]).numpy()

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> Path:
        """Write ``config.yaml`` + ``tensors.pt`` + ``meta.json`` to the directory ``path``."""
        blockops.check_is_fitted(self, "prototypes_")
        config = self._checkpoint_config()
        tensors = {f"param.{k}": v.detach() for k, v in self._params.items()}
        tensors["prototype_codes"] = self._plabels.detach()
        for k, v in (self._qscales if self._quantized else {}).items():
            tensors[f"scale.{k}"] = v.detach()
        meta = {"package": "lvq", "version": __version__, "model": type(self).__name__}
        return blockops.save_checkpoint(path, config, tensors, meta)

    def _checkpoint_config(self) -> dict[str, Any]:
        """The ``config.yaml`` of :meth:`save`: parameters, labels and fitted scalars."""
        return {
            "model": type(self).__name__,
            "params": self._config_params(),
            "classes": _to_python(np.asarray(self.classes_)),
            "n_features_in": int(self.n_features_in_),
            "n_iter": int(self.n_iter_),
            "loss_history": [float(v) for v in self.loss_history_],
            "val_loss_history": [float(v) for v in self.val_loss_history_],
            "best_loss": float(self.best_loss_),
            "quantized": self._quantized,
        }

    def _restore_config(self, config: dict[str, Any]) -> None:
        """Set the fitted scalars of a :meth:`_checkpoint_config` (the inverse, after tensors)."""
        self.n_iter_ = int(config["n_iter"])
        self.loss_history_ = list(config["loss_history"])
        self.val_loss_history_ = list(config["val_loss_history"])
        self.loss_ = self.loss_history_[-1] if self.loss_history_ else float("nan")
        self.best_loss_ = float(config["best_loss"])

    @classmethod
    def load(
        cls,
        path: str | Path,
        platform: str | torch.device | None = None,
        *,
        device: str | torch.device | None = None,
    ) -> SupervisedPrototypeModel:
        """Read a model written by :meth:`save` onto ``platform`` (``device=`` is an alias;
        neither given: ``"auto"``).

        ``"auto"`` keeps the saved ``device`` parameter where this machine has that device and
        otherwise warns and uses the best device here; another device that is not available
        falls back to the CPU with a warning.
        """
        config, tensors, meta = blockops.load_checkpoint(path)
        if meta.get("package") != "lvq":
            raise ValueError(
                f"{str(path)!r} is not an lvq checkpoint (package={meta.get('package')!r})"
            )
        from .registry import get_model_class

        klass = get_model_class(config["model"])
        if cls is not SupervisedPrototypeModel and not issubclass(klass, cls):
            raise ValueError(f"{str(path)!r} holds a {config['model']}, not a {cls.__name__}")
        params = dict(config["params"])
        requested = load_platform(platform, device)
        dev, placed = resolve_load_device(params.get("device", "auto"), requested)
        if "device" in params:
            params["device"] = placed
        model = klass(**params)
        classes = config["classes"]
        arr = np.array(classes)
        if arr.dtype.kind not in "iufbU":
            arr = np.empty(len(classes), dtype=object)
            arr[:] = classes
        model._encoder = blockops.LabelEncoder().fit(arr)
        model.classes_ = model._encoder.classes_
        model.n_classes_ = len(model.classes_)
        model.n_features_in_ = int(config["n_features_in"])
        model._device = dev
        model._params = {
            k[len("param.") :]: v.to(dev) for k, v in tensors.items() if k.startswith("param.")
        }
        model._plabels = tensors["prototype_codes"].to(dev).long()
        model._quantized = config.get("quantized")
        model._qscales = {
            k[len("scale.") :]: v.to(dev) for k, v in tensors.items() if k.startswith("scale.")
        }
        model._optimizer_state = None
        model._init_counts = model._counts(model.n_classes_)
        model._restore_config(config)
        model._publish()
        return model

    # ------------------------------------------------------------------ quantization

    def _quantizable(self) -> dict[str, torch.Tensor]:
        return self._params

    def _store_quantized(
        self, tensors: dict[str, torch.Tensor], scales: dict[str, torch.Tensor], dtype: str | None
    ) -> None:
        self._params, self._qscales, self._quantized = tensors, scales, dtype
        self._optimizer_state = None

    # ------------------------------------------------------------------ export

    def inference_module(self) -> torch.nn.Module:
        """A ``torch.nn.Module`` mapping ``X (n, d)`` to ``(class codes (n,), proba (n, C))``."""
        blockops.check_is_fitted(self, "prototypes_")
        return _InferenceModule(self)

    def _onnx_example(self, n: int) -> torch.Tensor:
        """An ``(n, n_features_in_)`` input to trace the export with."""
        return torch.zeros(n, self.n_features_in_)

    def export_onnx(
        self, path: str | Path, batch_size: int | None = None, opset_version: int = 17
    ) -> Path:
        """Export prediction to ONNX (outputs ``label`` class codes and ``proba``).

        Needs ``pip install lvq[onnx]``. Map codes to labels with ``classes_``. ``batch_size``
        fixes the batch dimension; ``None`` keeps it dynamic.
        """
        return export_inference_onnx(self, path, ("label", "proba"), batch_size, opset_version)


def export_inference_onnx(
    model: Any,
    path: str | Path,
    output_names: tuple[str, ...] | list[str],
    batch_size: int | None = None,
    opset_version: int = 17,
) -> Path:
    """Trace ``model.inference_module()`` on ``model._onnx_example(n)`` and write it to ``path``.

    The machinery every ``export_onnx`` shares (supervised and unsupervised models): the graph
    takes one input ``X (n, d)`` float32 and returns the module's outputs under
    ``output_names``; ``batch_size`` fixes the batch dimension, ``None`` keeps it dynamic (the
    first axis of the input and of every output). Needs ``pip install lvq[onnx]``.
    """
    try:
        import onnx  # noqa: F401
    except ImportError as exc:
        raise ImportError("export_onnx needs onnx: pip install lvq[onnx]") from exc
    batch_size = check_int("batch_size", batch_size, 1, allow_none=True)
    module = model.inference_module().cpu().eval()
    example = model._onnx_example(batch_size or 2)
    path = Path(path)
    names = list(output_names)
    _register_onnx_symbolics(opset_version)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=["X"],
            output_names=names,
            opset_version=opset_version,
            dynamic_axes=None if batch_size else {k: {0: "n"} for k in ["X", *names]},
            dynamo=False,
        )
    return path


def _expm1_as_exp_minus_one(g, x):
    return g.op("Sub", g.op("Exp", x), g.op("Constant", value_t=torch.tensor(1.0)))


def _sinh(g, x):
    return g.op("Sinh", x)


def _atanh(g, x):
    return g.op("Atanh", x)


def _acosh(g, x):
    return g.op("Acosh", x)


def _register_onnx_symbolics(opset_version: int) -> None:
    """Teach the exporter the ops of the kernel and hyperbolic distances it lacks.

    ``sinh``, ``atanh`` and ``acosh`` (the Poincaré distance of RiemannianNeuralGas) map to
    ONNX ``Sinh``, ``Atanh`` and ``Acosh``. ONNX has no ``expm1``: it is
    written as ``Exp(x) - 1``, whose small-``x`` cancellation stays below float32 resolution of
    the kernel distances (bounded by 2).
    """
    torch.onnx.register_custom_op_symbolic("aten::expm1", _expm1_as_exp_minus_one, opset_version)
    torch.onnx.register_custom_op_symbolic("aten::sinh", _sinh, opset_version)
    torch.onnx.register_custom_op_symbolic("aten::atanh", _atanh, opset_version)
    torch.onnx.register_custom_op_symbolic("aten::acosh", _acosh, opset_version)


class _InferenceModule(torch.nn.Module):
    def __init__(self, model: SupervisedPrototypeModel):
        super().__init__()
        p = model._inference_params()
        self.distance = model._make_distance()
        self.loss = model._make_loss(model.n_classes_)
        self.names = list(p)
        for k, v in p.items():
            self.register_buffer(f"p_{k}", v.detach().float().cpu().clone())
        labels = model._plabels.cpu()
        self.n_classes = model.n_classes_
        self.register_buffer("labels", labels.clone())
        self.members = [
            torch.nonzero(labels == c).flatten().tolist() for c in range(self.n_classes)
        ]

    def _distances(self, X: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(n, P)`` distances to the prototypes and the parameter buffers by name."""
        p = {k: getattr(self, f"p_{k}") for k in self.names}
        eff = dict(p)
        eff.update(self.distance.effective(p))
        return self.distance._apply(X, p["prototypes"], eff), p

    def forward(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dist, _ = self._distances(X)
        cols = [dist[:, idx].min(dim=1).values for idx in self.members]
        class_dist = torch.stack(cols, dim=1)
        if self.loss.needs_all_distances:
            post = torch.softmax(self.loss.logits(dist), dim=1)
            proba = torch.stack([post[:, idx].sum(dim=1) for idx in self.members], dim=1)
        else:
            proba = torch.softmax(-class_dist, dim=1)
        return class_dist.argmin(dim=1), proba
