"""Training callbacks: feature tracking, wandb, CSV / JSON-lines logs, early stopping, checkpoints."""

from __future__ import annotations

import csv
import json
import math
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .feature import _as_int
from .storage import atomic_path
from .tracker import FeatureTracker, unwrap_model

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "FeatureTrackingCallback",
    "JSONLinesLogger",
    "ModelCheckpoint",
    "WandbCallback",
]


class Callback:
    """Base class: override the hooks you need. All hooks default to doing nothing.

    An override may take fewer arguments if it names the ones it takes after the hook's
    (``def on_epoch_end(self, trainer, model, epoch)``, as in ezflt, or ``(self, epoch)``): the
    :class:`~flt_tracker.Trainer` passes them by name; other signatures are a ``TypeError`` when
    the Trainer is built. Under ``torchrun`` a callback with ``rank_zero_only = True`` runs only
    on rank 0.
    """

    rank_zero_only: bool = False

    def on_train_start(self, trainer: Trainer, model: nn.Module) -> None:
        """Before the first epoch of ``fit``."""

    def on_train_end(self, trainer: Trainer, model: nn.Module) -> None:
        """After the last epoch of ``fit``; also after early stopping and after a ``fit`` that
        raised (even in another callback's ``on_train_start``; ``trainer.error`` holds it)."""

    def on_epoch_start(self, trainer: Trainer, model: nn.Module, epoch: int) -> None:
        """Before the first batch of ``epoch``."""

    def on_epoch_end(
        self, trainer: Trainer, model: nn.Module, epoch: int, logs: dict[str, float]
    ) -> None:
        """After validation of ``epoch``; ``logs`` holds the epoch's train and val metrics."""

    def on_batch_start(
        self, trainer: Trainer, model: nn.Module, batch: Any, batch_idx: int
    ) -> None:
        """Before the inner maximisation and the forward of a batch."""

    def on_step_end(self, trainer: Trainer, model: nn.Module, step: int) -> None:
        """Right after ``optimizer.step()``; ``step`` is the trainer's global step (1-based)."""

    def on_batch_end(
        self, trainer: Trainer, model: nn.Module, batch: Any, batch_idx: int, loss: float
    ) -> None:
        """After the optimizer step of a batch; ``loss`` is its training loss."""


class FeatureTrackingCallback(Callback):
    """Drive a :class:`~flt_tracker.FeatureTracker` from the :class:`~flt_tracker.Trainer`.

    Starts it at train start (resuming keeps history), forwards epochs and batch indices,
    records after each optimizer step (through the tracker's optimizer hook when one is attached,
    moved to the trainer's optimizer if it was another one, else by calling ``tracker.step``),
    stops it at train end.

    Args:
        tracker: the tracker.
        phase: if given, ``tracker.set_phase(phase)`` at train start (e.g. ``"adversarial"``).
    """

    rank_zero_only = True

    def __init__(self, tracker: FeatureTracker, phase: str | None = None) -> None:
        if not isinstance(tracker, FeatureTracker):
            raise TypeError(f"tracker must be a FeatureTracker, got {type(tracker).__name__}")
        self.tracker = tracker
        self.phase = phase

    def on_train_start(self, trainer: Trainer, model: nn.Module) -> None:
        tracked = {id(p) for p in self.tracker.module.parameters()}
        if tracked and tracked.isdisjoint(id(p) for p in model.parameters()):
            raise ValueError(  # it recorded the other model's untouched weights at every step
                f"the tracker follows a {type(self.tracker.module).__name__} that is not (part "
                f"of) the trainer's model {type(unwrap_model(model)).__name__}; build the "
                "FeatureTracker on the model the Trainer trains"
            )
        attached = self.tracker._optimizer
        if attached is not None and attached is not trainer.optimizer:
            # a hook on another optimizer would never fire: follow the one the trainer steps
            self.tracker.attach_optimizer(trainer.optimizer)
        if not self.tracker.is_tracking:  # the initial snapshot belongs to the trainer's epoch
            self.tracker.on_epoch_start(trainer.epoch)
        if not self.tracker._initialised:  # a fresh tracker on a resumed trainer: its step axis
            self.tracker.global_step = trainer.global_step  # is the trainer's (wandb, CSV, ...)
        self.tracker.start()
        if self.phase is not None:
            self.tracker.set_phase(self.phase)

    def on_epoch_start(self, trainer: Trainer, model: nn.Module, epoch: int) -> None:
        self.tracker.on_epoch_start(epoch)

    def on_step_end(self, trainer: Trainer, model: nn.Module, step: int) -> None:
        if self.tracker._optimizer is None:
            self.tracker.step()

    def on_batch_end(
        self, trainer: Trainer, model: nn.Module, batch: Any, batch_idx: int, loss: float
    ) -> None:
        self.tracker.on_batch_end(batch_idx)

    def on_train_end(self, trainer: Trainer, model: nn.Module) -> None:
        self.tracker.stop()


