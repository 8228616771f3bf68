"""The unsupervised estimator base (fit(X), predict, transform, save/load) and family Q's
clusterers: KMeansPlusPlus (alias Kmeans), BGPC and the simple online SOM.

Every unsupervised model keeps its learned tensors in ``self._state`` (a flat dict of plain
tensors) and publishes numpy views of them as ``..._`` attributes, so persistence, device
moves and ``prototypes_`` are written once here.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import blockops
import numpy as np
import torch

from ..__about__ import __version__
from .._checks import (
    check_int,
    check_number,
    load_platform,
    resolve_load_device,
    seeded_generator,
)
from ..base import PrototypeModel, export_inference_onnx
from ..distances import squared_euclidean
from ..registry import register

__all__ = ["BGPC", "SOM", "KMeansPlusPlus", "Kmeans", "UnsupervisedModel"]


def _refuse_positional_start(y: Any, X: Any, start: str) -> None:
    """Clusterers ignore ``y``; a 2-D ``y`` other than a column of one label per row of ``X``
    is starting points given by position (the published library's ``fit(X, initial_centroids)``),
    refused rather than silently ignored."""
    shape = () if y is None else tuple(np.shape(y))
    if len(shape) == 2 and not (shape[1] == 1 and shape[:1] == tuple(np.shape(X)[:1])):
        raise ValueError(
            f"y is ignored by clusterers, but a 2-D y of shape {shape} was given: "
            f"pass starting points by keyword, fit(X, {start}=...)"
        )


class UnsupervisedModel(PrototypeModel):
    """Base of the clusterers and topology models: ``fit(X)``, ``predict`` (index of the best
    matching prototype), ``transform`` (distances to every prototype), ``fit_predict``,
    ``score``, ``save``/``load`` in the project's safe format and ``export_onnx``.

    Subclasses implement :meth:`_fit` (fill ``self._state``, return the history) and may
    override :meth:`_distances` (the ``(n, P)`` matrix ``predict``/``transform`` use).
    """

    _base_params: dict[str, Any] = {}
    _estimator_type = "clusterer"
    #: name of the seed parameter (the published library's legacy classes say random_state)
    _seed_param = "random_seed"
    #: name of the state tensor holding the prototypes
    _proto_key = "prototypes"
    #: name of ``fit``'s starting-point argument, for the errors about it
    _start_param = "initial_prototypes"
    #: state tensors describing the training data only (not exported: prediction ignores them)
    _training_state: tuple[str, ...] = ("U", "T", "labels")

    def __sklearn_tags__(self) -> Any:
        """The tags scikit-learn reads (``check_is_fitted``, ``Pipeline.score``): a clusterer
        that needs no ``y``."""
        from sklearn.utils import InputTags, Tags, TargetTags

        return Tags(
            estimator_type="clusterer",
            target_tags=TargetTags(required=False),
            input_tags=InputTags(),
        )

    # ------------------------------------------------------------------ fitting

    def _resolve_device(self) -> torch.device:
        return blockops.resolve_device(getattr(self, "device", "auto"), name="device")

    def _validate(self) -> None:
        """Check parameters (called at the start of ``fit``)."""

    def _fit(self, X: torch.Tensor, gen: torch.Generator, init: torch.Tensor | None) -> list:
        raise NotImplementedError

    def fit(self, X: Any, y: Any = None, initial_prototypes: Any = None, resume: bool = False):
        """Learn the prototypes from ``X (n, d)`` (``y`` is ignored).

        Args:
            X: training data ``(n, d)``.
            y: ignored (scikit-learn compatibility); a 2-D ``y`` other than an ``(n, 1)``
                column (starting points given by position) is an error.
            initial_prototypes: starting prototypes ``(P, d)`` instead of the initializer.
            resume: start from the currently fitted prototypes.
        """
        _refuse_positional_start(y, X, "initial_prototypes")
        if self._quantized is not None:
            raise ValueError("this model is quantized; call dequantize() before training")
        self._validate()
        device = self._resolve_device()
        Xt = blockops.as_tensor(X, name="X", device=device)
        init = None
        start = self._start_param
        if resume and initial_prototypes is not None:
            raise ValueError(f"resume=True cannot be combined with {start}")
        if resume:
            blockops.check_is_fitted(self, "prototypes_")
            self._check_features(Xt)
            init = self._state[self._proto_key].to(device).clone()
            self._check_resume_size(Xt, int(init.shape[0]))
        elif initial_prototypes is not None:
            init = blockops.as_tensor(initial_prototypes, name=start, device=device)
            if init.shape[1] != Xt.shape[1]:
                raise ValueError(f"{start} has {init.shape[1]} features but X has {Xt.shape[1]}")
        self._check_n_samples(Xt)
        self._device = device
        self.n_features_in_ = int(Xt.shape[1])
        gen = seeded_generator(self._seed_param, getattr(self, self._seed_param), device=device)
        with torch.no_grad():
            history = self._fit(Xt, gen, init)
        self.loss_history_ = [float(v) for v in history]
        self.n_iter_ = len(self.loss_history_)
        self._publish()
        return self

    def _asked_prototypes(self, X: torch.Tensor) -> tuple[int, str] | None:
        """``(P, why)``: how many prototypes the current parameters ask for on ``X`` and the
        parameters that say so (``None``: the model decides itself, e.g. GrowingNeuralGas)."""
        return None

    def _check_resume_size(self, X: torch.Tensor, fitted: int) -> None:
        """``resume=True`` continues the fitted prototypes: refuse where ``set_params`` (or,
        for SOM without ``grid_size``, another number of samples) now asks for another count."""
        asked = self._asked_prototypes(X)
        if asked is None or asked[0] == fitted:
            return
        n, why = asked
        raise ValueError(
            f"resume=True continues the {fitted} fitted prototypes of {type(self).__name__}, but "
            f"its parameters now ask for {n} ({why}); refit without resume (fit(X)) to train "
            f"{n} prototypes from scratch, or set the parameters back to resume"
        )

    def _check_n_samples(self, X: torch.Tensor) -> None:
        need = self._n_prototypes_needed()
        if need is not None and X.shape[0] < need:
            raise ValueError(
                f"{type(self).__name__} needs at least {need} samples, X has {X.shape[0]}"
            )

    def _n_prototypes_needed(self) -> int | None:
        return None

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X)`` then the index of each sample's best matching prototype."""
        return self.fit(X).predict(X)

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X)`` then :meth:`transform`: the ``(n, P)`` distances of ``X`` to the learned
        prototypes (scikit-learn's ``KMeans.fit_transform``)."""
        return self.fit(X).transform(X)

    # ------------------------------------------------------------------ inference

    def _check_features(self, X: torch.Tensor) -> None:
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} was fitted with "
                f"{self.n_features_in_} features"
            )

    def _check_X(self, X: Any) -> torch.Tensor:
        blockops.check_is_fitted(self, "prototypes_")
        Xt = blockops.as_tensor(X, name="X", device=self._device)
        self._check_features(Xt)
        return Xt

    def _distances(self, X: torch.Tensor) -> torch.Tensor:
        return squared_euclidean(X, self._state[self._proto_key].to(X.device))

    def transform(self, X: Any) -> np.ndarray:
        """Distances ``(n, P)`` of every sample to every prototype (the model's metric)."""
        with torch.no_grad():
            return self._distances(self._check_X(X)).cpu().numpy()

    def _assign(self, X: torch.Tensor) -> torch.Tensor:
        return self._distances(X).argmin(1)

    def predict(self, X: Any) -> np.ndarray:
        """Index of the best matching prototype (cluster) of every row of ``X``."""
        with torch.no_grad():
            return self._assign(self._check_X(X)).cpu().numpy()

    def score(self, X: Any, y: Any = None) -> float:
        """Negative mean squared quantization error (higher is better, as scikit-learn's)."""
        with torch.no_grad():
            Xt = self._check_X(X)
            W = self._state[self._proto_key].to(Xt.device)
            return -float(squared_euclidean(Xt, W).min(1).values.double().mean())

    def _publish(self) -> None:
        for k, v in self._state.items():
            setattr(self, f"{k}_", v.detach().cpu().numpy())

    # ------------------------------------------------------------------ quantization

    #: the low-precision tensors of a quantized model (``_state`` holds their float32 values)
    _qstate: dict[str, torch.Tensor] = {}

    def _quantizable(self) -> dict[str, torch.Tensor]:
        """The floating-point tensors prediction uses (not the training data's ``U``, ``T``)."""
        if self._quantized is not None:
            return self._qstate
        return {
            k: v
            for k, v in self._state.items()
            if k not in self._training_state and v.is_floating_point()
        }

    def _store_quantized(
        self, tensors: dict[str, torch.Tensor], scales: dict[str, torch.Tensor], dtype: str | None
    ) -> None:
        """A quantized model keeps ``tensors`` and predicts with their float32 values, computed
        once here (subclasses read ``_state``)."""
        self._qscales, self._quantized = scales, dtype
        self._qstate = {} if dtype is None else tensors
        self._state = {**self._state, **(tensors if dtype is None else self._dequantized())}

    # ------------------------------------------------------------------ export

    def _bind_state(self, state: dict[str, torch.Tensor]) -> None:
        """Use ``state`` (the inference module's buffers) as the learned tensors."""
        self._state = state

    #: ``predict_proba``'s rows ``(n, n_clusters)`` from the distances ``(n, P)``, for the
    #: models that have it (then the exported graph has a ``proba`` output)
    _proba_from_distances: Any = None

    def _inference(self, X: torch.Tensor) -> dict[str, torch.Tensor]:
        """The exported outputs for ``X (n, d)``: ``label`` (= ``predict``), ``distances``
        (= ``transform``) and, where the model has ``predict_proba``, ``proba``."""
        D = self._distances(X)
        out = {"label": self._assign(X), "distances": D}
        if self._proba_from_distances is not None:
            out["proba"] = self._proba_from_distances(D)
        return out

    def _onnx_outputs(self) -> tuple[str, ...]:
        has_proba = self._proba_from_distances is not None
        return ("label", "distances", "proba") if has_proba else ("label", "distances")

    def _onnx_obstacle(self) -> str | None:
        """Why this model's prediction cannot be written in ONNX (``None``: it can)."""
        return None

    def inference_module(self) -> torch.nn.Module:
        """A CPU float32 ``torch.nn.Module`` mapping ``X (n, d)`` to ``(label (n,), distances
        (n, P))`` -- ``predict`` and ``transform`` -- plus ``proba (n, P)`` (``predict_proba``)
        for the models that have it; what :meth:`export_onnx` writes."""
        blockops.check_is_fitted(self, "prototypes_")
        return _UnsupervisedInference(self)

    def _onnx_example(self, n: int) -> torch.Tensor:
        """``n`` prototype rows as the trace input (zeros lie off a manifold's points)."""
        W = torch.as_tensor(self.prototypes_, dtype=torch.float32)
        return W[torch.arange(n) % W.shape[0]].clone()

    def export_onnx(
        self, path: str | Path, batch_size: int | None = None, opset_version: int = 17
    ) -> Path:
        """Export prediction to ONNX; needs ``pip install lvq[onnx]``.

        The graph takes ``X (n, d)`` float32 and returns ``label`` (int64 ``(n,)``, the index of
        the best matching prototype / cluster, as ``predict``), ``distances`` (float32
        ``(n, P)``, as ``transform``: the model's own distance, e.g. kernel distances for the
        ``DK``/``K`` models) and, for the models with ``predict_proba`` (the fuzzy and
        possibilistic clusterers, BGPC), ``proba`` (float32 ``(n, n_clusters)``, rows summing
        to 1). ``batch_size`` fixes the batch dimension; ``None`` keeps it dynamic. A model
        whose distance ONNX cannot express (a Riemannian model on SPD or Grassmann points)
        raises ``NotImplementedError`` naming why.
        """
        blockops.check_is_fitted(self, "prototypes_")
        obstacle = self._onnx_obstacle()
        if obstacle is not None:
            raise NotImplementedError(
                f"{type(self).__name__} cannot be exported to ONNX: {obstacle}; predict in "
                "PyTorch (the model or its inference_module()) instead"
            )
        return export_inference_onnx(self, path, self._onnx_outputs(), batch_size, opset_version)

    # ------------------------------------------------------------------ persistence

    def _extra_config(self) -> dict[str, Any]:
        return {}

    def _load_extra(self, config: dict[str, Any]) -> None:
        """Restore what :meth:`_extra_config` wrote."""

    def save(self, path: str | Path) -> Path:
        """Write ``config.yaml`` + ``tensors.pt`` + ``meta.json`` to the directory ``path``."""
        blockops.check_is_fitted(self, "prototypes_")
        config = {
            "model": type(self).__name__,
            "params": self._config_params(),
            "n_features_in": int(self.n_features_in_),
            "n_iter": int(self.n_iter_),
            "loss_history": [float(v) for v in self.loss_history_],
            "extra": self._extra_config(),
            "quantized": self._quantized,
            "quantized_state": sorted(self._qstate),
        }
        tensors = {f"state.{k}": v.detach() for k, v in {**self._state, **self._qstate}.items()}
        tensors.update({f"scale.{k}": v.detach() for k, v in self._qscales.items()})
        meta = {"package": "lvq", "version": __version__, "model": type(self).__name__}
        return blockops.save_checkpoint(path, config, tensors, meta)

    @classmethod
    def load(
        cls,
        path: str | Path,
        platform: str | torch.device | None = None,
        *,
        device: str | torch.device | None = None,
    ) -> UnsupervisedModel:
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
        from ..registry import get_model_class

        klass = get_model_class(config["model"])
        if not issubclass(klass, cls):
            raise ValueError(f"{str(path)!r} holds a {config['model']}, not a {cls.__name__}")
        params = dict(config["params"])
        requested = load_platform(platform, device)
        dev, placed = resolve_load_device(params.get("device", "auto"), requested)
        if "device" in params:
            params["device"] = placed
        model = klass(**params)
        model._device = dev
        model.n_features_in_ = int(config["n_features_in"])
        model.n_iter_ = int(config["n_iter"])
        model.loss_history_ = list(config["loss_history"])
        model._state = {
            k[len("state.") :]: v.to(dev) for k, v in tensors.items() if k.startswith("state.")
        }
        if config.get("quantized") is not None:
            scales = {
                k[len("scale.") :]: v.to(dev) for k, v in tensors.items() if k.startswith("scale.")
            }
            quantized = {k: model._state[k] for k in config["quantized_state"]}
            model._store_quantized(quantized, scales, config["quantized"])
        model._load_extra(config.get("extra") or {})
        model._publish()
        return model


