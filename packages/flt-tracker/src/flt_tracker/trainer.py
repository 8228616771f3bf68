"""`Trainer`: a small, explicit training loop with callbacks, an inner-maximisation hook and DDP."""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import os
import random
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import blockops
import numpy as np
import torch
from torch import nn

from .callbacks import Callback, set_rng_state
from .tracker import float_dtype, unwrap_model

__all__ = ["Trainer", "accuracy"]

Metric = Callable[[torch.Tensor, torch.Tensor], float | torch.Tensor]


def _correct(output: torch.Tensor, target: torch.Tensor | None) -> tuple[torch.Tensor, int]:
    """Correct predictions counted on the output's device (an int64 scalar) and how many
    predictions there are; see :func:`accuracy`."""
    if target is None:  # was "'bool' object has no attribute 'float'"
        raise ValueError("accuracy needs targets: the batches hold inputs only (target=None)")
    if output.ndim >= 2 and output.shape[-1] > 1:
        if target.shape == output.shape and target.is_floating_point():
            # one-hot / probabilities: compared element-wise they broadcast to a wrong
            # fraction (n == classes) or a shape error
            target = target.argmax(dim=-1)
        hits = output.argmax(dim=-1) == target
    else:
        t = target.reshape(-1).float()
        positive = t > 0 if bool((t < 0).any()) else t > 0.5
        hits = (output.reshape(-1) > 0) == positive
    return hits.sum(), hits.numel()


