"""Plots (``pip install continual[plot]``): result-matrix heat map, per-task metric over time."""

from __future__ import annotations

from typing import Any

import numpy as np

from .metrics import ResultMatrix

__all__ = ["plot_accuracy_matrix", "plot_task_curves"]


def _plt() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install continual[plot]") from exc
    return plt


def _matrix(matrix: ResultMatrix | Any) -> np.ndarray:
    """The square array of ``matrix`` (a 1-D or ragged one failed with an ``IndexError``)."""
    if isinstance(matrix, ResultMatrix):
        return matrix.R
    R = np.asarray(matrix, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise ValueError(
            f"matrix must be a ResultMatrix or a non-empty square array R[i, j], got shape "
            f"{R.shape}"
        )
    return R


def plot_accuracy_matrix(
    matrix: ResultMatrix | Any, ax: Any = None, title: str | None = None
) -> Any:
    """Heat map of ``R[i, j]`` (row: after training experience i; column: tested on j).

    Args:
        matrix: a :class:`~continual.ResultMatrix` or a square array.
        ax: matplotlib axes (a new figure if None).
        title: axes title.

    Returns:
        The axes.
    """
    plt = _plt()
    R = _matrix(matrix)
    if ax is None:
        _, ax = plt.subplots(figsize=(1 + 0.6 * R.shape[1], 1 + 0.5 * R.shape[0]))
    lo, hi = float(np.nanmin(R)), float(np.nanmax(R))
    im = ax.imshow(np.ma.masked_invalid(R), cmap="viridis", vmin=lo, vmax=hi)
    for i in range(R.shape[0]):
        for j in range(R.shape[1]):
            if not np.isnan(R[i, j]):
                bright = (R[i, j] - lo) / (hi - lo or 1.0) > 0.6
                color = "k" if bright else "w"
                ax.text(j, i, f"{R[i, j]:.2f}", ha="center", va="center", color=color, fontsize=8)
    ax.set_xlabel("tested on experience")
    ax.set_ylabel("after training experience")
    ax.set_xticks(range(R.shape[1]))
    ax.set_yticks(range(R.shape[0]))
    if title:
        ax.set_title(title)
    ax.figure.colorbar(im, ax=ax)
    return ax


def plot_task_curves(matrix: ResultMatrix | Any, ax: Any = None, title: str | None = None) -> Any:
    """The metric of each experience over training time (one line per tested experience).

    Args:
        matrix: a :class:`~continual.ResultMatrix` or a square array.
        ax: matplotlib axes (a new figure if None).
        title: axes title.

    Returns:
        The axes.
    """
    plt = _plt()
    R = _matrix(matrix)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    steps = np.arange(R.shape[0])
    for j in range(R.shape[1]):
        ax.plot(steps[j:], R[j:, j], marker="o", label=f"experience {j}")
    ax.set_xlabel("after training experience")
    ax.set_ylabel(matrix.metric if isinstance(matrix, ResultMatrix) else "metric")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    return ax
