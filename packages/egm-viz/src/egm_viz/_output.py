"""Figures, colours and writing files (by suffix); headless unless ``show=True``."""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

STATIC_SUFFIXES = (".png", ".svg", ".pdf")
ANIMATED_SUFFIXES = (".gif", ".mp4")
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
_UNDATED = {".svg": {"Date": None}, ".pdf": {"CreationDate": None}}


def output_suffix(save_path: str | Path | None) -> str | None:
    """Lower-case suffix of ``save_path`` (None when not saving); ValueError if unsupported."""
    if save_path is None:
        return None
    suffix = Path(save_path).suffix.lower()
    if suffix not in STATIC_SUFFIXES + ANIMATED_SUFFIXES:
        raise ValueError(
            f"save_path must end in one of {STATIC_SUFFIXES + ANIMATED_SUFFIXES}, "
            f"got {str(save_path)!r}"
        )
    if Path(save_path).is_dir():
        raise ValueError(f"save_path must name a file, got the directory {str(save_path)!r}")
    return suffix


def check_figsize(figsize: Any) -> tuple[float, float]:
    """Validate ``figsize``: two finite numbers > 0 (inches); returns them as floats."""
    values = list(figsize) if isinstance(figsize, (tuple, list, np.ndarray)) else []
    ok = len(values) == 2 and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        for v in values
    )
    if not ok:
        raise ValueError(f"figsize must be (width, height) in inches, both > 0, got {figsize!r}")
    return float(figsize[0]), float(figsize[1])


def check_positive(name: str, value: Any, *, integer: bool = True, allow_zero: bool = False) -> Any:
    """Validate a positive (or non-negative) finite number argument and return it."""
    kinds = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    if ok:
        ok = (integer or math.isfinite(value)) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        what = "an integer" if integer else "a finite number"
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {what} {bound}, got {value!r}")
    return int(value) if integer else float(value)


def plural(n: int, word: str, many: str | None = None) -> str:
    """``"1 path step"``, ``"4 path steps"`` (``many`` for an irregular plural)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def new_figure(figsize: tuple[float, float], show: bool) -> Any:
    """A figure: through pyplot when it is to be shown, else a bare Agg figure.

    The bare figure never opens a window, never touches pyplot's global state and is freed
    like any Python object, whatever backend the user's session has.
    """
    if show:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def class_colors(n_classes: int) -> np.ndarray:
    """``(n_classes, 4)`` RGBA colours, one per class code, distinct and stable.

    A code's colour does not depend on ``n_classes``, so a class added by ``partial_fit``
    never recolours the others: codes 0-9 take ``tab10``, codes 10-19 the light ``tab20`` shade
    of the same hue, later codes golden-ratio steps around the hue circle.
    """
    import matplotlib
    from matplotlib.colors import hsv_to_rgb

    tab20 = matplotlib.colormaps["tab20"].colors
    out = np.ones((n_classes, 4))
    for c in range(n_classes):
        if c < 20:
            out[c, :3] = tab20[2 * (c % 10) + c // 10]
        else:
            k = c - 20
            out[c, :3] = hsv_to_rgb(((k * _GOLDEN) % 1.0, 0.75, 0.9 if k % 2 == 0 else 0.6))
    return out


def fitted_legend(owner: Any, handles: list[Any], max_height: float, **kwargs: Any) -> Any:
    """``owner.legend(handles=handles, **kwargs)`` (an Axes or a Figure) in the fewest columns
    that keep it at most ``max_height`` pixels tall, so many classes do not run off the figure.
    """
    legend = owner.legend(handles=handles, **kwargs)
    height = legend.get_window_extent().height
    ncol = math.ceil(height / max_height) if max_height > 0 else 1  # a first estimate
    while 1 < ncol <= len(handles) and height > max_height:
        legend.remove()
        legend = owner.legend(handles=handles, ncol=ncol, **kwargs)
        height = legend.get_window_extent().height
        ncol += 1
    return legend


def lighten(color: np.ndarray, amount: float) -> np.ndarray:
    """Blend RGBA colours ``(4,)`` or ``(n, 4)`` toward white by ``amount`` in [0, 1]
    (alpha kept)."""
    out = np.array(color, dtype=float, copy=True)
    out[..., :3] = out[..., :3] + (1.0 - out[..., :3]) * float(amount)
    return out


@contextlib.contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A temporary sibling of ``path`` (same suffix) renamed onto ``path`` once written.

    A failed or interrupted write leaves an existing ``path`` as it was and no temporary file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def closing_on_error(fig: Any, show: bool) -> Iterator[None]:
    """Close ``fig`` in pyplot (``show=True`` figures live there) if the block raises."""
    try:
        yield
    except BaseException:
        if show:
            import matplotlib.pyplot as plt

            plt.close(fig)
        raise


def save_static(fig: Any, path: str | Path, dpi: float) -> None:
    """Write ``fig`` to ``path`` atomically; the same figure gives the same bytes.

    SVG and PDF files carry no creation date, and SVG ids use a fixed salt unless the user set
    ``rcParams["svg.hashsalt"]``.
    """
    import matplotlib

    path = Path(path)
    suffix = path.suffix.lower()
    salt = matplotlib.rcParams["svg.hashsalt"] or "egm-viz"
    with atomic_target(path) as tmp, matplotlib.rc_context({"svg.hashsalt": salt}):
        fig.savefig(tmp, dpi=dpi, format=suffix[1:], metadata=_UNDATED.get(suffix))


def check_writer(suffix: str | None) -> None:
    """Raise ImportError now if writing ``suffix`` needs an extra that is not installed."""
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                f'saving .mp4 needs imageio-ffmpeg: pip install "egm-viz[mp4]" ({exc})'
            ) from exc


@contextlib.contextmanager
def no_idle_draw(canvas: Any) -> Iterator[None]:
    """Make ``canvas.draw_idle()`` a no-op inside the block.

    ``Animation.save`` calls ``draw_idle`` after every frame, which a bare Agg canvas runs at
    once: a full redraw that the writer repeats to grab the frame (each frame drawn twice).
    """
    own = canvas.__dict__.pop("draw_idle", None)  # an instance override, kept
    canvas.draw_idle = lambda *args, **kwargs: None
    try:
        yield
    finally:
        if own is None:
            del canvas.draw_idle
        else:
            canvas.draw_idle = own


def save_animation(anim: Any, fig: Any, path: str | Path, fps: float, dpi: float) -> None:
    """Write ``anim`` of figure ``fig`` atomically to ``.gif`` (Pillow) or ``.mp4``
    (imageio-ffmpeg's ffmpeg).

    Every frame is drawn once (the writer's grab), not twice.
    """
    import matplotlib
    from matplotlib.animation import FFMpegWriter, PillowWriter

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ANIMATED_SUFFIXES:
        raise ValueError(f"animations are saved as {ANIMATED_SUFFIXES}, got {str(path)!r}")
    check_writer(suffix)
    with atomic_target(path) as tmp, no_idle_draw(fig.canvas):
        if suffix == ".mp4":
            import imageio_ffmpeg

            ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
            with matplotlib.rc_context({"animation.ffmpeg_path": ffmpeg}):
                anim.save(str(tmp), writer=FFMpegWriter(fps=fps, codec="h264"), dpi=dpi)
        else:
            anim.save(str(tmp), writer=PillowWriter(fps=fps), dpi=dpi)
