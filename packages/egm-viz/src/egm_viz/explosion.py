"""``visualize_explosion``: the fitted EGM bank, its growth and its trend paths in 2-D."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from blockops import as_tensor, make_generator

from ._model import BankView, _plain, read_model
from ._output import (
    ANIMATED_SUFFIXES,
    check_figsize,
    check_positive,
    check_writer,
    class_colors,
    closing_on_error,
    fitted_legend,
    lighten,
    new_figure,
    output_suffix,
    plural,
    save_animation,
    save_static,
)
from .projection import PCA2D, check_projection, project

_UNKNOWN_COLOR = np.array([0.55, 0.55, 0.55, 1.0])
_GIF_MAX_MS = 655350.0  # the longest GIF frame, in milliseconds


def _group_quotas(counts: np.ndarray, n: int) -> np.ndarray:
    """``(g,)`` items to draw from groups of ``counts`` items, ``n`` in all (largest remainders).

    Every group gets at least one item when ``n`` is at least the number of groups.
    """
    exact = counts * n / counts.sum()
    quota = np.floor(exact).astype(np.int64)
    rest = n - int(quota.sum())
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[:rest]] += 1
    if n >= len(counts):
        for i in np.flatnonzero(quota == 0):
            quota[int(np.argmax(quota))] -= 1
            quota[i] = 1
    return quota


def stratified_subsample(groups: np.ndarray, n: int, generator: torch.Generator) -> np.ndarray:
    """Sorted indices of at most ``n`` items, drawn per group in proportion to its size.

    Every group gets at least one item when ``n`` is at least the number of groups; the
    draw inside each group is a ``torch.randperm`` from ``generator`` (deterministic for a
    seeded generator).

    Raises:
        ValueError: ``n`` is not an integer ``>= 0``, or ``groups`` is not 1-D.
        TypeError: ``generator`` is not a ``torch.Generator``.
    """
    n = check_positive("n", n, allow_zero=True)
    groups = np.asarray(groups)
    if groups.ndim != 1:
        raise ValueError(f"groups must be 1-D (one group per item), got shape {groups.shape}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator, got {type(generator).__name__} "
            "(blockops.make_generator(seed) makes one)"
        )
    total = len(groups)
    if total <= n:
        return np.arange(total)
    _, counts = np.unique(groups, return_counts=True)
    quota = _group_quotas(counts, n)
    # members of each group in index order, found by one stable sort (not one scan per group)
    members = np.split(np.argsort(groups, kind="stable"), np.cumsum(counts)[:-1])
    picks = []
    for idx, q in zip(members, quota):
        # drawn on the generator's device (a CUDA generator cannot drive a CPU draw)
        perm = torch.randperm(len(idx), generator=generator, device=generator.device).cpu().numpy()
        picks.append(idx[perm[:q]])
    return np.sort(np.concatenate(picks))


def _resolve_classes(view: BankView, classes: Any) -> np.ndarray:
    if classes is None:
        return np.arange(view.n_classes)
    if isinstance(classes, torch.Tensor):  # tensor(3) is not the label 3 as a dict key
        classes = classes.detach().cpu().tolist()
    if isinstance(classes, (set, frozenset)):  # np.ndim of a set is 0: not one label
        classes = list(classes)
    if isinstance(classes, (str, bytes)) or np.ndim(classes) == 0:
        classes = [classes]
    lookup = view.code_of()
    codes, unknown = [], []
    for label in list(classes):
        key = _plain(label)
        (codes.append(lookup[key]) if key in lookup else unknown.append(key))
    if unknown or not codes:
        raise ValueError(
            f"classes must be labels the model knows ({view.classes.tolist()}), got {unknown or classes!r}"
        )
    return np.array(sorted(set(codes)), dtype=np.int64)


@dataclass
class _Scene:
    """Artists of one picture and the frame logic that shows them step by step."""

    ax: Any
    n_iterations: int
    n_steps: int
    view: BankView
    synthetic: dict[int, Any] = field(default_factory=dict)
    vectors: dict[int, Any] = field(default_factory=dict)
    paths: list[tuple[Any, np.ndarray]] = field(default_factory=list)
    winners: list[Any] = field(default_factory=list)
    static_title: str = ""

    @property
    def n_growth_frames(self) -> int:
        return max(self.n_iterations, 1)

    @property
    def n_frames(self) -> int:
        return self.n_growth_frames + (self.n_steps if self.paths else 0)

    def frame(self, i: int) -> list[Any]:
        if i < self.n_growth_frames:
            title = self.growth(i + 1 if self.n_iterations else 0)
        else:
            s = i - self.n_growth_frames + 1
            for art in (*self.synthetic.values(), *self.vectors.values()):
                art.set_visible(True)
            for line, xy in self.paths:
                line.set_data(xy[: s + 1, 0], xy[: s + 1, 1])
                line.set_visible(True)
            for star in self.winners:
                star.set_visible(s == self.n_steps)
            title = f"trend paths: step {s}/{self.n_steps}"
        self.ax.set_title(title, fontsize=10)
        return [self.ax]

    def growth(self, t: int) -> str:
        """Show the bank as it was after growth iteration ``t`` (no paths); return a title."""
        for layer in (self.synthetic, self.vectors):
            for g, art in layer.items():
                art.set_visible(g <= t)
        for line, _ in self.paths:
            line.set_visible(False)
        for star in self.winners:
            star.set_visible(False)
        session = self.view.session_of(t)
        title = f"growth iteration {t}/{self.n_iterations}"
        if session is not None:
            title += f"  (session {session})"
        return title

    def final(self) -> None:
        self.frame(self.n_frames - 1)
        self.ax.set_title(self.static_title, fontsize=10)


def visualize_explosion(
    model: Any,
    X: Any = None,
    y: Any = None,
    *,
    projection: str | PCA2D = "pca",
    n_samples: int = 1000,
    path_steps: int | None = None,
    show_synthetic: bool = True,
    show_energy_vectors: bool = False,
    show_paths: bool = True,
    classes: Any = None,
    n_queries: int = 4,
    ax: Any = None,
    save_path: str | Path | None = None,
    show: bool = False,
    animate: bool | None = None,
    iteration: int | None = None,
    fps: float = 4,
    dpi: float = 100,
    figsize: tuple[float, float] = (9.0, 6.5),
    title: str | None = None,
    legend: bool = True,
    point_size: float = 18.0,
    random_state: Any = 0,
) -> Any:
    """Draw a fitted EGM model in 2-D: its bank, its growth and its trend paths.

    The picture shows what the fitted model holds, read once and never written to (nothing is
    re-simulated): real samples (filled circles, one colour per class), synthetic growth
    samples (smaller dots of the class colour, lighter for later growth iterations), energy
    vectors (arrows from each synthetic point's seed to the point, more opaque for more
    energy), and the trend paths of a few query points toward each candidate class (dashed),
    with the winning path drawn solid and ended by a star.

    One projection is fitted on the drawn bank points (real and synthetic) and applied to
    everything else. ``save_path`` decides the output by its suffix: ``.png``/``.svg``/``.pdf``
    write the picture; ``.gif`` (Pillow) and ``.mp4`` (ffmpeg from imageio-ffmpeg) write an
    animation with one frame per growth iteration (points appear generation by generation),
    then one frame per path step.

    Args:
        model: a fitted ``egm_core.PyEGM`` (or any object with the same fitted attributes and
            ``trend_paths``).
        X: optional samples ``(m, n_features_in_)`` to draw as diamonds; the trend paths start
            from some of them. Without ``X`` the paths start from real bank points.
        y: optional labels of ``X`` (colours the diamonds; grey for labels the model lacks).
        projection: ``"pca"`` (torch, no extra), ``"tsne"`` (``egm-viz[tsne]``),
            ``"umap"`` (``egm-viz[umap]``), or a fitted :class:`egm_viz.PCA2D` to draw
            several pictures in one shared plane.
        n_samples: at most this many bank points (and at most this many rows of ``X``) are
            drawn, subsampled per class and growth iteration with ``random_state``.
        path_steps: steps of the trend paths (``None``: the model's own setting).
        show_synthetic: draw the synthetic points.
        show_energy_vectors: draw seed-to-point arrows of the synthetic points.
        show_paths: compute and draw trend paths of ``n_queries`` query points.
        classes: labels to draw (default all); paths toward other classes are left out,
            except a winning one.
        n_queries: number of query points whose trend paths are drawn.
        ax: draw into these axes (static pictures and animations of their figure).
        save_path: where to write the picture or animation; the suffix picks the format.
        show: open a window (``plt.show()``); off by default, nothing is displayed.
        animate: return an animation even without an animated ``save_path`` (default:
            animate exactly when ``save_path`` ends in ``.gif`` or ``.mp4``).
        iteration: draw a static picture of the bank as it was after this growth iteration
            (0: real points only); the trend paths, which belong to the final model, are then
            left out. Default: the whole bank, with the paths. Points that a ``max_samples``
            bound of the model evicted since are gone from the bank and cannot be drawn.
        fps: frames per second of animations.
        dpi: resolution of saved files.
        figsize: figure size in inches when no ``ax`` is given.
        title: title of the static picture (default: a summary of what is drawn; ``""``: no
            title). Frames of an animation are titled by their growth iteration or path step.
        legend: draw the legend of classes and layers (beside the axes of a figure of its own,
            inside ``ax`` otherwise); ``False`` leaves it out, and a figure of its own then gives
            the axes its full width.
        point_size: marker area of real samples (synthetic points are smaller).
        random_state: seed of the subsampling, of the query choice and of t-SNE/UMAP: an
            int, ``None``, or a numpy ``Generator``/``RandomState`` or ``torch.Generator`` to
            draw one from (as egm-core's ``PyEGM`` accepts).

    Returns:
        The matplotlib ``Figure``, or a ``matplotlib.animation.FuncAnimation`` when animating.

    Raises:
        TypeError: ``model`` is not an EGM model (no ``trend_paths``, no bank).
        NotFittedError: ``model`` is not fitted.
        ValueError: a bad argument (the message names it and what is accepted).
        ImportError: the projection or output format needs an extra that is not installed.
    """
    check_projection(projection)
    n_samples = check_positive("n_samples", n_samples)
    n_queries = check_positive("n_queries", n_queries, allow_zero=True)
    if path_steps is not None:
        path_steps = check_positive("path_steps", path_steps)
    fps = check_positive("fps", fps, integer=False)
    dpi = check_positive("dpi", dpi, integer=False)
    point_size = check_positive("point_size", point_size, integer=False)
    figsize = check_figsize(figsize)
    suffix = output_suffix(save_path)
    check_writer(suffix)
    if suffix == ".gif" and 1000.0 / fps > _GIF_MAX_MS:  # Pillow stores 16-bit centiseconds
        raise ValueError(
            f"fps must be >= {1000.0 / _GIF_MAX_MS:.6g} for a .gif (a frame lasts at most "
            f"{_GIF_MAX_MS / 1000} s), got {fps!r}"
        )
    animated = suffix in ANIMATED_SUFFIXES if animate is None else bool(animate)
    if animate is False and suffix in ANIMATED_SUFFIXES:
        raise ValueError(f"animate=False cannot write an animation to {str(save_path)!r}")
    if animated and suffix not in (None, *ANIMATED_SUFFIXES):
        raise ValueError(
            f"an animation is saved as {ANIMATED_SUFFIXES}, got save_path={str(save_path)!r}"
        )

    view = read_model(model)
    if iteration is not None:
        if animated:
            raise ValueError("iteration selects one static picture; it cannot be animated")
        iteration = check_positive("iteration", iteration, allow_zero=True)
        if iteration > view.n_iterations:
            raise ValueError(
                f"iteration must be in [0, {view.n_iterations}] (the model's growth "
                f"iterations), got {iteration}"
            )
    chosen = _resolve_classes(view, classes)
    gen = make_generator(random_state)
    colors = class_colors(view.n_classes)
    lookup = view.code_of()

    # bank points: per class and growth iteration, deterministic
    in_chosen = np.isin(view.y, chosen)
    candidates = np.flatnonzero(in_chosen)
    if not candidates.size:  # classes registered by partial_fit(classes=...) without rows
        held = view.classes[np.unique(view.y)].tolist()
        raise ValueError(
            f"classes={view.classes[chosen].tolist()} have no points in the bank; pick "
            f"classes among {held}"
        )
    groups = view.y[candidates] * (view.n_iterations + 1) + view.generation[candidates]
    sel = candidates[stratified_subsample(groups, n_samples, gen)]
    real_sel = sel[view.is_real[sel]]
    synth_sel = sel[~view.is_real[sel]]

    seeds = np.zeros(0, dtype=np.int64)
    vec_sel = np.zeros(0, dtype=np.int64)
    if show_energy_vectors and synth_sel.size:
        ok = (view.seed[synth_sel] >= 0) & (view.seed[synth_sel] < view.X.shape[0])
        vec_sel = synth_sel[ok]
        seeds = np.unique(view.seed[vec_sel])
        seeds = seeds[~np.isin(seeds, sel)]

    # extra samples X (y)
    Xs = torch.zeros(0, view.X.shape[1], dtype=torch.float64)
    ys_codes = np.zeros(0, dtype=np.int64)
    if X is not None:
        Xt = as_tensor(X, name="X", dtype=torch.float64).to("cpu")
        if Xt.shape[1] != view.X.shape[1]:
            raise ValueError(
                f"X has {Xt.shape[1]} features, the model was fitted with {view.X.shape[1]}"
            )
        codes = np.full(Xt.shape[0], -1, dtype=np.int64)
        keep = np.arange(Xt.shape[0])
        if y is not None:
            ya = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
            if ya.ndim == 2 and ya.shape[1] == 1:  # what egm-core's fit accepts, flattened
                warnings.warn(
                    "A column-vector y was passed when a 1d array was expected; it is "
                    "flattened (use y.ravel())",
                    UserWarning,
                    stacklevel=2,
                )
                ya = ya[:, 0]
            if ya.ndim != 1 or ya.shape[0] != Xt.shape[0]:
                raise ValueError(
                    f"y must be 1-D with one label per row of X ({Xt.shape[0]}), got shape {ya.shape}"
                )
            codes = _label_codes(ya, lookup)
            if classes is not None:
                keep = np.flatnonzero(np.isin(codes, chosen))
        pick = keep[stratified_subsample(codes[keep], n_samples, gen)]
        Xs, ys_codes = Xt[pick], codes[pick]
    elif y is not None:
        raise ValueError("y was given without X; pass the samples X that y labels")

    # queries and their trend paths (the model's own, read-only)
    queries = torch.zeros(0, view.X.shape[1], dtype=torch.float64)
    paths = np.zeros((0, view.n_classes, 1, view.X.shape[1]))
    winner = np.zeros(0, dtype=np.int64)
    if show_paths and n_queries > 0 and iteration is None:
        if Xs.shape[0]:
            order = torch.randperm(Xs.shape[0], generator=gen).numpy()
            queries = Xs[np.sort(order[:n_queries])]
        else:
            queries = view.X[_pick_queries(view, real_sel, chosen, n_queries, gen)]
        if queries.shape[0]:
            with torch.no_grad():
                out = model.trend_paths(queries.to(torch.float32).clone(), path_steps=path_steps)
            paths = _numpy64(out["paths"])
            winner = _numpy64(out["winner"]).astype(np.int64)
            if paths.ndim != 4 or paths.shape[:2] != (queries.shape[0], view.n_classes):
                raise ValueError(
                    "model.trend_paths returned paths of shape "
                    f"{paths.shape}, expected (n_queries, n_classes, steps + 1, d)"
                )
    n_steps = paths.shape[2] - 1 if queries.shape[0] else 0

    # one projection for everything
    others = torch.cat(
        [
            view.X[seeds],
            Xs,
            torch.as_tensor(paths.reshape(-1, view.X.shape[1]), dtype=torch.float64),
        ]
    )
    emb = project(projection, view.X[sel], others, random_state=_int_seed(random_state))
    o = len(seeds)
    pos = np.full((view.X.shape[0], 2), np.nan)  # 2-D position of each drawn bank index
    pos[sel] = emb.fitted
    pos[seeds] = emb.others[:o]
    X2 = emb.others[o : o + Xs.shape[0]]
    P2 = emb.others[o + Xs.shape[0] :].reshape(*paths.shape[:3], 2)

    # draw
    own_figure = ax is None
    if own_figure:
        fig = new_figure(figsize, show)
        ax = fig.add_subplot(1, 1, 1)
        fig.subplots_adjust(left=0.08, right=0.74 if legend else 0.97, bottom=0.09, top=0.93)
    else:
        fig = ax.figure
    scene = _Scene(ax=ax, n_iterations=view.n_iterations, n_steps=n_steps, view=view)
    handles = []

    from matplotlib.lines import Line2D

    for c in chosen:
        idx = real_sel[view.y[real_sel] == c]
        if idx.size:
            xy = pos[idx]
            art = ax.scatter(
                xy[:, 0],
                xy[:, 1],
                s=point_size,
                color=colors[c],
                edgecolors="white",
                linewidths=0.4,
                zorder=3,
            )
            art.set_gid(f"real:{c}")
        handles.append(
            Line2D([], [], ls="", marker="o", color=colors[c], label=str(view.classes[c]))
        )
    handles.append(Line2D([], [], ls="", marker="o", color="0.35", mec="white", label="real"))

    n_gen = max(view.n_iterations, 1)
    if show_synthetic and synth_sel.size:
        for g in np.unique(view.generation[synth_sel]):
            idx = synth_sel[view.generation[synth_sel] == g]
            xy = pos[idx]
            shade = 0.55 * (int(g) - 1) / max(n_gen - 1, 1)
            face = lighten(colors[view.y[idx]], shade)
            art = ax.scatter(
                xy[:, 0],
                xy[:, 1],
                s=point_size * 0.4,
                color=face,
                linewidths=0,
                alpha=0.85,
                zorder=2,
            )
            art.set_gid(f"synthetic:{int(g)}")
            scene.synthetic[int(g)] = art
    if scene.synthetic and (iteration is None or min(scene.synthetic) <= iteration):
        handles.append(
            Line2D(
                [], [], ls="", marker="o", ms=4, color="0.6", label="synthetic\n(lighter = later)"
            )
        )

    if vec_sel.size:
        e = view.energy[vec_sel]
        finite = e[np.isfinite(e)]  # an infinite energy is drawn opaque, not as inf / inf
        top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        for g in np.unique(view.generation[vec_sel]):
            m = view.generation[vec_sel] == g
            idx = vec_sel[m]
            tail = pos[view.seed[idx]]
            head = pos[idx]
            rgba = colors[view.y[idx]]
            rgba[:, 3] = 0.15 + 0.8 * np.clip(e[m] / top, 0.0, 1.0)
            art = ax.quiver(
                tail[:, 0],
                tail[:, 1],
                head[:, 0] - tail[:, 0],
                head[:, 1] - tail[:, 1],
                color=rgba,
                angles="xy",
                scale_units="xy",
                scale=1.0,
                width=0.0025,
                headwidth=3.5,
                headlength=4.5,
                zorder=1,
            )
            art.set_gid(f"energy:{int(g)}")
            scene.vectors[int(g)] = art
    if scene.vectors and (iteration is None or min(scene.vectors) <= iteration):
        handles.append(
            Line2D(
                [],
                [],
                color="0.3",
                marker=">",
                ms=4,
                lw=0.8,
                label="energy vector\n(opacity = energy)",
            )
        )

    if Xs.shape[0]:
        edge = np.stack([colors[c] if c >= 0 else _UNKNOWN_COLOR for c in ys_codes])
        art = ax.scatter(
            X2[:, 0],
            X2[:, 1],
            s=point_size * 1.1,
            marker="D",
            facecolors="white",
            edgecolors=edge if y is not None else "0.3",
            linewidths=1.0,
            zorder=4,
        )
        art.set_gid("samples")
        handles.append(
            Line2D([], [], ls="", marker="D", mfc="white", mec="0.3", label="given samples X")
        )

    if queries.shape[0]:
        for q in range(queries.shape[0]):
            w = int(winner[q])
            for c in sorted(set(chosen.tolist()) | {w}):
                is_w = c == w
                (line,) = ax.plot(
                    P2[q, c, :, 0],
                    P2[q, c, :, 1],
                    color=colors[c],
                    lw=2.4 if is_w else 1.1,
                    ls="-" if is_w else (0, (3, 2)),
                    alpha=1.0 if is_w else 0.75,
                    marker="." if is_w else None,
                    ms=4,
                    zorder=6 if is_w else 5,
                )
                line.set_gid(f"path:{q}:{c}:{'winner' if is_w else 'candidate'}")
                scene.paths.append((line, P2[q, c]))
            star = ax.scatter(
                [P2[q, w, -1, 0]],
                [P2[q, w, -1, 1]],
                s=180,
                marker="*",
                color=colors[w],
                edgecolors="black",
                linewidths=0.9,
                zorder=8,
            )
            star.set_gid(f"winner:{q}:{w}")
            scene.winners.append(star)
        q2 = P2[:, 0, 0, :]
        art = ax.scatter(
            q2[:, 0],
            q2[:, 1],
            s=90,
            facecolors="none",
            edgecolors="black",
            linewidths=1.6,
            zorder=9,
        )
        art.set_gid("queries")
        handles += [
            Line2D([], [], ls="", marker="o", mfc="none", mec="black", label="query point"),
            Line2D(
                [], [], color="0.2", lw=2.2, marker="*", ms=9, mec="black", label="winning path"
            ),
            Line2D([], [], color="0.2", lw=1.1, ls=(0, (3, 2)), label="candidate path"),
        ]

    # limits from the layers drawn: synthetic points hidden by show_synthetic=False do not
    # widen them (an arrow's head still does); frames of an animation share them
    drawn = view.is_real[sel] | bool(show_synthetic) | np.isin(sel, vec_sel)
    _set_limits(ax, [emb.fitted[drawn] if drawn.any() else emb.fitted, emb.others])
    ax.set_xlabel(emb.axis_labels[0])
    ax.set_ylabel(emb.axis_labels[1])
    ax.tick_params(labelsize=8)
    if legend and own_figure:  # beside the axes, from their top down to the figure's foot
        fitted_legend(
            ax,
            handles,
            (ax.get_position().y1 - 0.01) * fig.bbox.height,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            fontsize=8,
            frameon=False,
        )
    elif legend:
        fitted_legend(ax, handles, ax.bbox.height, loc="best", fontsize=7)
    scene.static_title = (
        title
        if title is not None
        else f"EGM bank ({_projection_name(projection)}): {real_sel.size} real + "
        f"{synth_sel.size if show_synthetic else 0} synthetic points, "
        f"{plural(view.n_iterations, 'growth iteration')}"
        + (
            f", {plural(queries.shape[0], 'query', 'queries')} x {plural(n_steps, 'path step')}"
            if queries.shape[0]
            else ""
        )
    )

    if animated:
        from matplotlib.animation import FuncAnimation

        anim = FuncAnimation(
            fig,
            scene.frame,
            frames=scene.n_frames,
            interval=1000.0 / fps,
            blit=False,
            repeat=True,
            cache_frame_data=False,
        )
        if suffix is not None:
            with closing_on_error(fig, show and own_figure):
                save_animation(anim, fig, save_path, fps=fps, dpi=dpi)
        result: Any = anim
    else:
        if iteration is None:
            scene.final()
        else:
            text = scene.growth(iteration)
            ax.set_title(title if title is not None else f"bank after {text}", fontsize=10)
        if suffix is not None:
            with closing_on_error(fig, show and own_figure):
                save_static(fig, save_path, dpi=dpi)
        result = fig
    if show:
        import matplotlib.pyplot as plt

        plt.show()
    return result


def _pick_queries(
    view: BankView, real_sel: np.ndarray, chosen: np.ndarray, n: int, gen: torch.Generator
) -> np.ndarray:
    """Real bank points as queries, round-robin over the chosen classes."""
    pool = real_sel if real_sel.size else np.flatnonzero(view.is_real & np.isin(view.y, chosen))
    per_class = []
    for c in chosen:
        idx = pool[view.y[pool] == c]
        per_class.append(idx[torch.randperm(len(idx), generator=gen).numpy()])
    out: list[int] = []
    rank = 0
    while len(out) < n and any(rank < len(p) for p in per_class):
        out += [int(p[rank]) for p in per_class if rank < len(p)]
        rank += 1
    return np.array(out[:n], dtype=np.int64)


def _label_codes(labels: np.ndarray, lookup: dict[Any, int]) -> np.ndarray:
    """``(m,)`` class code of each label (-1 for labels the model lacks), looked up once per
    distinct label rather than once per row."""
    try:
        distinct, inverse = np.unique(labels, return_inverse=True)
    except TypeError:  # labels of mixed types do not sort: one lookup per row
        distinct, inverse = labels, np.arange(labels.shape[0])
    codes = np.array([lookup.get(_plain(v), -1) for v in distinct.tolist()], dtype=np.int64)
    return codes[inverse.reshape(-1)]


def _projection_name(projection: Any) -> str:
    """The projection as the title names it (as the axis labels spell it: t-SNE)."""
    if isinstance(projection, PCA2D):
        return "PCA, given plane"
    return {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}[projection]


def _numpy64(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64).numpy().copy()
    return np.array(value, dtype=np.float64, copy=True)


def _int_seed(random_state: Any) -> int:
    """The seed of t-SNE/UMAP, in the ``[0, 2**32)`` they accept (``random_state`` may be any
    seed below 2**64)."""
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state) % 2**32
    return int(torch.randint(0, 2**31 - 1, (1,), generator=make_generator(random_state)).item())


def _set_limits(ax: Any, arrays: list[np.ndarray]) -> None:
    pts = np.concatenate([a.reshape(-1, 2) for a in arrays if a.size])
    pts = pts[np.isfinite(pts).all(axis=1)]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    ax.set_xlim(lo[0] - 0.05 * span[0], hi[0] + 0.05 * span[0])
    ax.set_ylim(lo[1] - 0.05 * span[1], hi[1] + 0.05 * span[1])