class _UnsupervisedInference(torch.nn.Module):
    """``X (n, d) -> (label, distances[, proba])`` of an unsupervised model, on its own CPU
    float32 copy of the learned tensors (buffers); the model's own ``_assign`` /
    ``_distances`` compute the outputs, so they are ``predict`` / ``transform`` by
    construction."""

    def __init__(self, model: UnsupervisedModel):
        super().__init__()
        self.model = copy.copy(model)  # parameters and Python constants; state from buffers
        self.names = [k for k in model._state if k not in model._training_state]
        for k in self.names:
            v = model._state[k].detach().cpu()
            self.register_buffer(f"s_{k}", (v.float() if v.is_floating_point() else v).clone())
        self.output_names = model._onnx_outputs()

    def forward(self, X: torch.Tensor) -> tuple[torch.Tensor, ...]:
        m = self.model
        m._bind_state({k: getattr(self, f"s_{k}") for k in self.names})
        out = m._inference(X)
        return tuple(out[k] for k in self.output_names)


def _kmeanspp(X: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007): ``(k, d)`` rows of ``X``.

    Each step draws ``2 + int(log k)`` candidates with probability proportional to the squared
    distance to the nearest chosen centre and keeps the one that lowers the potential most.
    """
    n = X.shape[0]
    trials = 2 + int(math.log(k)) if k > 1 else 1
    first = int(torch.randint(n, (1,), generator=gen, device=X.device))
    centers = [X[first]]
    closest = squared_euclidean(X, X[first : first + 1])[:, 0]
    for _ in range(1, k):
        total = closest.sum()
        if not float(total) > 0:
            cand = torch.randint(n, (trials,), generator=gen, device=X.device)
        else:
            cand = torch.multinomial(closest / total, trials, replacement=True, generator=gen)
        pot = torch.minimum(closest[:, None], squared_euclidean(X, X[cand]))  # (n, trials)
        best = int(pot.sum(0).argmin())
        centers.append(X[int(cand[best])])
        closest = pot[:, best]
    return torch.stack(centers)


def _random_rows(X: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    idx = torch.randperm(X.shape[0], generator=gen, device=X.device)[:k]
    return X[idx].clone()


def _centroids(X: torch.Tensor, W: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """Weighted means ``(c, d)`` from weights ``W (n, c)``; empty clusters keep ``old``."""
    mass = W.sum(0)
    new = (W.T @ X) / mass.clamp_min(1e-30)[:, None]
    return torch.where((mass > 1e-30)[:, None], new, old)


@register("Q", {"n_clusters": 3, "max_iter": 20}, kind="clusterer", gradient=False)
class KMeansPlusPlus(UnsupervisedModel):
    """k-means (Lloyd's algorithm) started from greedy k-means++ seeding.

    ``fit`` runs until no centroid moves more than ``epsilon`` (or ``max_iter`` passes);
    ``loss_history_`` holds the inertia (sum of squared distances) of every pass. ``predict``
    is the nearest centroid; ``transform`` the squared distances to the centroids;
    ``cluster_centers_`` / ``centroids_`` / ``prototypes_`` the centroids; ``labels_`` and
    ``inertia_`` describe the training data. ``Kmeans`` is the same class.
    """

    _own_params = {
        "n_clusters": 3,
        "max_iter": 100,
        "epsilon": 1e-5,
        "random_seed": None,
        "device": "auto",
    }

    def _validate(self):
        check_int("n_clusters", self.n_clusters)
        check_int("max_iter", self.max_iter)
        check_number("epsilon", self.epsilon, 0.0, strict=False)

    def _n_prototypes_needed(self):
        return int(self.n_clusters)

    def _asked_prototypes(self, X):
        return int(self.n_clusters), f"n_clusters={int(self.n_clusters)}"

    def _fit(self, X, gen, init):
        k = int(self.n_clusters)
        V = _kmeanspp(X, k, gen) if init is None else init
        if V.shape[0] != k:
            raise ValueError(f"initial_prototypes has {V.shape[0]} rows, n_clusters={k}")
        history = []
        for _ in range(int(self.max_iter)):
            D = squared_euclidean(X, V)
            lab = D.argmin(1)
            history.append(float(D.gather(1, lab[:, None]).sum()))
            W = torch.nn.functional.one_hot(lab, k).to(X.dtype)
            new = _centroids(X, W, V)
            shift = float((new - V).norm(dim=1).max())
            V = new
            if shift <= float(self.epsilon):
                break
        D = squared_euclidean(X, V)
        # labels of the training data are state: save / load keep ``labels_``
        self._state = {"prototypes": V, "labels": D.argmin(1)}
        self.inertia_ = float(D.min(1).values.double().sum())
        return history

    def _publish(self):
        super()._publish()
        self.cluster_centers_ = self.centroids_ = self.prototypes_

    def _extra_config(self):
        return {"inertia": getattr(self, "inertia_", None)}

    def _load_extra(self, config):
        self.inertia_ = config.get("inertia")


Kmeans = KMeansPlusPlus
"""The published library's name for :class:`KMeansPlusPlus` (the same class)."""


@register("Q", {"n_clusters": 3, "max_iter": 20}, kind="clusterer", gradient=False)
class BGPC(UnsupervisedModel):
    """Graded possibilistic c-means with deterministic annealing (Masulli & Rovetta 2006).

    Free memberships ``v_ij = exp(-beta d_ij)`` are divided by ``kappa_i = (sum_j v_ij)^alpha``:
    ``alpha = 1`` gives probabilistic (FCM-like, rows summing to 1) memberships, ``alpha = 0``
    possibilistic ones, values in between a graded model. ``beta`` (an inverse temperature,
    in units of the mean squared distance of the samples to their nearest initial centroid) is
    annealed geometrically from ``beta_init`` to ``beta_final`` over the first half of
    ``max_iter`` and stays at ``beta_final`` after; ``alpha`` is ``alpha_init`` throughout.
    Centroids are membership-weighted means; fitting stops once ``beta`` reached
    ``beta_final`` and no centroid moves more than ``tol`` (or after ``max_iter`` iterations).
    ``init`` is ``'fcm'`` (start from a fuzzy c-means run) or ``'random'`` (random samples). ``predict_proba`` gives the memberships
    normalised per row; ``U_`` the graded memberships of the training data. Parameter names are
    the published library's (``tol``, ``random_state``).
    """

    _own_params = {
        "n_clusters": 3,
        "max_iter": 100,
        "tol": 1e-4,
        "alpha_init": 1.0,
        "beta_init": 0.1,
        "beta_final": 10.0,
        "init": "fcm",
        "random_state": None,
        "device": "auto",
    }
    _seed_param = "random_state"

    def _validate(self):
        check_int("n_clusters", self.n_clusters, 2)
        check_int("max_iter", self.max_iter)
        check_number("tol", self.tol, 0.0, strict=False)
        a = check_number("alpha_init", self.alpha_init, 0.0, strict=False)
        if a > 1:
            raise ValueError(f"alpha_init must lie in [0, 1], got {self.alpha_init!r}")
        check_number("beta_init", self.beta_init, 0.0)
        check_number("beta_final", self.beta_final, 0.0)
        if self.init not in ("fcm", "random"):
            raise ValueError(f"init must be 'fcm' or 'random', got {self.init!r}")

    def _n_prototypes_needed(self):
        return int(self.n_clusters)

    def _asked_prototypes(self, X):
        return int(self.n_clusters), f"n_clusters={int(self.n_clusters)}"

    def _memberships(self, D: torch.Tensor, beta: float) -> torch.Tensor:
        logv = -beta * D / self._scale
        logkappa = float(self.alpha_init) * torch.logsumexp(logv, dim=1, keepdim=True)
        return torch.exp(logv - logkappa)

    def _fit(self, X, gen, init):
        from .fuzzy import FCM

        c = int(self.n_clusters)
        if init is None:
            if self.init == "fcm":
                seed = int(torch.randint(2**31, (1,), generator=gen, device=X.device))
                fcm = FCM(n_clusters=c, max_iter=50, random_seed=seed, device=str(X.device))
                V = fcm.fit(X).centroids_
                V = torch.as_tensor(V, device=X.device, dtype=X.dtype)
            else:
                V = _random_rows(X, c, gen)
        else:
            V = init
        if V.shape[0] != c:
            raise ValueError(f"initial_prototypes has {V.shape[0]} rows, n_clusters={c}")
        # distances are measured in units of the initial within-cluster spread
        self._scale = float(squared_euclidean(X, V).min(1).values.mean().clamp_min(1e-12))
        T = int(self.max_iter)
        # the annealing spans the first half of max_iter: the rest is left for converging at
        # beta_final (tol had no effect when the schedule reached beta_final at the last pass)
        anneal = max(1, T // 2)
        b0, b1 = float(self.beta_init), float(self.beta_final)
        history = []
        for t in range(T):
            frac = 1.0 if anneal <= 1 else min(t / (anneal - 1), 1.0)
            beta = b1 if frac >= 1.0 else b0 * (b1 / b0) ** frac
            D = squared_euclidean(X, V)
            U = self._memberships(D, beta)
            history.append(float((U * D).sum()))
            new = _centroids(X, U, V)
            shift = float((new - V).norm(dim=1).max())
            V = new
            if shift <= float(self.tol) and t > 0 and frac >= 1.0:
                break
        self._beta = beta
        self._state = {
            "prototypes": V,
            "beta": torch.tensor(beta),
            "scale": torch.tensor(self._scale),
            "U": self._memberships(squared_euclidean(X, V), beta),  # published as U_
        }
        return history

    def _load_extra(self, config):
        self._beta = float(self._state["beta"])
        self._scale = float(self._state["scale"])

    def _publish(self):
        super()._publish()
        self._beta = float(self._state["beta"])
        self._scale = float(self._state["scale"])
        self.centroids_ = self.prototypes_

    def _proba_from_distances(self, D: torch.Tensor) -> torch.Tensor:
        return rows_summing_to_one(self._memberships(D, self._beta))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Memberships ``(n, n_clusters)`` normalised to rows summing to 1."""
        with torch.no_grad():
            D = self._distances(self._check_X(X)).double()
            return self._proba_from_distances(D).cpu().numpy()


def rows_summing_to_one(M: torch.Tensor) -> torch.Tensor:
    """``M (n, k)`` divided by its row sums (an all-zero row stays zero)."""
    return M / M.sum(1, keepdim=True).clamp_min(1e-300 if M.dtype == torch.float64 else 1e-30)


def _grid_coords(h: int, w: int, device) -> torch.Tensor:
    r = torch.arange(h, device=device).repeat_interleave(w)
    c = torch.arange(w, device=device).repeat(h)
    return torch.stack([r, c], 1).float()


@register("Q", {"grid_size": 3, "max_iter": 200}, kind="clusterer", gradient=False)
class SOM(UnsupervisedModel):
    """The simple online self-organizing map (Kohonen 1982) on a square grid.

    Each step draws one sample, finds its best matching unit and moves every unit towards it by
    ``learning_rate_t * exp(-g^2 / (2 sigma_t^2))`` (``g`` the grid distance to the BMU);
    ``learning_rate`` and ``sigma`` decay as ``x0 / (1 + 2 t / max_iter)``. ``grid_size=None`` uses
    ``int(sqrt(5 sqrt(n)))``, ``max_iter=None`` uses ``500 * grid_size**2``. ``prototypes_`` is
    ``(grid_size**2, d)`` in row-major grid order; ``weights_`` the ``(g, g, d)`` view;
    ``loss_history_`` the quantization error every ``max(1, max_iter // 50)`` steps. See
    :mod:`lvq.som_utils` for U-matrix, hit map and component planes. Parameter names are the
    published library's (``learning_rate``, ``random_state``).
    """

    _own_params = {
        "grid_size": None,
        "max_iter": None,
        "learning_rate": 0.5,
        "sigma": 1.0,
        "random_state": None,
        "device": "auto",
    }
    _seed_param = "random_state"

    def _validate(self):
        check_int("grid_size", self.grid_size, 1, allow_none=True)
        check_int("max_iter", self.max_iter, 1, allow_none=True)
        check_number("learning_rate", self.learning_rate, 0.0)
        check_number("sigma", self.sigma, 0.0)

    @property
    def grid_shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the fitted grid."""
        blockops.check_is_fitted(self, "prototypes_")
        g = int(self._state["grid"].shape[0])
        return (g, g)

    def _grid_side(self, n: int) -> int:
        return int(self.grid_size or max(1, int(math.sqrt(5 * math.sqrt(n)))))

    def _asked_prototypes(self, X):
        g = self._grid_side(X.shape[0])
        if self.grid_size:
            return g * g, f"grid_size={g}: a {g}x{g} grid"
        return g * g, f"grid_size=None: a {g}x{g} grid for {X.shape[0]} samples"

    def _fit(self, X, gen, init):
        n = X.shape[0]
        g = self._grid_side(n)
        T = self.max_iter or 500 * g * g
        coords = _grid_coords(g, g, X.device)
        G2 = torch.cdist(coords, coords).pow(2).to(X.dtype)
        if init is None:
            W = (
                _random_rows(X, g * g, gen)
                if n >= g * g
                else X[torch.randint(n, (g * g,), generator=gen, device=X.device)].clone()
            )
        else:
            if init.shape[0] != g * g:
                raise ValueError(f"initial_prototypes needs {g * g} rows, got {init.shape[0]}")
            W = init.clone()  # updated in place below: never write into the caller's array
        order = torch.randint(n, (T,), generator=gen, device=X.device)
        lr0, s0 = float(self.learning_rate), float(self.sigma)
        every = max(1, T // 50)
        history = []
        for t in range(T):
            x = X[order[t]]
            decay = 1.0 / (1.0 + 2.0 * t / T)
            bmu = int(((W - x) ** 2).sum(1).argmin())
            h = torch.exp(-G2[bmu] / (2.0 * (s0 * decay) ** 2))
            W += (lr0 * decay) * h[:, None] * (x - W)
            if (t + 1) % every == 0 or t == T - 1:
                history.append(float(squared_euclidean(X, W).min(1).values.mean()))
        self._state = {"prototypes": W, "grid": torch.zeros(g, dtype=torch.long)}
        return history

    def _publish(self):
        super()._publish()
        g = self.grid_shape[0]
        self.weights_ = self.prototypes_.reshape(g, g, -1)

    def bmu_coordinates(self, X: Any) -> np.ndarray:
        """Grid ``(row, col)`` of every sample's best matching unit ``(n, 2)``."""
        idx = self.predict(X)
        g = self.grid_shape[1]
        return np.stack([idx // g, idx % g], 1)
