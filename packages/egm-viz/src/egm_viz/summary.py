"""``plot_class_energy``: per-class summary of a fitted EGM model's growth, session by session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._model import BankView, read_model
from ._output import (
    STATIC_SUFFIXES,
    check_figsize,
    check_positive,
    class_colors,
    closing_on_error,
    fitted_legend,
    lighten,
    new_figure,
    output_suffix,
    plural,
    save_static,
)
from .explosion import _resolve_classes

_PAD = 13.0  # points between a panel and its title: room for the session labels (s0, s1, ...)


def history_matrix(view: BankView, key: str) -> np.ndarray:
    """``(n_history, n_classes)`` float matrix of a per-class history entry (NaN where absent).

    Classes added by a later ``partial_fit`` have no value in earlier iterations.

    Raises:
        ValueError: ``key`` holds one number per iteration (``"rejected"``, ``"session"``),
            not one per class.
    """
    out = np.full((len(view.history), view.n_classes), np.nan)
    for t, entry in enumerate(view.history):
        values = entry.get(key)
        if values is None:
            continue
        if np.ndim(values) != 1:
            raise ValueError(
                f"history entry {key!r} is not a per-class list (iteration {t + 1} holds "
                f"{values!r}); per-class entries are e.g. 'class_counts', 'radius', 'energy'"
            )
        values = np.asarray(values, dtype=np.float64)[: view.n_classes]
        out[t, : values.size] = values
    return out


def synthetic_counts(view: BankView) -> np.ndarray:
    """``(n_iterations, n_classes)`` synthetic points in the bank per growth iteration and class."""
    counts = np.zeros((view.n_iterations, view.n_classes), dtype=np.int64)
    synth = ~view.is_real & (view.generation >= 1)
    np.add.at(counts, (view.generation[synth] - 1, view.y[synth]), 1)
    return counts


def _session_bounds(view: BankView) -> list[tuple[int, int]]:
    """(first iteration, session) at every session change, iterations counted from 1."""
    out: list[tuple[int, int]] = []
    last = None
    for t in range(1, len(view.history) + 1):
        s = view.session_of(t)
        if s is not None and s != last:
            out.append((t, s))
            last = s
    return out


def _spaced_labels(bounds: list[tuple[int, int]], pt_per_iter: float) -> list[tuple[int, int]]:
    """The session labels ``s<n>`` (7 pt text) that fit without overprinting the previous one
    (many short sessions would otherwise run into each other)."""
    kept: list[tuple[int, int]] = []
    for first, session in bounds:
        if kept:
            prev_first, prev_session = kept[-1]
            width = 4.5 * (len(f"s{prev_session}") + 1)  # ~0.64 em per character at 7 pt
            if (first - prev_first) * pt_per_iter < width:
                continue
        kept.append((first, session))
    return kept


def _note(ax: Any, text: str) -> None:
    """Say in the middle of an empty panel why it is empty."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


