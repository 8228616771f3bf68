"""Plots of tracked series (``pip install flt-tracker[plot]``).

Headless: figures are ``matplotlib.figure.Figure`` objects built without pyplot, so nothing
is ever shown or blocks; pass ``save_path`` to write a file. Every function returns the figure
(or the saved path for animations). matplotlib is imported only when a function is called.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .feature import Feature
from .storage import atomic_path

__all__ = [
    "animate_feature_evolution",
    "visualize_feature_evolution",
    "visualize_features_heatmap",
    "visualize_parameter_comparison",
]


def _figure(figsize: tuple[float, float]) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("plots need matplotlib: pip install 'flt-tracker[plot]'") from exc
    return Figure(figsize=figsize, layout="constrained")


def _save(fig: Any, save_path: str | os.PathLike[str] | None) -> None:
    """Write ``fig`` to ``save_path`` (format from the extension) under a temporary name renamed
    into place, so an interrupted save never leaves a truncated file there."""
    if save_path is None:
        return
    path = Path(save_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the format is named: the temporary name's suffix is not an extension when ``path`` has
    # none (matplotlib then read "tmp-<pid>-..." as the format); no extension writes a PNG
    fmt = path.suffix[1:].lower() or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format=fmt)


def _row_length(shape: tuple[int, ...]) -> int:
    """Length of the rows :func:`_matrix` draws for a snapshot of ``shape`` (``(o, i, kh, kw)``
    gives ``i * kh * kw``)."""
    return int(np.prod(shape[1:])) if len(shape) > 1 else (int(shape[0]) if shape else 1)


def _matrix(
    values: torch.Tensor, basis: torch.Tensor | np.ndarray | None, sort_rows: bool
) -> np.ndarray:
    """A 2-D picture of one snapshot: the weight matrix, or |correlation| with ``basis``
    (a tensor or an array), in the snapshot's own dtype (float64 is not rounded to float32)."""
    v = values.detach()
    if v.dtype not in (torch.float32, torch.float64):  # float16 / bfloat16: numpy-drawable
        v = v.float()
    if v.ndim == 0:
        v = v.reshape(1, 1)
    elif v.ndim == 1:
        v = v[None]
    elif v.ndim > 2:
        v = v.reshape(v.shape[0], -1)
    if basis is not None:
        from .analysis import dictionary_correlations

        basis = torch.as_tensor(basis)  # a numpy dictionary has no .to()
        v = dictionary_correlations(v, basis.to(v.device, v.dtype))  # snapshots are on the CPU
        if sort_rows:
            best = v.argmax(dim=1)
            order = torch.argsort(best * 2.0 - v.amax(dim=1), stable=True)
            v = v[order]
    return v.cpu().numpy()


def _check_feature(feature: Any) -> None:
    """Refuse what is not a :class:`Feature` (a tracker, a run, a series name), naming the
    argument: it was "'FeatureTracker' object has no attribute 'series'"."""
    if not isinstance(feature, Feature):
        raise TypeError(
            f"feature must be a Feature, e.g. tracker.get_feature('0.weight'), got "
            f"{type(feature).__name__}"
        )


