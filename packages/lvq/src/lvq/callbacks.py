"""Ready-made callbacks (subclass :class:`lvq.Callback` for your own)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import check_int, check_number
from .base import Callback


class PrototypeTrajectory(Callback):
    """Records the prototypes after every epoch: ``trajectory`` is ``(epochs + 1, P, d)``.

    Plot it with :func:`lvq.plot.plot_prototype_trajectory`.
    """

    def __init__(self, every: int = 1):
        self.every = check_int("every", every)
        self.frames: list[np.ndarray] = []

    def on_fit_start(self, model: Any) -> None:
        self.frames = []

    def on_iteration_end(self, model: Any, info: dict[str, Any]) -> bool:
        if info["iteration"] % self.every == 0 or not self.frames:
            self.frames.append(info["params"]["prototypes"].detach().cpu().numpy().copy())
        return False

    def on_fit_end(self, model: Any) -> None:
        self.frames.append(np.asarray(model.prototypes_).copy())

    @property
    def trajectory(self) -> np.ndarray:
        """Recorded prototype positions ``(frames, P, d)``."""
        return np.stack(self.frames) if self.frames else np.empty((0, 0, 0))


class EarlyStopping(Callback):
    """Stops when the monitored loss (``"val_loss"`` or ``"loss"``) has not improved by
    ``min_delta`` for ``patience`` epochs."""

    def __init__(self, monitor: str = "loss", patience: int = 5, min_delta: float = 0.0):
        if monitor not in ("loss", "val_loss"):
            raise ValueError(f"monitor must be 'loss' or 'val_loss', got {monitor!r}")
        self.monitor = monitor
        self.patience = check_int("patience", patience, low=0)
        self.min_delta = check_number("min_delta", min_delta, 0.0, strict=False)
        self.best = np.inf
        self.wait = 0
        self.stopped_at: int | None = None

    def on_fit_start(self, model: Any) -> None:
        self.best, self.wait, self.stopped_at = np.inf, 0, None

    def on_iteration_end(self, model: Any, info: dict[str, Any]) -> bool:
        value = info.get(self.monitor)
        if value is None:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r} but it is not available")
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_at = info["iteration"]
            return True
        return False