class EarlyStopping(Callback):
    """Stop ``fit`` when ``monitor`` has not improved for ``patience`` epochs.

    The best value carries over to a later ``fit`` of the same trainer (which continues the
    run), the count of epochs without improvement restarts: each ``fit`` trains at least
    ``patience`` epochs before this callback stops it.

    Args:
        monitor: key of the epoch logs, e.g. ``"val_loss"`` or ``"val_accuracy"``.
        patience: epochs without improvement before stopping.
        mode: ``"min"`` or ``"max"``.
        min_delta: smallest change that counts as an improvement.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 3,
        mode: str = "min",
        min_delta: float = 0.0,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode={mode!r}; use 'min' or 'max'")
        self.monitor, self.patience, self.mode, self.min_delta = (
            monitor,
            _period("patience", patience),
            mode,
            float(min_delta),
        )
        self.best = math.inf if mode == "min" else -math.inf
        self.wait = 0
        self.stopped_epoch: int | None = None

    def on_train_start(self, trainer: Trainer, model: nn.Module) -> None:
        self.wait, self.stopped_epoch = 0, None

    def on_epoch_end(
        self, trainer: Trainer, model: nn.Module, epoch: int, logs: dict[str, float]
    ) -> None:
        if self.monitor not in logs:
            raise KeyError(
                f"EarlyStopping monitors {self.monitor!r}, not in the logs: {sorted(logs)}"
            )
        value = float(logs[self.monitor])
        better = (
            value < self.best - self.min_delta
            if self.mode == "min"
            else value > self.best + self.min_delta
        )
        if better:
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.stop_training = True
            self.stopped_epoch = epoch


def _period(name: str, value: Any, none_ok: bool = False) -> int | None:
    """``value`` as an int >= 1 (None when ``none_ok``); 2.5 was truncated or never matched."""
    if value is None and none_ok:
        return None
    out = _as_int(value, name)
    if out < 1:
        raise ValueError(f"{name}={value!r} must be >= 1")
    return out


def _to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor on the CPU (dicts, lists and tuples rebuilt; a state dict's
    ``_metadata`` kept): a file of CUDA tensors cannot be loaded without a GPU."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        out = obj.copy()
        for k, v in obj.items():
            out[k] = _to_cpu(v)
        if hasattr(obj, "_metadata"):
            out._metadata = obj._metadata  # type: ignore[attr-defined]
        return out
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_to_cpu(v) for v in obj)
    return obj


def rng_state() -> dict[str, Any]:
    """The random streams the Trainer seeds (torch's CPU generator, CUDA's when initialised,
    Python's ``random``, numpy's global), as tensors and plain values that
    ``torch.load(..., weights_only=True)`` accepts (about 10 kB)."""
    name, key, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002 (the global RNG)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, gauss),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (CUDA streams only on devices present)."""
    torch.set_rng_state(state["torch"])
    for device, cuda in enumerate(state["cuda"][: torch.cuda.device_count()]):
        torch.cuda.set_rng_state(cuda, device)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002


def _atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


