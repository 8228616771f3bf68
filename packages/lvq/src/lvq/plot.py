"""Plots (matplotlib extra: ``pip install lvq[plot]``): 2-D decision boundary, relevance
profile, Λ matrix and prototype trajectories. Every function returns the matplotlib ``Axes``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


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
