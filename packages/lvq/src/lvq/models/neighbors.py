"""Family Q (supervised part): KNN and NPC under the same estimator conventions and persistence."""

from __future__ import annotations

from typing import Any

import blockops
import numpy as np
import torch

from .._checks import is_number
from ..base import SupervisedPrototypeModel
from ..registry import register
from .classic import _Classic


@register("Q", {"n_neighbors": 3}, gradient=False)
class KNN(SupervisedPrototypeModel):
    """k-nearest-neighbour classifier; every training sample is a prototype.

    ``predict`` is the majority label of the ``n_neighbors`` nearest training samples (ties go
    to the first class in ``classes_``); ``predict_proba`` the vote frequencies. Search runs
    through :func:`blockops.knn` (exact, blocked).
    """

    _base_params = {"device": "auto"}
    _own_params = {"n_neighbors": 5}

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> KNN:
        """Store the training set (``sample_weight`` weights the votes)."""
        k = self.n_neighbors
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"n_neighbors must be a positive int, got {k!r}")
        device = blockops.resolve_device(self.device, name="device")
        Xt, y_arr = self._check_X_y(X, y, device)
        if k > Xt.shape[0]:
            raise ValueError(f"n_neighbors={k} is larger than n_samples={Xt.shape[0]}")
        self._encoder = blockops.LabelEncoder().fit(y_arr)
        self.classes_ = self._encoder.classes_
        self.n_classes_ = len(self.classes_)
        self.n_features_in_ = Xt.shape[1]
        self._device = device
        self._quantized = None
        self._plabels = self._encode(y_arr).to(device)
        self._params = {"prototypes": Xt.clone()}
        if sample_weight is not None:
            sw = blockops.as_tensor(sample_weight, name="sample_weight", ndim=1, device=device)
            if sw.shape[0] != Xt.shape[0] or bool((sw < 0).any()):
                raise ValueError("sample_weight must be non-negative with one entry per row of X")
            if not float(sw.sum()) > 0:
                raise ValueError("sample_weight: all weights are zero; at least one must be > 0")
            self._params["vote_weights"] = sw
        self._optimizer_state = None
        self.n_iter_ = 0
        self.loss_history_, self.val_loss_history_ = [], []
        self.loss_ = self.best_loss_ = 0.0
        self._publish()
        return self

    @property
    def partial_fit(self):
        """KNN has no incremental fit (``hasattr(knn, "partial_fit")`` is False)."""
        raise AttributeError("KNN has no partial_fit; call fit with all the data")

    def _votes(self, X: Any) -> torch.Tensor:
        Xt = self._check_X(X)
        p = self._inference_params()
        k = min(int(self.n_neighbors), p["prototypes"].shape[0])
        _, idx = blockops.knn(Xt, p["prototypes"], k)
        w = p.get("vote_weights")
        w = torch.ones_like(idx, dtype=Xt.dtype) if w is None else w[idx]
        votes = torch.zeros(Xt.shape[0], self.n_classes_, dtype=torch.float64, device=Xt.device)
        return votes.scatter_add_(1, self._plabels.to(Xt.device)[idx], w.double()), idx, w

    def predict_proba(self, X: Any) -> np.ndarray:
        votes, _, _ = self._votes(X)
        return (votes / votes.sum(1, keepdim=True).clamp_min(1e-300)).cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        votes, _, _ = self._votes(X)
        return self._encoder.inverse_transform(votes.argmax(1).cpu())

    def inference_module(self) -> torch.nn.Module:
        """``X -> (class codes, vote frequencies)`` as a module (used by ``export_onnx``)."""
        blockops.check_is_fitted(self, "prototypes_")
        return _KNNModule(self)

    def decision_function(self, X: Any) -> np.ndarray:
        """Vote frequencies ``(n, C)``; for two classes ``p(class 1) - p(class 0)``."""
        proba = self.predict_proba(X)
        return proba[:, 1] - proba[:, 0] if self.n_classes_ == 2 else proba


@register("Q", {"max_iter": 5}, gradient=False)
class NPC(_Classic):
    """Nearest prototype classifier: one prototype per class, started at the class means and
    corrected by batch LVQ1 steps on the misclassified samples (the nearest prototype of the
    sample's class moves towards it, the winner away) until the training accuracy reaches
    ``tol`` or ``max_iter`` passes are done. ``predict_proba`` is the softmin of the class
    distances."""

    _base_params = {
        "max_iter": 10,
        "tol": 0.8,
        "lr": 0.1,
        "epsilon": 0.0,
        "random_seed": 42,
        "distance_fn": None,
        "callbacks": None,
        "device": "auto",
        "verbose": False,
    }
    _default_initializer = "class_mean"

    def _validate_params(self):
        super()._validate_params()
        if not is_number(self.tol) or not 0.0 <= float(self.tol) <= 1.0:
            raise ValueError(f"tol must lie in [0, 1], got {self.tol!r}")

    def _epoch(self, W, X, y, w, gen):
        d = self._make_distance()(X, W, {})
        win = d.argmin(1)
        wrong = self._plabels[win] != y
        accuracy = float(((~wrong).to(w) * w).sum() / w.sum())
        if accuracy >= float(self.tol) or not bool(wrong.any()):
            return False
        Xw, yw, ww, kw = X[wrong], y[wrong], w[wrong], win[wrong]
        # the nearest prototype of the sample's class (initial_labels may give a class several)
        other = self._plabels[None, :] != yw[:, None]
        own = d[wrong].masked_fill(other, float("inf")).argmin(1)
        num = torch.zeros_like(W)
        num.index_add_(0, own, ww[:, None] * (Xw - W[own]))
        num.index_add_(0, kw, -ww[:, None] * (Xw - W[kw]))
        cnt = torch.zeros(W.shape[0], dtype=W.dtype, device=W.device)
        cnt.index_add_(0, own, ww).index_add_(0, kw, ww)
        W += float(self.lr) * num / cnt.clamp_min(1e-12)[:, None] * (cnt > 0)[:, None]
        return True


class _KNNModule(torch.nn.Module):
    def __init__(self, model: KNN):
        super().__init__()
        p = model._inference_params()
        self.k = min(int(model.n_neighbors), p["prototypes"].shape[0])
        train_x = p["prototypes"].detach().float().cpu()
        # distances are translation invariant: centred, the expanded form below keeps its
        # digits for data far from the origin
        self.register_buffer("centre", train_x.mean(0))
        self.register_buffer("train_x", train_x - self.centre)
        onehot = torch.nn.functional.one_hot(model._plabels.cpu(), model.n_classes_).float()
        if "vote_weights" in p:
            onehot = onehot * p["vote_weights"].float().cpu()[:, None]
        self.register_buffer("votes", onehot)

    def forward(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        X = X - self.centre
        d = (
            (X * X).sum(1, keepdim=True)
            - 2.0 * X @ self.train_x.T
            + (self.train_x * self.train_x).sum(1)
        )
        idx = torch.topk(d, self.k, dim=1, largest=False).indices
        votes = self.votes[idx].sum(1)
        proba = votes / votes.sum(1, keepdim=True)
        return proba.argmax(1), proba
