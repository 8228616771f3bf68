"""Self-organizing map utilities: U-matrix, hit map and component planes as arrays, and their
plots (matplotlib, ``pip install lvq[plot]``, imported only when a plot is asked for).

Every function takes a fitted map (KohonenSOM, HeskesSOM, their DK versions or the simple SOM:
anything with ``prototypes_`` and ``grid_shape``) or a weight array ``(rows, cols, d)``.
"""

from __future__ import annotations

from typing import Any

import blockops
import numpy as np

from .plot import _host

__all__ = [
    "component_planes",
    "hit_map",
    "plot_component_planes",
    "plot_hit_map",
    "plot_umatrix",
    "quantization_error",
    "topographic_error",
    "umatrix",
]


def _grid(som: Any) -> tuple[int, int]:
    """``(rows, cols)`` of a fitted map; an unfitted or grid-less model is a clear error."""
    blockops.check_is_fitted(som, "prototypes_")
    if not hasattr(som, "grid_shape"):
        raise TypeError(
            f"{type(som).__name__} has no grid: the SOM utilities take a fitted KohonenSOM, "
            "HeskesSOM, their DK versions or SOM, or weights of shape (rows, cols, d)"
        )
    h, w = som.grid_shape
    return int(h), int(w)


def _weights(som: Any) -> np.ndarray:
    if hasattr(som, "get_params") or hasattr(som, "prototypes_"):  # a map, not weights
        h, w = _grid(som)
        return np.asarray(som.prototypes_, dtype=np.float64).reshape(h, w, -1)
    arr = np.asarray(_host(som), dtype=np.float64)
    if arr.ndim != 3:
        raise ValueError(
            f"expected a fitted SOM or weights of shape (rows, cols, d), got shape {arr.shape}"
        )
    return arr


def umatrix(som: Any) -> np.ndarray:
    """Unified distance matrix ``(rows, cols)``: mean Euclidean distance of every unit to its
    4-connected grid neighbours (large values mark cluster borders)."""
    W = _weights(som)
    h, w, _ = W.shape
    total = np.zeros((h, w))
    count = np.zeros((h, w))
    dv = np.linalg.norm(W[1:] - W[:-1], axis=-1)  # (h-1, w) vertical neighbours
    dh = np.linalg.norm(W[:, 1:] - W[:, :-1], axis=-1)  # (h, w-1)
    total[1:] += dv
    total[:-1] += dv
    count[1:] += 1
    count[:-1] += 1
    total[:, 1:] += dh
    total[:, :-1] += dh
    count[:, 1:] += 1
    count[:, :-1] += 1
    return total / np.maximum(count, 1)


def hit_map(som: Any, X: Any) -> np.ndarray:
    """Number of samples of ``X`` whose best matching unit is each unit ``(rows, cols)``."""
    h, w = _grid(som)
    idx = np.asarray(som.predict(X))
    return np.bincount(idx, minlength=h * w).reshape(h, w)


def _two_nearest(som: Any, X: Any, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance to the nearest unit ``(n,)`` and the flat indices of the two nearest
    units ``(n, 2)``, computed ``block`` rows at a time (memory bounded by ``block * units``)."""
    W = _weights(som)
    h, w, d = W.shape
    flat = W.reshape(-1, d)
    X = np.asarray(_host(X), dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != d:
        raise ValueError(f"expected X of shape (n, {d}) for this map, got shape {X.shape}")
    if h * w < 2:
        raise ValueError(f"the SOM errors need a map of at least 2 units, got {h}x{w}")
    sq = (flat * flat).sum(1)
    dist, idx = np.empty(len(X)), np.empty((len(X), 2), dtype=np.int64)
    for s in range(0, len(X), block):
        Xb = X[s : s + block]
        D = np.maximum((Xb * Xb).sum(1)[:, None] - 2.0 * Xb @ flat.T + sq, 0.0)
        two = np.argpartition(D, 1, axis=1)[:, :2]
        near = np.take_along_axis(D, two, 1)
        two = np.take_along_axis(two, np.argsort(near, axis=1), 1)
        idx[s : s + block] = two
        dist[s : s + block] = np.sqrt(np.take_along_axis(D, two[:, :1], 1)[:, 0])
    return dist, idx


def quantization_error(som: Any, X: Any) -> float:
    """Mean Euclidean distance of the rows of ``X`` to their nearest unit (MiniSom's
    ``quantization_error``; the models' ``score`` is minus the mean *squared* distance)."""
    return float(_two_nearest(som, X)[0].mean())


def topographic_error(som: Any, X: Any) -> float:
    """Share of the rows of ``X`` whose two nearest units are not 4-connected grid neighbours
    (MiniSom's rectangular ``topographic_error`` also counts diagonal neighbours)."""
    w = _weights(som).shape[1]
    r, c = np.divmod(_two_nearest(som, X)[1], w)
    return float(((np.abs(r[:, 0] - r[:, 1]) + np.abs(c[:, 0] - c[:, 1])) > 1).mean())


def component_planes(som: Any) -> np.ndarray:
    """The value of every feature on the grid ``(d, rows, cols)``."""
    return np.moveaxis(_weights(som), -1, 0).copy()


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("SOM plots need matplotlib: pip install lvq[plot]") from exc
    return plt


def plot_umatrix(som: Any, ax: Any = None, cmap: str = "bone_r") -> Any:
    """Draw the U-matrix; returns the matplotlib ``Axes``."""
    plt = _plt()
    ax = ax or plt.subplots(figsize=(4, 4))[1]
    im = ax.imshow(umatrix(som), cmap=cmap)
    ax.figure.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title("U-matrix")
    return ax


def plot_hit_map(som: Any, X: Any, ax: Any = None, cmap: str = "Blues") -> Any:
    """Draw the hit map of ``X`` with the counts written in the cells; returns the ``Axes``."""
    plt = _plt()
    hits = hit_map(som, X)
    ax = ax or plt.subplots(figsize=(4, 4))[1]
    ax.imshow(hits, cmap=cmap)
    for (r, c), v in np.ndenumerate(hits):
        ax.text(c, r, str(v), ha="center", va="center", fontsize=8)
    ax.set_title("hit map")
    return ax


def plot_component_planes(
    som: Any, feature_names: list[str] | None = None, cmap: str = "viridis"
) -> Any:
    """One panel per feature; returns the ``Figure``."""
    plt = _plt()
    planes = component_planes(som)
    d = planes.shape[0]
    if feature_names is not None and len(feature_names) != d:
        raise ValueError(
            f"feature_names has {len(feature_names)} names but the map has {d} features"
        )
    cols = min(d, 4)
    rows = -(-d // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for j, ax in enumerate(axes.flat):
        if j >= d:
            ax.axis("off")
            continue
        im = ax.imshow(planes[j], cmap=cmap)
        ax.set_title(feature_names[j] if feature_names else f"feature {j}")
        fig.colorbar(im, ax=ax, shrink=0.7)
    return fig
