"""Figures, colours and writing files (by suffix); headless unless ``show=True``."""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any

import numpy as np

STATIC_SUFFIXES = (".png", ".svg", ".pdf")
ANIMATED_SUFFIXES = (".gif", ".mp4")


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
    return suffix


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
    """``(n_classes, 4)`` RGBA colours, one per class code, distinct and stable."""
    import matplotlib

    if n_classes <= 10:
        base = matplotlib.colormaps["tab10"].colors
        return np.array([(*base[i], 1.0) for i in range(n_classes)])
    if n_classes <= 20:
        base = matplotlib.colormaps["tab20"].colors
        return np.array([(*base[i], 1.0) for i in range(n_classes)])
    return matplotlib.colormaps["hsv"](np.linspace(0.0, 1.0, n_classes, endpoint=False))


def lighten(color: np.ndarray, amount: float) -> np.ndarray:
    """Blend an RGBA colour toward white by ``amount`` in [0, 1] (alpha kept)."""
    out = np.array(color, dtype=float, copy=True)
    out[:3] = out[:3] + (1.0 - out[:3]) * float(amount)
    return out


def save_static(fig: Any, path: str | Path, dpi: float) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)


def save_animation(anim: Any, path: str | Path, fps: float, dpi: float) -> None:
    """Write ``anim`` to ``.gif`` (Pillow) or ``.mp4`` (ffmpeg from imageio-ffmpeg)."""
    import matplotlib
    from matplotlib.animation import FFMpegWriter, PillowWriter

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg
        except ImportError as exc:
            raise ImportError(
                f'saving .mp4 needs imageio-ffmpeg: pip install "egm-viz[mp4]" ({exc})'
            ) from exc
        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
        path.parent.mkdir(parents=True, exist_ok=True)
        with matplotlib.rc_context({"animation.ffmpeg_path": ffmpeg}):
            anim.save(str(path), writer=FFMpegWriter(fps=fps, codec="h264"), dpi=dpi)
    elif suffix == ".gif":
        path.parent.mkdir(parents=True, exist_ok=True)
        anim.save(str(path), writer=PillowWriter(fps=fps), dpi=dpi)
    else:
        raise ValueError(f"animations are saved as {ANIMATED_SUFFIXES}, got {str(path)!r}")