class ModelCheckpoint(Callback):
    """Save ``last.pt`` every ``every_n_epochs`` and ``best.pt`` when ``monitor`` improves.

    Files hold plain state dicts (``{"model", "optimizer", "scheduler", "epoch", "global_step",
    "rng_state"}``, tensors on the CPU; ``"scheduler"`` when the trainer has one), written
    atomically and loadable with ``torch.load(path, weights_only=True)``, also without a GPU.
    ``best.pt`` is the best of the whole run: a later ``fit`` of the same trainer continues it.

    :meth:`Trainer.load_checkpoint <flt_tracker.trainer.Trainer.load_checkpoint>` resumes from
    ``last.pt``: with the same model, optimizer, scheduler, data and callbacks, the resumed run
    trains the same weights as an uninterrupted one (the random streams are restored). Not
    saved, so not restored: the trainer's ``history``, the state of callbacks (a tracker's
    recorded series, :class:`EarlyStopping`'s patience, this callback's ``best``), a loader's
    own ``generator``, and the optimizer's state when ``save_optimizer=False``. Save a tracker with
    :meth:`FeatureTracker.save <flt_tracker.FeatureTracker.save>`; a new tracker of the resumed
    run records on the trainer's step axis, from the checkpoint's global step.

    Args:
        directory: output folder (created).
        monitor: epoch-log key deciding ``best.pt``; ``None`` writes only ``last.pt``.
        mode: ``"min"`` or ``"max"`` for ``monitor``.
        every_n_epochs: how often ``last.pt`` is written.
        save_optimizer: include the optimizer state.
    """

    rank_zero_only = True

    def __init__(
        self,
        directory: str | os.PathLike[str],
        monitor: str | None = None,
        mode: str = "min",
        every_n_epochs: int = 1,
        save_optimizer: bool = True,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode={mode!r}; use 'min' or 'max'")
        self.directory = Path(directory)
        self.monitor, self.mode = monitor, mode
        self.every_n_epochs = _period("every_n_epochs", every_n_epochs)
        self.save_optimizer = bool(save_optimizer)
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch: int | None = None

    def _state(self, trainer: Trainer, epoch: int) -> dict[str, Any]:
        from .tracker import unwrap_model

        state: dict[str, Any] = {
            "model": unwrap_model(trainer.model).state_dict(),
            "epoch": epoch,
            "global_step": trainer.global_step,
            "rng_state": rng_state(),
        }
        if self.save_optimizer:
            state["optimizer"] = trainer.optimizer.state_dict()
        if trainer.scheduler is not None:
            state["scheduler"] = trainer.scheduler.state_dict()
        return _to_cpu(state)  # loadable on a machine without the GPU it was trained on

    def on_epoch_end(
        self, trainer: Trainer, model: nn.Module, epoch: int, logs: dict[str, float]
    ) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if (epoch + 1) % self.every_n_epochs == 0:
            _atomic_torch_save(self._state(trainer, epoch), self.directory / "last.pt")
        if self.monitor is not None:
            if self.monitor not in logs:
                raise KeyError(
                    f"ModelCheckpoint monitors {self.monitor!r}, not in the logs: {sorted(logs)}"
                )
            value = float(logs[self.monitor])
            if (value < self.best) if self.mode == "min" else (value > self.best):
                self.best, self.best_epoch = value, epoch
                _atomic_torch_save(self._state(trainer, epoch), self.directory / "best.pt")


def _finite_or_null(record: dict[str, Any]) -> dict[str, Any]:
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()
    }


class JSONLinesLogger(Callback):
    """Append one JSON object per line: ``{"epoch", ...metrics}`` per epoch and, every
    ``log_every_n_steps`` steps, ``{"step", "epoch", "loss"}``. Flushed after every line.
    Strict JSON: a NaN or infinite metric (a diverged loss) is written as ``null``.

    Args:
        path: output file (appended to).
        log_every_n_steps: step records every N steps; ``None`` for epoch records only.
    """

    rank_zero_only = True

    def __init__(self, path: str | os.PathLike[str], log_every_n_steps: int | None = None) -> None:
        self.path = Path(path)
        self.log_every_n_steps = _period("log_every_n_steps", log_every_n_steps, none_ok=True)

    def _write(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(_finite_or_null(record), allow_nan=False) + "\n")

    def on_batch_end(
        self, trainer: Trainer, model: nn.Module, batch: Any, batch_idx: int, loss: float
    ) -> None:
        n = self.log_every_n_steps
        if n and trainer.global_step % n == 0:
            self._write({"step": trainer.global_step, "epoch": trainer.epoch, "loss": float(loss)})

    def on_epoch_end(
        self, trainer: Trainer, model: nn.Module, epoch: int, logs: dict[str, float]
    ) -> None:
        self._write({"step": trainer.global_step, **logs})


