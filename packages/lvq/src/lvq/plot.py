"""Plots (matplotlib extra: ``pip install lvq[plot]``, imported only when a plot is drawn):
2-D decision boundary, relevance profile, Λ matrix, prototype trajectories, neural gas and SOM
grids in 2-D data space and loss histories. Every function returns the matplotlib ``Axes`` and
accepts ``ax=`` to draw into an existing one, except the summaries :func:`plot_som_summary` and
:func:`plot_lvq_summary`, which draw a new ``Figure`` of several panels and return it.
(U-matrix, hit map and component planes of a SOM are in :mod:`lvq.som_utils`.)
"""

from __future__ import annotations

from typing import Any

import blockops
import numpy as np
import torch

__all__ = [
    "plot_decision_boundary_2d",
    "plot_lambda_matrix",
    "plot_loss_history",
    "plot_lvq_summary",
    "plot_neural_gas",
    "plot_prototype_trajectory",
    "plot_relevance_profile",
    "plot_som_grid",
    "plot_som_loss",
    "plot_som_summary",
]


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("lvq plots need matplotlib: pip install lvq[plot]") from exc
    return plt


def _host(values: Any) -> Any:
    """A tensor as a numpy array on the host (numpy cannot read a CUDA tensor:
    ``np.asarray`` of one raises); anything else unchanged."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return values


def _axes(ax):
    if ax is None:
        _, ax = _plt().subplots(figsize=(5, 4))
    return ax


def plot_decision_boundary_2d(
    model: Any, X: Any, y: Any, ax: Any = None, resolution: int = 200, margin: float = 0.5
):
    """Decision regions of a fitted classifier on 2-D data, with the samples and the prototypes.

    A one-class model colours every non-target label of ``y`` as its outlier class; the
    prototypes of models that keep them in a backbone's embedding (LVQMLN, PLVQ) are not drawn.
    """
    _plt()
    X = np.asarray(_host(X), dtype=np.float64)
    y = np.asarray(_host(y))
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary_2d needs 2-D data (n, 2), got shape {X.shape}")
    if getattr(model, "_estimator_type", None) == "clusterer":
        raise TypeError(
            f"plot_decision_boundary_2d draws the classes of a classifier; {type(model).__name__} "
            "is a clusterer (colour X by its predict(X) instead)"
        )
    blockops.check_is_fitted(model, "classes_")
    ax = _axes(ax)
    lo, hi = X.min(0) - margin, X.max(0) + margin
    gx, gy = np.meshgrid(
        np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    )
    grid = np.c_[gx.ravel(), gy.ravel()]
    codes = (
        np.searchsorted(model.classes_, model.predict(grid))
        if model.classes_.dtype.kind in "iuf"
        else (np.array([list(model.classes_).index(v) for v in model.predict(grid)]))
    )
    ax.contourf(
        gx,
        gy,
        codes.reshape(gx.shape),
        alpha=0.25,
        levels=np.arange(len(model.classes_) + 1) - 0.5,
        cmap="tab10",
        vmin=-0.5,
        vmax=9.5,
    )
    ax.scatter(
        X[:, 0],
        X[:, 1],
        c=_label_codes(model, y),
        cmap="tab10",
        vmin=-0.5,
        vmax=9.5,
        s=12,
        edgecolors="none",
    )
    P = np.asarray(model.prototypes_)
    # LVQMLN / PLVQ keep their prototypes in the backbone's embedding: no input coordinates
    if getattr(model, "_siamese", True) and P.ndim == 2 and P.shape[1] == X.shape[1]:
        pcodes = np.array([list(model.classes_).index(v) for v in model.prototype_labels_])
        ax.scatter(
            P[:, 0],
            P[:, 1],
            c=pcodes,
            cmap="tab10",
            vmin=-0.5,
            vmax=9.5,
            marker="D",
            s=80,
            edgecolors="black",
            linewidths=1.5,
            label="prototypes",
        )
        ax.legend(loc="best")
    ax.set_title(f"{type(model).__name__} decision regions")
    return ax


def _label_codes(model: Any, y: np.ndarray) -> np.ndarray:
    """Colour codes of the labels ``y`` (positions in ``model.classes_``). A one-class model
    colours every non-target label as its outlier class; another label not in ``classes_`` is
    an error naming it."""
    if hasattr(model, "target_label_"):
        return model._encode(y).numpy()
    classes = list(model.classes_)
    unknown = [v for v in dict.fromkeys(y.tolist()) if v not in classes]
    if unknown:
        raise ValueError(
            f"y holds labels the model was not fitted with: {unknown[:5]}; classes: {classes[:10]}"
        )
    return np.array([classes.index(v) for v in y])


def plot_relevance_profile(model: Any, feature_names: Any = None, ax: Any = None):
    """Bar chart of ``model.relevance_profile`` (GRLVQ relevances or the diagonal of Λ)."""
    _plt()
    prof = np.asarray(model.relevance_profile)
    if prof.ndim != 1:
        prof = prof.mean(0)
    ax = _axes(ax)
    names = list(feature_names) if feature_names is not None else [str(i) for i in range(len(prof))]
    ax.bar(range(len(prof)), prof)
    ax.set_xticks(range(len(prof)))
    ax.set_xticklabels(names, rotation=90 if len(prof) > 12 else 0)
    ax.set_ylabel("relevance")
    ax.set_title(f"{type(model).__name__} relevance profile")
    return ax


def plot_lambda_matrix(model: Any, ax: Any = None, prototype: int | None = None):
    """Heat map of Λ (of one prototype for local models; their mean when ``prototype`` is None)."""
    _plt()
    lam = np.asarray(model.lambda_matrix)
    if lam.ndim == 3:
        lam = lam.mean(0) if prototype is None else lam[prototype]
    ax = _axes(ax)
    bound = np.abs(lam).max() or 1.0
    im = ax.imshow(lam, cmap="RdBu_r", vmin=-bound, vmax=bound)
    ax.figure.colorbar(im, ax=ax)
    ax.set_title(f"{type(model).__name__} Λ (trace {np.trace(lam):.2f})")
    return ax


def plot_prototype_trajectory(trajectory: Any, X: Any = None, y: Any = None, ax: Any = None):
    """Paths of the prototypes over training (first two coordinates), from
    :class:`lvq.PrototypeTrajectory` (``trajectory`` of shape ``(frames, P, d)``)."""
    _plt()
    T = np.asarray(_host(getattr(trajectory, "trajectory", trajectory)))
    if T.ndim != 3 or T.shape[2] < 2:
        raise ValueError(f"trajectory must have shape (frames, P, d >= 2), got {T.shape}")
    ax = _axes(ax)
    if X is not None:
        X = np.asarray(_host(X))
        ax.scatter(
            X[:, 0],
            X[:, 1],
            c=None if y is None else np.unique(_host(y), return_inverse=True)[1],
            cmap="tab10",
            s=8,
            alpha=0.4,
        )
    for k in range(T.shape[1]):
        ax.plot(T[:, k, 0], T[:, k, 1], "-", lw=1.5)
        ax.plot(T[-1, k, 0], T[-1, k, 1], "D", ms=8, mec="black")
    ax.set_title("prototype trajectories")
    return ax


def _points_2d(func: str, X: Any) -> np.ndarray:
    """``X`` as a float64 ``(n, 2)`` array, or a ValueError naming its shape."""
    X = np.asarray(_host(X), dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"{func} needs 2-D data X of shape (n, 2), got shape {X.shape}")
    return X


def _prototypes_2d(func: str, model: Any, hint: str) -> np.ndarray:
    """The fitted prototypes ``(P, 2)`` of an unsupervised model (2-D data space)."""
    if getattr(model, "_estimator_type", None) != "clusterer":
        raise TypeError(
            f"{func} draws the prototypes of an unsupervised model; {type(model).__name__} is "
            "not one (use plot_decision_boundary_2d for a classifier)"
        )
    blockops.check_is_fitted(model, "prototypes_")
    P = np.asarray(_host(model.prototypes_), dtype=np.float64)
    if P.ndim != 2 or P.shape[1] != 2:
        raise ValueError(
            f"{func} draws prototypes in 2-D data space; {type(model).__name__} was fitted with "
            f"{P.shape[-1]} features (prototypes of shape {P.shape}){hint}"
        )
    return P


def plot_neural_gas(model: Any, X: Any, ax: Any = None):
    """2-D data ``X (n, 2)`` coloured by best matching prototype, the prototypes (diamonds)
    and, for :class:`~lvq.models.topology.GrowingNeuralGas`, the edges of its graph
    (``edges_``, one line per edge).

    Takes any fitted unsupervised model whose prototypes live in the 2-D data space
    (NeuralGas, DKNeuralGas, GrowingNeuralGas, the clusterers); data with another number of
    columns is a ValueError naming its shape.
    """
    _plt()
    from matplotlib.collections import LineCollection

    X = _points_2d("plot_neural_gas", X)
    P = _prototypes_2d("plot_neural_gas", model, "")
    ax = _axes(ax)
    ax.scatter(
        X[:, 0], X[:, 1], c=model.predict(X), cmap="tab20", s=10, alpha=0.6, edgecolors="none"
    )
    edges = getattr(model, "edges_", None)
    if edges is not None:
        i, j = np.nonzero(np.triu(np.asarray(_host(edges), dtype=bool), 1))
        ax.add_collection(
            LineCollection(np.stack([P[i], P[j]], 1), colors="black", linewidths=1.0, label="edges")
        )
    ax.scatter(
        P[:, 0],
        P[:, 1],
        marker="D",
        s=50,
        c="tab:red",
        edgecolors="black",
        zorder=3,
        label="prototypes",
    )
    ax.legend(loc="best")
    ax.set_title(f"{type(model).__name__} ({len(P)} prototypes)")
    return ax


def plot_som_grid(som: Any, X: Any = None, ax: Any = None):
    """A fitted SOM in 2-D data space: every unit at its prototype, joined to its 4-connected
    grid neighbours (``rows * (cols - 1) + (rows - 1) * cols`` lines), over the data ``X``
    when given.

    Takes KohonenSOM, HeskesSOM, their DK versions and the simple SOM fitted on 2-D data; for
    more features draw the map with :func:`lvq.som_utils.plot_umatrix` or
    :func:`lvq.som_utils.plot_component_planes` instead.
    """
    _plt()
    from matplotlib.collections import LineCollection

    if getattr(som, "_estimator_type", None) == "clusterer" and not hasattr(
        type(som), "grid_shape"
    ):
        raise TypeError(
            f"plot_som_grid draws a self-organizing map; {type(som).__name__} has no grid "
            "(use plot_neural_gas)"
        )
    hint = "; use lvq.som_utils.plot_umatrix or plot_component_planes"
    P = _prototypes_2d("plot_som_grid", som, hint)
    h, w = som.grid_shape
    W = P.reshape(h, w, 2)
    if X is not None:
        X = _points_2d("plot_som_grid", X)
    ax = _axes(ax)
    if X is not None:
        ax.scatter(X[:, 0], X[:, 1], c="0.6", s=8, alpha=0.6, edgecolors="none")
    rows = np.stack([W[:, :-1], W[:, 1:]], 2).reshape(-1, 2, 2)
    cols = np.stack([W[:-1], W[1:]], 2).reshape(-1, 2, 2)
    ax.add_collection(
        LineCollection(
            np.concatenate([rows, cols]), colors="tab:blue", linewidths=1.0, label="grid"
        )
    )
    ax.scatter(P[:, 0], P[:, 1], s=25, c="tab:blue", edgecolors="black", zorder=3, label="units")
    ax.autoscale_view()
    ax.legend(loc="best")
    ax.set_title(f"{type(som).__name__} {h}x{w} map")
    return ax


def plot_loss_history(model: Any, ax: Any = None):
    """The training loss of every epoch (``loss_history_``: the loss of the gradient-trained
    models, the energy / objective / quantization error of the unsupervised ones) and, when the
    model was fitted with validation data, ``val_loss_history_``.

    Also available as ``plot_som_loss`` (the published library's name), the same function.
    """
    _plt()
    blockops.check_is_fitted(model, "loss_history_")
    hist = np.asarray(model.loss_history_, dtype=np.float64)
    ax = _axes(ax)
    ax.plot(np.arange(1, len(hist) + 1), hist, "-", label="training")
    val = getattr(model, "val_loss_history_", None)
    if val is not None and len(val):
        val = np.asarray(val, dtype=np.float64)
        ax.plot(np.arange(1, len(val) + 1), val, "--", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(loc="best")
    ax.set_title(f"{type(model).__name__} loss history")
    return ax


plot_som_loss = plot_loss_history
"""The published library's name for :func:`plot_loss_history` (the same function)."""


def _features(func: str, model: Any, X: Any) -> np.ndarray:
    """``X`` as a float64 ``(n, n_features_in_)`` array, or a ValueError naming its shape."""
    X = np.asarray(_host(X), dtype=np.float64)
    d = int(model.n_features_in_)
    if X.ndim != 2 or X.shape[1] != d:
        raise ValueError(
            f"{func}: {type(model).__name__} was fitted with {d} features, so X must have shape "
            f"(n, {d}); got shape {X.shape}"
        )
    return X


def plot_som_summary(som: Any, X: Any = None):
    """One figure summarising a fitted self-organizing map: the U-matrix
    (:func:`lvq.som_utils.plot_umatrix`), the hit map of ``X`` when given
    (:func:`lvq.som_utils.plot_hit_map`) and the loss history (:func:`plot_loss_history`),
    left to right. Returns the matplotlib ``Figure`` (its ``axes`` hold the panels and the
    U-matrix's colour bar).

    Takes KohonenSOM, HeskesSOM, their DK versions and the simple SOM, on data of any
    dimension. A model without a grid is a TypeError, an unfitted one a ``NotFittedError``,
    ``X`` without the map's ``n_features_in_`` columns a ValueError naming its shape.
    """
    plt = _plt()
    from . import som_utils

    if getattr(som, "_estimator_type", None) != "clusterer" or not hasattr(type(som), "grid_shape"):
        raise TypeError(
            f"plot_som_summary summarises a self-organizing map; {type(som).__name__} has no "
            "grid (use plot_neural_gas or plot_loss_history)"
        )
    blockops.check_is_fitted(som, "prototypes_")
    if X is not None:
        X = _features("plot_som_summary", som, X)
    n = 2 if X is None else 3
    fig, axes = plt.subplots(1, n, figsize=(4.5 * n, 4), squeeze=False)
    axes = list(axes.flat)
    som_utils.plot_umatrix(som, ax=axes[0])
    if X is not None:
        som_utils.plot_hit_map(som, X, ax=axes[1])
    plot_loss_history(som, ax=axes[-1])
    h, w = som.grid_shape
    fig.suptitle(f"{type(som).__name__} {h}x{w} map")
    fig.tight_layout()
    return fig


def plot_lvq_summary(model: Any, X: Any, y: Any):
    """One figure summarising a fitted classifier (supervised or one-class), left to right:

    * the decision regions on ``X`` (:func:`plot_decision_boundary_2d`) when the model was
      fitted on 2-D data (not for the Riemannian models, whose points are no plane);
    * the loss history (:func:`plot_loss_history`; a model that trains none, such as KNN, gets
      a panel saying so);
    * the relevance profile (:func:`plot_relevance_profile`) of the models that have one (GRLVQ,
      the matrix models: the diagonal of Λ, ...);
    * the Λ matrix (:func:`plot_lambda_matrix`, the mean over prototypes for the local models)
      of the matrix models (not of the relevance models, whose Λ is ``diag(λ)``).

    Returns the matplotlib ``Figure`` (its ``axes`` hold the panels and the Λ colour bar). A
    clusterer is a TypeError, an unfitted model a ``NotFittedError``; ``X`` without the model's
    ``n_features_in_`` columns, a ``y`` of another length or with a label the model does not
    know is a ValueError.
    """
    plt = _plt()
    if getattr(model, "_estimator_type", None) == "clusterer":
        raise TypeError(
            f"plot_lvq_summary summarises a classifier; {type(model).__name__} is a clusterer "
            "(use plot_som_summary, plot_neural_gas or plot_loss_history)"
        )
    if not hasattr(model, "predict") or not hasattr(model, "fit"):
        raise TypeError(
            f"plot_lvq_summary summarises a fitted lvq classifier, got {type(model).__name__}"
        )
    blockops.check_is_fitted(model, ["prototypes_", "classes_"])
    X = _features("plot_lvq_summary", model, X)
    y = np.asarray(_host(y))
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(
            f"plot_lvq_summary needs y of shape ({len(X)},) matching X, got shape {y.shape}"
        )
    boundary = X.shape[1] == 2 and getattr(model, "manifold", None) is None
    if boundary:
        _label_codes(model, y)  # an unknown label fails here, before a figure is drawn
    kind = type(model)
    relevance = hasattr(kind, "relevance_profile")
    from .models.glvq import RelevanceMixin

    # the relevance models' Λ is diag(λ): the relevance profile says it all
    lam = hasattr(kind, "lambda_matrix") and not issubclass(kind, RelevanceMixin)
    n = int(boundary) + 1 + int(relevance) + int(lam)
    fig, axes = plt.subplots(1, n, figsize=(4.5 * n, 4), squeeze=False)
    axes = iter(axes.flat)
    if boundary:
        plot_decision_boundary_2d(model, X, y, ax=next(axes))
    ax = next(axes)
    if len(getattr(model, "loss_history_", ())):
        plot_loss_history(model, ax=ax)
    else:
        ax.text(0.5, 0.5, "no training loss", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        ax.set_title(f"{type(model).__name__} loss history")
    if relevance:
        plot_relevance_profile(model, ax=next(axes))
    if lam:
        plot_lambda_matrix(model, ax=next(axes))
    fig.tight_layout()
    return fig