def _phase_lines(ax: Any, phases: Sequence[tuple[int, str]] | None) -> None:
    for step, name in phases or []:
        ax.axvline(step, color="0.3", linestyle="--", linewidth=1)
        ax.annotate(
            name,
            (step, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            fontsize=8,
            color="0.3",
        )


def visualize_feature_evolution(
    feature: Feature,
    metric: str | Callable[[torch.Tensor], torch.Tensor] = "norm",
    save_path: str | os.PathLike[str] | None = None,
    *,
    phases: Sequence[tuple[int, str]] | None = None,
    band: tuple[float, float] = (10.0, 90.0),
    ax: Any = None,
    figsize: tuple[float, float] = (6.0, 3.5),
    label: str | None = None,
) -> Any:
    """Plot a derived series against the global step.

    Args:
        feature: the series.
        metric: a :meth:`Feature.series` name (``"norm"``, ``"mean"``, ``"std"``,
            ``"cosine_to_init"``, ``"distance_to_init"``, ``"effective_rank"``) or a batched
            callable; if it returns one value per row (e.g. per neuron, ``(k, m)``) the median
            is drawn with a percentile ``band``.
        save_path: write the figure there (png, pdf, svg...).
        phases: ``[(step, name), ...]`` drawn as vertical dashed lines (``tracker.phases``).
        band: percentiles of the band for per-row metrics.
        ax: draw into this axes instead of a new figure.
        figsize: size of a new figure.
        label: legend label (default: the feature name).

    Returns:
        The figure.

    Raises:
        TypeError: ``feature`` is not a :class:`~flt_tracker.Feature` (a tracker, a name).
    """
    _check_feature(feature)
    # float64, so a float64 series is drawn as recorded (float32 flattened changes below 1e-7)
    values = feature.series(metric).double().cpu()  # a callable metric may compute on a GPU
    steps = feature.steps
    name = metric if isinstance(metric, str) else getattr(metric, "__name__", "metric")
    fig = ax.figure if ax is not None else _figure(figsize)
    ax = ax if ax is not None else fig.add_subplot()
    label = label or feature.name
    if values.ndim == 1:
        ax.plot(steps, values.numpy(), label=label)
    else:
        rows = values.reshape(values.shape[0], -1).numpy()
        lo, mid, hi = np.percentile(rows, [band[0], 50.0, band[1]], axis=1)
        (line,) = ax.plot(steps, mid, label=f"{label} (median)")
        ax.fill_between(steps, lo, hi, alpha=0.25, color=line.get_color(), linewidth=0)
    _phase_lines(ax, phases)
    ax.set_xlabel("global step")
    ax.set_ylabel(label if not isinstance(metric, str) else name)
    ax.set_title(f"{feature.name}: {name}")
    ax.legend(fontsize=8)
    _save(fig, save_path)
    return fig


def _snapshot_at(feature: Feature, epoch: int | None, step: int | None) -> tuple[torch.Tensor, str]:
    if step is not None:
        return feature.get_at_step(step), f"step {step}"
    if epoch is not None:
        return feature.get_at_epoch(epoch, last=True), f"end of epoch {epoch}"
    return feature.get_latest(), f"step {int(feature.steps[-1])}"


def visualize_features_heatmap(
    tracker: Any,
    epoch: int | None = None,
    save_path: str | os.PathLike[str] | None = None,
    *,
    step: int | None = None,
    basis: torch.Tensor | np.ndarray | None = None,
    names: Sequence[str] | str | None = None,
    sort_rows: bool = True,
    figsize: tuple[float, float] | None = None,
) -> Any:
    """One heatmap panel per tracked series (each at its own shape, never padded together).

    Args:
        tracker: a :class:`~flt_tracker.FeatureTracker` or a loaded
            :class:`~flt_tracker.TrackingRun`.
        epoch: show the last snapshot of this epoch (default: the latest snapshot).
        save_path: write the figure there.
        step: show the snapshot of this global step instead (not with ``epoch``).
        basis: a dictionary ``(d, atoms)``: panels show ``|<w_i, M_j>| / ||w_i||`` instead of
            raw weights (neurons x atoms), rows sorted by their best atom when ``sort_rows``.
            ``d`` is the length of a snapshot's rows (``in * kh * kw`` for a conv kernel).
            By default series with other rows (biases) are left out; ``names`` must all fit.
        names: series to show, a name or a list (default: every weight series).
        sort_rows: sort rows by best atom (with ``basis``).
        figsize: figure size (default grows with the number of panels).

    Returns:
        The figure.

    Raises:
        TypeError: ``tracker`` has no ``get_features`` (a dict of series, a single Feature).
        ValueError: both ``epoch`` and ``step``; nothing to draw; with ``basis``, a series
            named in ``names`` whose rows are not ``d`` long.
        KeyError: an unknown name in ``names``.
    """
    if epoch is not None and step is not None:
        raise ValueError(f"give at most one of epoch={epoch!r} or step={step!r}")
    if not callable(getattr(tracker, "get_features", None)):  # was "'dict' has no attribute"
        raise TypeError(
            f"tracker must be a FeatureTracker or a TrackingRun (load_run), got "
            f"{type(tracker).__name__}; pick series of either with names="
        )
    features = tracker.get_features()
    if isinstance(names, str):  # one name, as in FeatureTracker(layers="0"); was split in chars
        names = [names]
    chosen = names is not None
    if names is None:
        names = [n for n, f in features.items() if f.kind == "weight" and len(f)]
    if not names:  # a gradient- or activation-only tracker: say how to draw those
        raise ValueError(
            "nothing to draw: no tracked weight series with snapshots; name other series "
            f"with names= (tracked: {list(features)})"
        )
    unknown = [n for n in names if n not in features]
    if unknown:
        raise KeyError(f"unknown series {unknown}; tracked: {list(features)}")
    usable = list(names)
    if basis is not None:
        d = int(basis.shape[0])
        lengths = {n: _row_length(features[n].shape or ()) for n in names if len(features[n])}
        misfits = {n: k for n, k in lengths.items() if k != d}
        if chosen and misfits:
            raise ValueError(
                f"basis is ({d}, atoms) but the rows of {misfits} (series: row length) are not "
                f"{d} long; leave them out of names"
            )
        usable = [n for n in names if n not in misfits]
        if not usable:
            raise ValueError(f"no series has rows of length {d} to project on basis")
    fig = _figure(figsize or (3.2 * len(usable) + 0.8, 3.4))
    axes = fig.subplots(1, len(usable), squeeze=False)[0]
    for ax, name in zip(axes, usable):
        snap, when = _snapshot_at(features[name], epoch, step)
        img = _matrix(snap, basis, sort_rows)
        kwargs = (
            {"cmap": "viridis", "vmin": 0.0, "vmax": 1.0}
            if basis is not None
            else {"cmap": "coolwarm"}
        )
        if basis is None:
            lim = float(np.abs(img).max()) or 1.0
            kwargs.update(vmin=-lim, vmax=lim)
        im = ax.imshow(img, aspect="auto", interpolation="nearest", **kwargs)
        ax.set_title(f"{name}\n{when}", fontsize=9)
        ax.set_xlabel("atom" if basis is not None else "input")
        ax.set_ylabel("neuron (sorted)" if basis is not None and sort_rows else "row")
        fig.colorbar(im, ax=ax, shrink=0.8)
    _save(fig, save_path)
    return fig


def visualize_parameter_comparison(
    feature: Feature,
    epochs: Sequence[int] | int | None = None,
    save_path: str | os.PathLike[str] | None = None,
    *,
    steps: Sequence[int] | int | None = None,
    basis: torch.Tensor | np.ndarray | None = None,
    sort_rows: bool = True,
    figsize: tuple[float, float] | None = None,
) -> Any:
    """The same series at several epochs (last snapshot of each) or steps, side by side.

    Shows the weight matrix itself (one shared symmetric colour scale), or with ``basis`` the
    neuron-by-atom correlation ``|<w_i, M_j>| / ||w_i||`` (rows sorted by best atom in each panel).

    Args:
        feature: the series.
        epochs: epochs to compare (a list, or one epoch).
        save_path: write the figure there.
        steps: global steps to compare instead of epochs (a list, or one step).
        basis: a dictionary ``(d, atoms)``.
        sort_rows: sort rows by best atom (with ``basis``).
        figsize: figure size.

    Returns:
        The figure.

    Raises:
        TypeError: ``feature`` is not a :class:`~flt_tracker.Feature` (a tracker, a name).
    """
    _check_feature(feature)
    if (epochs is None) == (steps is None):
        raise ValueError("give exactly one of epochs=[...] or steps=[...]")
    keys = epochs if epochs is not None else steps
    # one epoch / step given bare: ``epochs=2`` was "'int' object is not iterable"
    keys = [keys] if isinstance(keys, numbers.Integral) else list(keys)
    if not keys:
        name = "epochs" if epochs is not None else "steps"
        raise ValueError(f"{name}=[] gives nothing to compare: name at least one {name[:-1]}")
    snaps = [
        _snapshot_at(feature, e, None) if epochs is not None else _snapshot_at(feature, None, e)
        for e in keys
    ]
    imgs = [_matrix(s, basis, sort_rows) for s, _ in snaps]
    fig = _figure(figsize or (3.0 * len(imgs) + 0.8, 3.2))
    axes = fig.subplots(1, len(imgs), squeeze=False)[0]
    if basis is not None:
        vmin, vmax, cmap = 0.0, 1.0, "viridis"
    else:
        lim = max(float(np.abs(i).max()) for i in imgs) or 1.0
        vmin, vmax, cmap = -lim, lim, "coolwarm"
    im = None
    for ax, img, (_, when) in zip(axes, imgs, snaps):
        im = ax.imshow(img, aspect="auto", interpolation="nearest", cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(when, fontsize=9)
        ax.set_xlabel("atom" if basis is not None else "input")
    axes[0].set_ylabel("neuron")
    fig.suptitle(feature.name, fontsize=10)
    fig.colorbar(im, ax=list(axes), shrink=0.8)
    _save(fig, save_path)
    return fig


def animate_feature_evolution(
    feature: Feature,
    save_path: str | os.PathLike[str],
    *,
    basis: torch.Tensor | np.ndarray | None = None,
    sort_rows: bool = True,
    fps: int = 8,
    max_frames: int = 60,
) -> Path:
    """Animate the series (one frame per snapshot, subsampled to ``max_frames``) as a GIF
    (``.gif``, pillow) or a video (``.mp4``, the ffmpeg of ``imageio-ffmpeg``, the ``mp4`` extra,
    else one on the ``PATH``). The file is written under a temporary name, then renamed into place.

    Args:
        feature: the series.
        save_path: output file; the extension picks the writer.
        basis: show ``|<w_i, M_j>| / ||w_i||`` against a dictionary ``(d, atoms)`` instead of
            the raw weights.
        sort_rows: sort rows by best atom (with ``basis``), per frame.
        fps: frames per second.
        max_frames: most frames (evenly spaced, always including the last snapshot).

    Returns:
        The written path.

    Raises:
        TypeError: ``feature`` is not a :class:`~flt_tracker.Feature`.
        ValueError: no snapshots, ``save_path`` ends in neither .gif nor .mp4, ``max_frames``
            is not a positive integer or ``fps`` not a positive number.
        RuntimeError: a video was asked for but no ffmpeg was found.
    """
    import matplotlib
    from matplotlib.animation import FFMpegWriter, FuncAnimation, PillowWriter

    _check_feature(feature)
    if (
        isinstance(max_frames, bool)
        or not isinstance(max_frames, numbers.Integral)
        or max_frames < 1
    ):
        raise ValueError(f"max_frames={max_frames!r} must be a positive integer")
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not 0 < fps < float("inf"):
        raise ValueError(f"fps={fps!r} must be a positive number")
    n = len(feature)
    if n == 0:
        raise ValueError(f"feature {feature.name!r} has no snapshots")
    path = Path(save_path)
    gif = path.suffix.lower() == ".gif"
    if path.suffix.lower() not in (".gif", ".mp4"):
        raise ValueError(f"save_path={str(save_path)!r} needs the extension .gif or .mp4")
    ffmpeg = None if gif else _ffmpeg_exe()
    if not gif and ffmpeg is None and not FFMpegWriter.isAvailable():
        raise RuntimeError(
            f"writing {path.suffix!r} needs ffmpeg (not found): pip install "
            '"flt-tracker[mp4]" (imageio-ffmpeg), put ffmpeg on the PATH, or save a .gif (pillow)'
        )
    # from the last snapshot back: one frame is the last snapshot (it was the first)
    picks = np.unique(np.linspace(n - 1, 0, min(n, int(max_frames))).round().astype(int))
    steps = feature.steps
    storage = feature.storage
    frames = [_matrix(storage.get(int(i)), basis, sort_rows) for i in picks]
    fig = _figure((4.5, 3.6))
    ax = fig.add_subplot()
    if basis is not None:
        kwargs = {"cmap": "viridis", "vmin": 0.0, "vmax": 1.0}
    else:
        lim = max(float(np.abs(f).max()) for f in frames) or 1.0
        kwargs = {"cmap": "coolwarm", "vmin": -lim, "vmax": lim}
    im = ax.imshow(frames[0], aspect="auto", interpolation="nearest", **kwargs)
    fig.colorbar(im, ax=ax, shrink=0.8)
    title = ax.set_title("")

    def update(k: int) -> list[Any]:
        im.set_data(frames[k])
        title.set_text(f"{feature.name}  step {int(steps[picks[k]])}")
        return [im, title]

    anim = FuncAnimation(fig, update, frames=len(frames), blit=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = PillowWriter(fps=fps) if gif else FFMpegWriter(fps=fps)
    rc = {"animation.ffmpeg_path": ffmpeg} if ffmpeg else {}
    with atomic_path(path) as tmp, matplotlib.rc_context(rc):
        anim.save(str(tmp), writer=writer, dpi=80)
    return path


def _ffmpeg_exe() -> str | None:
    """The ffmpeg binary shipped by ``imageio-ffmpeg`` (the ``mp4`` extra), if installed."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # the wheel's binary is missing on this platform
        return None