class CSVLogger(Callback):
    """One CSV row per epoch (``epoch``, ``step`` and every metric); the file is rewritten
    atomically each epoch, so columns that appear later are added and a crash never leaves a
    torn file. The cost: epoch ``k`` writes all ``k`` rows (and every row stays in memory), so
    a run of ``n`` epochs writes ``O(n^2)`` rows in all; negligible for thousands of epochs,
    but for very long runs prefer :class:`JSONLinesLogger`, which appends. A run without
    epochs (``epochs=0``) still writes the file, with the header ``epoch,step`` only.

    Args:
        path: output ``.csv`` file.
    """

    rank_zero_only = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []

    def on_epoch_end(
        self, trainer: Trainer, model: nn.Module, epoch: int, logs: dict[str, float]
    ) -> None:
        self.rows.append({"step": trainer.global_step, **logs})
        self._write()

    def on_train_end(self, trainer: Trainer, model: nn.Module) -> None:
        if not self.rows:  # no epoch ran: the file is promised all the same
            self._write()

    def _write(self) -> None:
        columns: list[str] = [] if self.rows else ["epoch", "step"]
        for row in self.rows:
            columns += [k for k in row if k not in columns]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)


class WandbCallback(Callback):
    """Log to Weights & Biases with monotonic steps (the trainer's global step).

    Records the trainer's hyper-parameters in the run's config under ``"trainer"`` (optimizer
    and its settings, loss, clipping, seed, tracking frequency) besides ``config``.
    Logs the training loss every ``log_every_n_steps`` steps, the epoch metrics, and for each
    tracked weight series of ``tracker`` its latest norm and distance to init; at train end one
    evolution figure per tracked weight (if matplotlib is installed) and ``finish()`` of the
    run it started, with exit code 1 when training raised. Works without an account in
    ``mode="offline"``.

    Args:
        project: wandb project.
        config: hyper-parameters recorded with the run.
        tracker: tracker whose series are logged; ``None`` logs the tracker of a
            :class:`FeatureTrackingCallback` of the same trainer, if there is one.
        mode: ``"online"``, ``"offline"`` or ``"disabled"``; ``None`` follows ``WANDB_MODE``.
        log_every_n_steps: step-loss logging period; ``None`` for epoch records only.
        log_figures: log evolution figures at train end.
        init_kwargs: more ``wandb.init`` keyword arguments (``name``, ``dir``, ``tags``...).

    Raises:
        ImportError: wandb is not installed (``pip install flt-tracker[wandb]``).
    """

    rank_zero_only = True

    def __init__(
        self,
        project: str | None = None,
        config: dict[str, Any] | None = None,
        tracker: FeatureTracker | None = None,
        mode: str | None = None,
        log_every_n_steps: int | None = 50,
        log_figures: bool = True,
        **init_kwargs: Any,
    ) -> None:
        self.project, self.config, self.tracker, self.mode = project, config, tracker, mode
        self.log_every_n_steps = _period("log_every_n_steps", log_every_n_steps, none_ok=True)
        self.log_figures = bool(log_figures)
        self.init_kwargs = init_kwargs
        self.run: Any = None
        self._owns_run = False
        self._tracker: FeatureTracker | None = tracker  # the one logged in this fit
        self.logged_steps: list[int] = []
        """Steps logged to the current (or last) run; a new run starts a new list."""
        self._steps_run: Any = None  # the run ``logged_steps`` belongs to

    @staticmethod
    def _wandb() -> Any:
        try:
            import wandb
        except ImportError as exc:
            raise ImportError(
                "WandbCallback needs wandb: pip install 'flt-tracker[wandb]'"
            ) from exc
        return wandb

    def _log(self, data: dict[str, Any], step: int) -> None:
        if self.logged_steps and step < self.logged_steps[-1]:
            raise RuntimeError(f"wandb step went backwards ({self.logged_steps[-1]} -> {step})")
        self.run.log(data, step=step)
        self.logged_steps.append(step)

    def on_train_start(self, trainer: Trainer, model: nn.Module) -> None:
        wandb = self._wandb()
        # the spec's ``[FeatureTrackingCallback(tracker), WandbCallback(project=...)]`` logged
        # no feature information: follow the trainer's tracking callback when none is given
        self._tracker = self.tracker
        if self._tracker is None:
            tracking = [c for c in trainer.callbacks if isinstance(c, FeatureTrackingCallback)]
            self._tracker = tracking[0].tracker if tracking else None
        if wandb.run is None:
            kwargs = dict(self.init_kwargs)
            if self.mode is not None:
                kwargs["mode"] = self.mode
            self.run = wandb.init(project=self.project, config=self.config, **kwargs)
            self._owns_run = True
        else:
            self.run = wandb.run
            if self.config:
                self.run.config.update(self.config, allow_val_change=True)
        if self.run is not self._steps_run:  # steps are monotonic per run, not across runs
            self.logged_steps, self._steps_run = [], self.run
        # recorded automatically (spec): without config= no hyper-parameter was
        self.run.config.update({"trainer": self._trainer_config(trainer)}, allow_val_change=True)

    def _trainer_config(self, trainer: Trainer) -> dict[str, Any]:
        """The trainer's hyper-parameters: optimizer and its first parameter group's plain
        settings (``lr``, ``momentum``...), loss, clipping, seed, and the tracking frequency."""
        group = trainer.optimizer.param_groups[0]
        out: dict[str, Any] = {"optimizer": type(trainer.optimizer).__name__}
        out.update(
            (k, v) for k, v in group.items() if isinstance(v, bool | int | float | str | None)
        )
        loss = trainer.loss_fn
        out["loss_fn"] = getattr(loss, "__name__", type(loss).__name__)
        out["grad_clip"], out["seed"] = trainer.grad_clip, trainer.seed
        out["inner_max"] = trainer.inner_max is not None
        if self._tracker is not None:
            out["track_frequency"] = self._tracker.track_frequency
        return out

    def on_batch_end(
        self, trainer: Trainer, model: nn.Module, batch: Any, batch_idx: int, loss: float
    ) -> None:
        if self.log_every_n_steps and trainer.global_step % self.log_every_n_steps == 0:
            self._log({"train/batch_loss": float(loss)}, trainer.global_step)

    def _series_summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self._tracker is None:
            return out
        for name, feature in self._tracker.get_features().items():
            if feature.kind != "weight" or len(feature) == 0:
                continue
            latest = feature.get_latest().float()
            first = feature.storage.get(0).float()
            out[f"features/{name}/norm"] = float(latest.norm())
            out[f"features/{name}/distance_to_init"] = float((latest - first).norm())
        return out

    def on_epoch_end(
        self, trainer: Trainer, model: nn.Module, epoch: int, logs: dict[str, float]
    ) -> None:
        data = {f"epoch/{k}": v for k, v in logs.items()}
        data.update(self._series_summary())
        self._log(data, trainer.global_step)

    def on_train_end(self, trainer: Trainer, model: nn.Module) -> None:
        if self.run is None:
            return
        try:
            if self.log_figures and self._tracker is not None:
                figures = self._figures()
                if figures:
                    self._log(figures, trainer.global_step)
        finally:
            if self._owns_run:
                self.run.finish(exit_code=0 if trainer.error is None else 1)
                self.run = None
                self._owns_run = False

    def _figures(self) -> dict[str, Any]:
        """Evolution figures as wandb images (PNG rendered headless); empty without matplotlib."""
        import io

        wandb = self._wandb()
        try:
            from PIL import Image

            from .plot import visualize_feature_evolution

            out = {}
            for name, feature in self._tracker.get_features().items():
                if feature.kind == "weight" and len(feature) > 1:
                    fig = visualize_feature_evolution(
                        feature, metric="norm", phases=self._tracker.phases
                    )
                    buf = io.BytesIO()
                    fig.savefig(buf, format="png", dpi=90)
                    buf.seek(0)
                    out[f"figures/{name}"] = wandb.Image(Image.open(buf))
            return out
        except ImportError:  # the [plot] extra is not installed: no figures
            return {}