def plot_class_energy(
    model: Any,
    *,
    classes: Any = None,
    save_path: str | Path | None = None,
    show: bool = False,
    dpi: float = 100,
    figsize: tuple[float, float] = (11.0, 7.5),
    fig: Any = None,
    title: str | None = None,
    legend: bool = True,
) -> Any:
    """Summary figure of a fitted model's growth, per class and per session.

    Four panels, all read from the fitted model (nothing is recomputed):

    1. the bank per class: real versus synthetic points;
    2. synthetic points in the bank per growth iteration, stacked by class, with the session
       boundaries (``fit``, ``continue_fit``, ``partial_fit``) as dashed lines;
    3. the radius of each class per growth iteration (``history_``);
    4. the energy of each class per growth iteration (``history_``; a gap where the class
       made no synthetic point in that iteration).

    Args:
        model: a fitted ``egm_core.PyEGM`` (or an object with the same fitted attributes).
        classes: labels to show (default all).
        save_path: write the figure; suffix ``.png``, ``.svg`` or ``.pdf``.
        show: open a window (``plt.show()``); off by default.
        dpi: resolution of the saved file.
        figsize: figure size in inches (of a new figure; unused with ``fig``).
        fig: draw the four panels into this empty matplotlib ``Figure`` or ``SubFigure`` (one
            of ``fig.subfigures(...)``, say) instead of a new figure; ``save_path`` then writes
            the whole figure it belongs to.
        title: title of the figure (default: a summary of the bank and its growth; ``""``: no
            title).
        legend: draw the legend of classes and session lines beside the panels; ``False``
            leaves it out and gives the panels its width.

    Returns:
        The matplotlib ``Figure`` (``fig`` when given).

    Raises:
        TypeError: ``model`` is not an EGM model (no ``trend_paths``, no bank), or ``fig`` is
            not a matplotlib ``Figure`` or ``SubFigure``.
        NotFittedError: ``model`` is not fitted.
        ValueError: unknown classes or an unsupported ``save_path`` suffix.
    """
    suffix = output_suffix(save_path)
    if suffix is not None and suffix not in STATIC_SUFFIXES:
        raise ValueError(f"plot_class_energy saves {STATIC_SUFFIXES}, got {str(save_path)!r}")
    dpi = check_positive("dpi", dpi, integer=False)
    figsize = check_figsize(figsize)
    view = read_model(model)
    chosen = _resolve_classes(view, classes)
    colors = class_colors(view.n_classes)
    names = [str(view.classes[c]) for c in chosen]

    own_figure = fig is None
    if own_figure:
        fig = new_figure(figsize, show)
    else:
        from matplotlib.figure import FigureBase

        if not isinstance(fig, FigureBase):
            raise TypeError(
                f"fig must be a matplotlib Figure or SubFigure, got {type(fig).__name__} "
                "(for an Axes, pass ax.figure)"
            )
    axes = fig.subplots(2, 2)
    fig.subplots_adjust(
        left=0.07, right=0.83 if legend else 0.97, bottom=0.08, top=0.9, hspace=0.4, wspace=0.25
    )
    ax_bank, ax_grow, ax_rad, ax_en = axes.ravel()

    real = np.array([np.sum(view.is_real & (view.y == c)) for c in chosen])
    synth = np.array([np.sum(~view.is_real & (view.y == c)) for c in chosen])
    xs = np.arange(len(chosen))
    ax_bank.bar(xs, real, color=[colors[c] for c in chosen], label="real", gid="bank:real")
    ax_bank.bar(
        xs,
        synth,
        bottom=real,
        color=[lighten(colors[c], 0.55) for c in chosen],
        hatch="//",
        edgecolor="white",
        label="synthetic",
        gid="bank:synthetic",
    )
    ax_bank.set_xticks(xs, names, rotation=45 if len(names) > 6 else 0, fontsize=8)
    ax_bank.set_ylabel("points in the bank")
    ax_bank.set_title("bank per class (solid real, hatched synthetic)", fontsize=10, pad=_PAD)

    from matplotlib.collections import PolyCollection

    counts = synthetic_counts(view)
    left = np.arange(1, view.n_iterations + 1) - 0.85 / 2
    right = left + 0.85
    bottom = np.zeros(view.n_iterations)
    for c in chosen:  # one collection per class: 1 600 separate bars (40 x 40) took over 1 s
        top = bottom + counts[:, c]
        corners = [(left, bottom), (right, bottom), (right, top), (left, top)]
        layer = PolyCollection(
            np.stack([np.stack(xy, axis=-1) for xy in corners], axis=1),
            facecolors=[colors[c]],
            gid=f"grow:{c}",
        )
        layer.sticky_edges.y.extend(bottom.tolist())  # as ``bar``: no margin below a bar
        ax_grow.add_collection(layer)
        bottom = top
    if not counts[:, chosen].any():  # no growth yet, or all of it evicted by max_samples
        _note(ax_grow, "no synthetic points in the bank")
    ax_grow.set_xlabel("growth iteration")
    ax_grow.set_ylabel("synthetic points in the bank")
    ax_grow.set_title("growth per iteration, stacked by class", fontsize=10, pad=_PAD)

    grown = history_matrix(view, "class_counts")
    for ax, key, label in ((ax_rad, "radius", "radius"), (ax_en, "energy", "energy")):
        values = history_matrix(view, key)
        if key == "energy" and grown.shape == values.shape:
            # a class that made no point in an iteration spent no energy: leave a gap
            values = np.where(grown == 0, np.nan, values)
        t = np.arange(1, values.shape[0] + 1)
        if values.size and np.isfinite(values[:, chosen]).any():
            for c in chosen:
                ax.plot(
                    t, values[:, c], marker="o", ms=3, lw=1.4, color=colors[c], gid=f"{key}:{c}"
                )
        else:
            _note(ax, f"no {key} recorded in history_")
        ax.set_xlabel("growth iteration")
        ax.set_ylabel(label)
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.set_title(f"{label} per class and iteration", fontsize=10, pad=_PAD)

    from matplotlib.ticker import MaxNLocator

    bounds = _session_bounds(view)
    for ax in (ax_grow, ax_rad, ax_en):
        ax.tick_params(labelsize=8)
        # iterations: no 1.5, and one tick (1) is enough for a single iteration
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if view.n_iterations:
            ax.set_xlim(0.4, view.n_iterations + 0.6)
        for first, _ in bounds:
            if first > 1:
                ax.axvline(first - 0.5, color="0.3", ls="--", lw=0.9)
        width_pt = ax.bbox.width / fig.dpi * 72.0
        for first, session in _spaced_labels(bounds, width_pt / (view.n_iterations + 0.2)):
            ax.annotate(
                f"s{session}",
                (first - 0.4, 1.0),
                xycoords=("data", "axes fraction"),
                fontsize=7,
                color="0.3",
                va="bottom",
            )
    ax_bank.tick_params(labelsize=8)

    if legend:
        from matplotlib.lines import Line2D

        handles = [
            Line2D([], [], ls="", marker="s", color=colors[c], label=n)
            for c, n in zip(chosen, names)
        ]
        if any(first > 1 for first, _ in bounds):  # a session line is drawn
            handles.append(Line2D([], [], color="0.3", ls="--", label="new session"))
        fitted_legend(
            fig,
            handles,
            0.91 * fig.bbox.height,  # from its top at 0.92 down to the figure's foot
            loc="upper left",
            bbox_to_anchor=(0.845, 0.92),
            fontsize=8,
            frameon=False,
        )
    if title is None:
        shown = (
            f" ({len(chosen)} of {view.n_classes} classes)" if len(chosen) < view.n_classes else ""
        )
        title = (
            f"EGM growth summary: {int(real.sum())} real + {int(synth.sum())} synthetic points"
            f"{shown}, {plural(view.n_iterations, 'growth iteration')}"
        )
    if title:
        fig.suptitle(title, fontsize=11)
    if suffix is not None:
        with closing_on_error(fig, show and own_figure):
            save_static(fig.canvas.figure, save_path, dpi=dpi)  # the root of a SubFigure
    if show:
        import matplotlib.pyplot as plt

        plt.show()
    return fig