def accuracy(output: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Fraction of correct predictions: argmax of ``(n, classes)`` logits against class indices
    (or one-hot / class-probability targets of the logits' shape, as ``CrossEntropyLoss``
    takes them), or the sign of ``(n,)`` scores against ``+-1`` (or ``0/1``) targets.

    Returns:
        A float64 scalar on the CPU: the integer count of correct predictions divided by their
        number in Python (3 of 5 is exactly ``0.6``, not float32's ``0.6000000238``; devices
        without float64, such as MPS, only count). NaN for no predictions.

    Raises:
        ValueError: ``target`` is None (batches of inputs only).
    """
    correct, total = _correct(output, target)
    return torch.tensor(int(correct) / total if total else math.nan, dtype=torch.float64)


def _metric_sum(fn: Metric, output: torch.Tensor, target: Any, n: int) -> float:
    """``fn``'s value on a batch of ``n`` samples times ``n``; for :func:`accuracy`, from the
    integer count of correct predictions, so the epoch mean is the exact fraction."""
    if fn is accuracy:
        correct, total = _correct(output, target)
        return int(correct) * n / total if total else math.nan
    return float(fn(output, target)) * n


def _split_batch(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, Mapping):
        if "input" not in batch:
            raise ValueError(f"a dict batch needs an 'input' key, got keys {sorted(batch)}")
        inputs, target = batch["input"], batch.get("target")
    elif isinstance(batch, list | tuple):
        if len(batch) not in (1, 2):
            raise ValueError(
                f"a tuple batch must be (inputs, targets) or (inputs,), got {len(batch)} items"
            )
        inputs, target = batch[0], batch[1] if len(batch) == 2 else None
    elif isinstance(batch, torch.Tensor):
        inputs, target = batch, None
    else:
        raise TypeError(f"cannot read a batch of type {type(batch).__name__}")
    _check_batch_dim(inputs)
    return inputs, target


def _check_batch_dim(inputs: Any) -> None:
    """Refuse a 0-d tensor as a batch's inputs (or as the first of nested inputs): the loss and
    metrics are weighted by the batch size, its first dimension (was "len() of a 0-d tensor"
    after the optimizer step). An empty batch is refused too (its NaN mean loss, weighted by
    0, made the epoch's loss NaN)."""
    while isinstance(inputs, list | tuple) and inputs:
        inputs = inputs[0]
    if isinstance(inputs, torch.Tensor) and inputs.ndim == 0:
        raise ValueError(
            "a batch's inputs need a batch dimension, got a 0-d tensor; "
            "use x.unsqueeze(0) (or x.reshape(1, -1)) for a single sample"
        )
    if isinstance(inputs, torch.Tensor) and inputs.shape[0] == 0:
        raise ValueError(f"a batch's inputs hold no samples, got shape {tuple(inputs.shape)}")


def _to(x: Any, device: torch.device, dtype: torch.dtype | None = None) -> Any:
    """``x`` (a tensor, or nested lists / tuples of them) on ``device``, its floating tensors
    cast to ``dtype`` (integer labels keep theirs)."""
    if isinstance(x, torch.Tensor):
        cast = dtype if dtype is not None and x.is_floating_point() else None
        # non-blocking host-to-device only: a device-to-host copy (GPU batches, device="cpu")
        # must land before the CPU forward reads it
        return x.to(device, cast, non_blocking=device.type != "cpu")
    if isinstance(x, list | tuple):
        return type(x)(_to(v, device, dtype) for v in x)
    return x


def _batch_size(inputs: Any) -> int:
    """Samples in a batch's inputs: the length of the tensor, or of the first tensor of nested
    lists / tuples (a tuple of two input tensors counted 2 whatever the batch size)."""
    if isinstance(inputs, list | tuple) and inputs:
        return _batch_size(inputs[0])
    return len(inputs) if hasattr(inputs, "__len__") else 1


def _init_distributed(device: str | torch.device | None = "auto") -> torch.device:
    """Under torchrun: this rank's device (``cuda:LOCAL_RANK`` when ``device`` resolves to CUDA,
    made the current device) with the process group started if none is (NCCL on CUDA, Gloo on
    CPU). Start it before building data loaders that shard by rank."""
    want = blockops.resolve_device(device)
    if want.type == "cuda":
        want = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        # each rank owns its GPU: NCCL, pinned memory and "cuda" tensors use the
        # current device, which is otherwise cuda:0 on every rank
        torch.cuda.set_device(want)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if want.type == "cuda" else "gloo")
    return want


def _set_epoch(loader: Any, epoch: int) -> None:
    """``set_epoch`` on the loader's sampler (a ``DistributedSampler`` reshuffles per epoch),
    given as ``sampler=`` or inside a ``batch_sampler=``."""
    sampler = getattr(loader, "sampler", None)
    inner = getattr(getattr(loader, "batch_sampler", None), "sampler", None)
    for s in (sampler,) if inner is sampler else (sampler, inner):
        if hasattr(s, "set_epoch"):
            s.set_epoch(epoch)


# the arguments each callback hook is given, in order (``Callback``'s signatures)
_HOOK_ARGS: dict[str, tuple[str, ...]] = {
    "on_train_start": ("trainer", "model"),
    "on_train_end": ("trainer", "model"),
    "on_epoch_start": ("trainer", "model", "epoch"),
    "on_epoch_end": ("trainer", "model", "epoch", "logs"),
    "on_batch_start": ("trainer", "model", "batch", "batch_idx"),
    "on_step_end": ("trainer", "model", "step"),
    "on_batch_end": ("trainer", "model", "batch", "batch_idx", "loss"),
}


@functools.lru_cache(maxsize=512)
def _hook_names(func: Callable[..., Any], bound: bool, hook: str) -> tuple[str, ...] | None:
    """How to call a callback's ``hook`` (``func``, a method when ``bound``): ``None`` passes
    every argument positionally; else the names of the arguments it takes, passed by keyword
    (an ezflt-style ``on_epoch_end(self, trainer, model, epoch)``, or ``(self, epoch)``).

    Raises:
        TypeError: it takes fewer arguments than the hook gives, not named after them.
    """
    names = _HOOK_ARGS[hook]
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # no signature to read (a builtin): call it as usual
        return None
    if bound:
        params = params[1:]
    P = inspect.Parameter
    positional = [p for p in params if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == P.VAR_POSITIONAL for p in params) or len(positional) >= len(names):
        return None
    takes_any = any(p.kind == P.VAR_KEYWORD for p in params)
    named = [p for p in params if p.kind != P.VAR_KEYWORD]
    if all(p.name in names and p.kind != P.POSITIONAL_ONLY for p in named):
        return names if takes_any else tuple(p.name for p in named)
    raise TypeError(
        f"callback hook {getattr(func, '__qualname__', hook)}{inspect.signature(func)} takes "
        f"fewer arguments than the Trainer gives ({', '.join(names)}) and they are not named "
        "after them: accept them all, or name the ones it takes among those"
    )


# Lightning hook names a migrating user writes, and the hook the Trainer calls instead
_LIGHTNING_HOOKS: dict[str, str] = {
    "on_fit_start": "on_train_start",
    "on_fit_end": "on_train_end",
    "on_train_epoch_start": "on_epoch_start",
    "on_train_epoch_end": "on_epoch_end",
    "on_validation_epoch_end": "on_epoch_end",
    "on_train_batch_start": "on_batch_start",
    "on_train_batch_end": "on_batch_end",
    "on_before_optimizer_step": "on_step_end",
}


def _warn_unknown_hooks(cb: Callback) -> None:
    """Warn about ``on_*`` methods of ``cb``'s class that the Trainer never calls (a Lightning
    name such as ``on_train_batch_end``, or a typo), naming the hook it calls instead."""
    unknown = sorted(
        {
            name
            for klass in type(cb).__mro__
            if klass not in (Callback, object)
            for name, value in vars(klass).items()
            if name.startswith("on_") and name not in _HOOK_ARGS and callable(value)
        }
    )
    if unknown:
        hints = [
            f"{n} (use {_LIGHTNING_HOOKS[n]})" if n in _LIGHTNING_HOOKS else n for n in unknown
        ]
        warnings.warn(
            f"{type(cb).__name__} defines {', '.join(hints)}, which the Trainer never calls; "
            f"its hooks are {', '.join(_HOOK_ARGS)}",
            UserWarning,
            stacklevel=3,
        )


def _hook_of(cb: Callback, hook: str) -> tuple[Callable[..., Any], tuple[str, ...] | None]:
    """``cb``'s ``hook`` and how to call it (see :func:`_hook_names`)."""
    fn = getattr(cb, hook)
    func = getattr(fn, "__func__", fn)
    return fn, _hook_names(func, func is not fn, hook)


def _is_plateau(scheduler: Any) -> bool:
    """Whether ``scheduler`` steps on a metric (``ReduceLROnPlateau``)."""
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


class Trainer:
    """Train a model with callbacks; nothing is guessed.

    Each batch: ``on_batch_start`` -> ``inner_max`` (e.g. an adversarial attack replacing the
    inputs) -> ``zero_grad`` -> forward -> ``loss_fn`` -> backward -> gradient clipping ->
    ``optimizer.step()`` -> ``on_step_end`` -> per-step scheduler -> ``on_batch_end``.
    Validation runs in eval mode under ``torch.no_grad``. Every batch is moved to ``device`` and
    its floating tensors are cast to the model's floating dtype of that moment (so float64 data,
    or ``model.double()`` after construction, just work); integer labels keep their dtype.
    A NaN or infinite training loss stops ``fit`` after that batch with a ``RuntimeWarning``
    (the epoch is logged with its non-finite loss): later steps would only train NaN weights.
    Callback hooks may take fewer arguments than :class:`~flt_tracker.callbacks.Callback`'s when
    they are named after them (ezflt's ``on_epoch_end(self, trainer, model, epoch)``, or
    ``on_epoch_end(self, epoch)``); they are passed by name. The Trainer starts neither wandb nor
    Hydra: add a :class:`~flt_tracker.callbacks.WandbCallback` (``flt-train`` does both).

    Under ``torchrun`` (``WORLD_SIZE > 1``) the model is wrapped in DistributedDataParallel
    (the process group is created if needed: NCCL on CUDA, Gloo on CPU), losses are averaged
    over ranks, and callbacks marked ``rank_zero_only`` (tracking, loggers, wandb, checkpoints)
    run on rank 0 only. Give the training loader a ``DistributedSampler`` (as ``sampler=`` or in a
    ``batch_sampler=``); ``fit`` calls its ``set_epoch`` every epoch. Epoch metrics, validation
    included, are sums over ranks divided by the total sample count, so give each rank a
    disjoint part of the validation set; a ``DistributedSampler`` there pads the shards with
    repeated samples, which then count twice.

    Args:
        model: the model (moved to ``device`` in place, so an optimizer built before stays valid).
        optimizer: its optimizer.
        callbacks: list of :class:`~flt_tracker.callbacks.Callback`.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a torch.device
            (``blockops.resolve_device``); under torchrun, ``cuda:LOCAL_RANK`` when CUDA is used.
        loss_fn: ``loss_fn(output, target) -> scalar``; default ``nn.CrossEntropyLoss()``.
            The epoch ``loss`` (and each metric) is the mean of the batch values weighted by
            batch size: the per-sample mean for a loss that averages over its batch
            (``reduction="mean"``), not for a summed one.
            When a batch has no target it is called as ``loss_fn(output, inputs)``; such
            batches need an explicit ``loss_fn`` (a ``ValueError`` with the default).
        scheduler: learning-rate scheduler of ``optimizer`` (one of another optimizer is a
            ``ValueError``), stepped every epoch or every step. A ``ReduceLROnPlateau`` is
            stepped every epoch with the metric ``scheduler_monitor``.
        scheduler_interval: ``"epoch"`` or ``"step"``.
        scheduler_monitor: the epoch metric a ``ReduceLROnPlateau`` watches (e.g.
            ``"val_accuracy"``); ``None`` picks ``"val_loss"`` when ``fit`` gets a
            ``val_loader``, else ``"loss"``.
        inner_max: ``inner_max(model, inputs, targets) -> inputs`` run before the training
            forward (adversarial training); gradients it leaves on the parameters are cleared.
        grad_clip: clip the global gradient norm to this value.
        seed: seed Python, numpy and torch at the start of the first ``fit`` (a later call
            continues the random streams, so ``fit(n); fit(m)`` replays ``fit(n + m)``; after
            :meth:`load_checkpoint` the restored streams are kept).
        metrics: extra metrics ``{name: fn(output, target)}`` averaged per epoch (train and
            val); the string ``"accuracy"`` may be given instead of a function (its correct
            predictions are summed as integers: the epoch value is the exact fraction).
            ``"loss"`` and ``"epoch"`` are taken (a ``ValueError``).
        progress: show tqdm progress bars.
        distributed: ``"auto"`` (DDP under torchrun), or ``False`` to never wrap.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        callbacks: Iterable[Callback] | None = None,
        device: str | torch.device | None = "auto",
        loss_fn: Callable[[Any, Any], torch.Tensor] | None = None,
        scheduler: Any = None,
        scheduler_interval: str = "epoch",
        scheduler_monitor: str | None = None,
        inner_max: Callable[[nn.Module, Any, Any], Any] | None = None,
        grad_clip: float | None = None,
        seed: int | None = None,
        metrics: Mapping[str, Metric | str] | None = None,
        progress: bool = False,
        distributed: str | bool = "auto",
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        given = {id(p) for g in optimizer.param_groups for p in g["params"]}
        if given.isdisjoint(id(p) for p in model.parameters()):  # another model's optimizer
            raise ValueError(
                "optimizer holds none of the model's parameters: it would not train it"
            )
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"scheduler_interval={scheduler_interval!r}; use 'epoch' or 'step'")
        stepped = getattr(scheduler, "optimizer", optimizer)
        if stepped is not optimizer:  # it changed another optimizer's lr: never this one's
            raise ValueError(
                "scheduler is bound to another optimizer than the Trainer's: it would never "
                "change the trained learning rate; build it on the optimizer given here"
            )
        if _is_plateau(scheduler) and scheduler_interval != "epoch":
            raise ValueError(
                "a ReduceLROnPlateau scheduler watches an epoch metric: use scheduler_interval='epoch'"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"seed={seed!r} must be an integer or None")  # failed in fit
        if distributed not in ("auto", False):  # True (or "yes") never wrapped the model
            raise ValueError(f"distributed={distributed!r}; use 'auto' or False")
        if grad_clip is not None:
            try:
                clip = float(grad_clip)
            except (TypeError, ValueError):  # "abc" was a bare float() error
                raise TypeError(
                    f"grad_clip={grad_clip!r} must be a positive number or None"
                ) from None
            if not clip > 0:
                raise ValueError(f"grad_clip={grad_clip!r} must be positive or None")
        if isinstance(callbacks, Callback):  # was "'EarlyStopping' object is not iterable"
            raise TypeError(
                f"callbacks must be a list of Callback instances, got one "
                f"{type(callbacks).__name__}: pass callbacks=[...]"
            )
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be Callback instances, got {type(cb).__name__}")
            for hook in _HOOK_ARGS:  # a hook it could not be called with fails here, not mid-fit
                _hook_of(cb, hook)
            _warn_unknown_hooks(cb)
        self.optimizer = optimizer
        self.loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
        # the CrossEntropyLoss built here, if any (a loss_fn set on the trainer later counts)
        self._default_loss: nn.Module | None = self.loss_fn if loss_fn is None else None
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.scheduler_monitor = scheduler_monitor
        self.inner_max = inner_max
        self.grad_clip = grad_clip
        self.seed = seed
        self.metrics: dict[str, Metric] = {}
        for name, fn in (metrics or {}).items():
            if name in ("loss", "epoch"):  # summed into the loss / replaced the epoch number
                raise ValueError(
                    f"metrics[{name!r}]: {name!r} is a key of the epoch logs already; "
                    "name the metric otherwise"
                )
            if fn == "accuracy":
                fn = accuracy
            if not callable(fn):
                raise TypeError(f"metrics[{name!r}] must be callable or 'accuracy', got {fn!r}")
            self.metrics[name] = fn
        self.progress = bool(progress)

        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.distributed = distributed == "auto" and self.world_size > 1
        self.rank = int(os.environ.get("RANK", "0")) if self.distributed else 0
        if self.distributed:
            self.device = _init_distributed(device)
        else:
            self.device = blockops.resolve_device(device)
        model.to(self.device)
        if self.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        self.model = model
        self.global_step = 0
        self.epoch = 0
        self.stop_training = False
        self.history: list[dict[str, float]] = []
        self._seeded = False
        self.error: BaseException | None = None
        """The exception that ended the last ``fit``, while ``on_train_end`` runs (else None)."""

    @property
    def is_main_process(self) -> bool:
        """True on rank 0 (and without DDP)."""
        return self.rank == 0

    def _callbacks(self) -> list[Callback]:
        return [cb for cb in self.callbacks if self.is_main_process or not cb.rank_zero_only]

    def _emit(self, hook: str, *args: Any) -> None:
        values = (self, self.model, *args)
        for cb in self._callbacks():
            fn, names = _hook_of(cb, hook)
            if names is None:
                fn(*values)
            else:  # a hook taking fewer arguments, by name (ezflt's had no ``logs``)
                fn(**{n: v for n, v in zip(_HOOK_ARGS[hook], values) if n in names})

    def get_metrics(self) -> dict[str, float]:
        """Metrics of the last finished epoch (empty before the first)."""
        return dict(self.history[-1]) if self.history else {}

    def _reduce(self, sums: dict[str, float], count: int, what: str) -> dict[str, float]:
        if self.distributed:
            keys = sorted(sums)
            t = torch.tensor(
                [sums[k] for k in keys] + [count], dtype=torch.float64, device=self.device
            )
            torch.distributed.all_reduce(t)
            sums = dict(zip(keys, t[:-1].tolist()))
            count = int(t[-1].item())
        if count == 0:
            raise ValueError(
                f"{what} yielded no batches (an empty loader, or a one-shot iterator used up)"
            )
        return {k: v / count for k, v in sums.items()}

    def _seed(self) -> None:
        if self.seed is None or self._seeded:
            return
        self._seeded = True
        random.seed(self.seed)
        np.random.seed(self.seed % 2**32)  # noqa: NPY002 (seeds user code using the global RNG)
        torch.manual_seed(self.seed)

    def _bar(self, iterable: Any, desc: str) -> Any:
        if not self.progress or not self.is_main_process:
            return iterable
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, leave=False)

    def fit(
        self, train_loader: Iterable[Any], num_epochs: int, val_loader: Iterable[Any] | None = None
    ) -> list[dict[str, float]]:
        """Train ``num_epochs`` epochs; a second call continues the epoch and step counts.

        Args:
            train_loader: iterable of batches ``(inputs, targets)``, ``(inputs,)``, a tensor, or
                a dict with ``"input"`` and optional ``"target"``.
            num_epochs: epochs to run.
            val_loader: optional validation batches, evaluated after each epoch.

        Returns:
            The history: one dict of metrics per epoch of this and earlier calls.

        Raises:
            TypeError: ``num_epochs`` is not an int.
            ValueError: ``num_epochs`` is negative, or a loader yields no batches in an epoch.
        """
        if isinstance(num_epochs, bool) or not isinstance(num_epochs, numbers.Integral):
            raise TypeError(f"num_epochs={num_epochs!r} must be an int")
        num_epochs = int(num_epochs)
        if num_epochs < 0:
            raise ValueError(f"num_epochs={num_epochs!r} must be a non-negative int")
        self._seed()
        self.stop_training = False
        self.error = None
        first = self.epoch
        try:
            self._emit("on_train_start")
            for epoch in range(first, first + num_epochs):
                self.epoch = epoch
                _set_epoch(train_loader, epoch)
                self._emit("on_epoch_start", epoch)
                logs = self._train_epoch(train_loader, epoch)
                if not self.stop_training and not math.isfinite(logs["loss"]):
                    # the mean over the ranks: every rank stops at the same epoch
                    self._stop_diverged(f"epoch {epoch} had mean loss {logs['loss']}", 3)
                if val_loader is not None:
                    logs.update({f"val_{k}": v for k, v in self.evaluate(val_loader).items()})
                if _is_plateau(self.scheduler):
                    self.scheduler.step(self._monitored(logs, val_loader is not None))
                elif self.scheduler is not None and self.scheduler_interval == "epoch":
                    self.scheduler.step()
                logs = {"epoch": epoch, **logs}
                self.history.append(logs)
                self._emit("on_epoch_end", epoch, logs)
                self.epoch = epoch + 1
                if self.stop_training:
                    break
        except BaseException as exc:  # callbacks see it in on_train_end (wandb: a failed run)
            self.error = exc
            raise
        finally:
            self._emit("on_train_end")
        return self.history

    def _stop_diverged(self, what: str, stacklevel: int) -> None:
        """Stop ``fit`` after this batch (or epoch) with a warning: the training loss is NaN or
        infinite, so every later step would train, and the tracker record, non-finite weights."""
        self.stop_training = True
        warnings.warn(
            f"training diverged: {what} (global step {self.global_step}); stopping after it. "
            "The step was taken, so the weights (and a snapshot tracked at this step) may be "
            "non-finite; lower the learning rate or pass grad_clip",
            RuntimeWarning,
            stacklevel=stacklevel,
        )

    def _monitored(self, logs: dict[str, float], has_val: bool) -> float:
        key = self.scheduler_monitor or ("val_loss" if has_val else "loss")
        if key not in logs:
            raise KeyError(
                f"scheduler_monitor={key!r} is not an epoch metric; available: {sorted(logs)}"
            )
        return logs[key]

    def _prepare(self, batch: Any) -> tuple[Any, Any]:
        """``(inputs, target)`` of ``batch`` on the device, floating tensors in the model's
        floating dtype of this moment (it follows ``model.double()`` called after construction;
        a model with several floating dtypes gets its batches unchanged)."""
        inputs, target = _split_batch(batch)
        if target is None and self.loss_fn is self._default_loss:
            # cross-entropy against the inputs: a negative "loss" for an autoencoder, trained
            # without a word
            raise ValueError(
                "a batch without targets is scored as loss_fn(output, inputs), and loss_fn "
                "defaults to CrossEntropyLoss (for class targets); pass loss_fn, e.g. "
                "loss_fn=nn.MSELoss() for an autoencoder"
            )
        dtype = float_dtype(self.model)
        return _to(inputs, self.device, dtype), _to(target, self.device, dtype)

    def _train_epoch(self, loader: Iterable[Any], epoch: int) -> dict[str, float]:
        self.model.train()
        sums = {"loss": 0.0, **{k: 0.0 for k in self.metrics}}
        count = 0
        for batch_idx, batch in enumerate(self._bar(loader, f"epoch {epoch}")):
            self._emit("on_batch_start", batch, batch_idx)
            inputs, target = self._prepare(batch)
            if self.inner_max is not None:
                inputs = self.inner_max(self.model, inputs, target)
                self.model.train()
            self.optimizer.zero_grad(set_to_none=True)
            output = self.model(inputs)
            loss = self.loss_fn(output, target if target is not None else inputs)
            loss.backward()
            if self.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(self.grad_clip))
            self.optimizer.step()
            self.global_step += 1
            self._emit("on_step_end", self.global_step)
            if self.scheduler is not None and self.scheduler_interval == "step":
                self.scheduler.step()
            n = _batch_size(inputs)
            value = float(loss.detach())
            if not self.distributed and not math.isfinite(value):  # DDP: the epoch's loss, below
                self._stop_diverged(f"batch {batch_idx} of epoch {epoch} had loss {value}", 4)
            sums["loss"] += value * n
            with torch.no_grad():
                for name, fn in self.metrics.items():
                    sums[name] += _metric_sum(fn, output.detach(), target, n)
            count += n
            self._emit("on_batch_end", batch, batch_idx, value)
            if self.stop_training:
                break
        return self._reduce(sums, count, "the training loader")

    def evaluate(self, loader: Iterable[Any]) -> dict[str, float]:
        """Mean loss and metrics over ``loader`` in eval mode under ``torch.no_grad``
        (the model's training flag is restored)."""
        was_training = self.model.training
        self.model.eval()
        sums = {"loss": 0.0, **{k: 0.0 for k in self.metrics}}
        count = 0
        try:
            with torch.no_grad():
                for batch in loader:
                    inputs, target = self._prepare(batch)
                    output = self.model(inputs)
                    n = _batch_size(inputs)
                    sums["loss"] += (
                        float(self.loss_fn(output, target if target is not None else inputs)) * n
                    )
                    for name, fn in self.metrics.items():
                        sums[name] += _metric_sum(fn, output, target, n)
                    count += n
        finally:
            self.model.train(was_training)
        return self._reduce(sums, count, "the evaluation loader")

    def load_checkpoint(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Resume from a :class:`~flt_tracker.callbacks.ModelCheckpoint` file (``last.pt``):
        the model, the optimizer and scheduler states when saved, the epoch and step counts
        and the random streams (so ``seed`` does not reseed them). The next ``fit`` continues
        with the epoch after the saved one; see ``ModelCheckpoint`` for what is not restored.

        Returns:
            The checkpoint, as loaded with ``weights_only=True`` on the CPU.
        """
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        self.raw_model.load_state_dict(ckpt["model"])
        if "optimizer" in ckpt:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        if "scheduler" in ckpt and self.scheduler is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.epoch, self.global_step = int(ckpt["epoch"]) + 1, int(ckpt["global_step"])
        if "rng_state" in ckpt:  # files of earlier versions have none
            set_rng_state(ckpt["rng_state"])
            self._seeded = True
        return ckpt

    @property
    def raw_model(self) -> nn.Module:
        """The model without its DDP / ``torch.compile`` wrappers."""
        return unwrap_model(self.model)
