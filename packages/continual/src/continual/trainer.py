"""Trainer: one plain training loop, any strategy, a stream of experiences, safe checkpoints."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import blockops
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from .__about__ import __version__
from ._checks import check_count, check_number
from .learner import (
    _check_ewc_tensors,
    _check_label_range,
    _is_labels,
    _takes_classes,
    _to_target,
)
from .metrics import ResultMatrix
from .scenarios import Experience, Scenario
from .serialize import flatten_state, unflatten_state
from .strategies import Naive, Strategy, fisher_on

__all__ = ["Callback", "History", "Trainer", "fit_stream"]

_NEG = -1e9
CHECKPOINT_FORMAT = 1


class Callback:
    """Hooks called by :meth:`Trainer.fit_stream`; override the ones you need."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first experience (after a resume, the first remaining one)."""

    def on_experience_start(self, trainer: Trainer, experience: Experience) -> None:
        """Before training on an experience."""

    def on_epoch_end(
        self, trainer: Trainer, experience: Experience, epoch: int, loss: float
    ) -> None:
        """After each epoch, with the mean training loss of the epoch."""

    def on_experience_end(
        self, trainer: Trainer, experience: Experience, results: list[float]
    ) -> None:
        """After training on an experience and evaluating every test experience."""

    def on_fit_end(self, trainer: Trainer, matrix: ResultMatrix) -> None:
        """After the last experience."""


class History(Callback):
    """Records epoch losses and the evaluation row of every experience.

    Attributes:
        losses: ``(experience id, epoch, mean loss)`` tuples.
        rows: ``(experience id, [metric on each test experience])`` tuples.
    """

    def __init__(self) -> None:
        self.losses: list[tuple[int, int, float]] = []
        self.rows: list[tuple[int, list[float]]] = []

    def on_epoch_end(
        self, trainer: Trainer, experience: Experience, epoch: int, loss: float
    ) -> None:
        self.losses.append((experience.task_id, epoch, loss))

    def on_experience_end(
        self, trainer: Trainer, experience: Experience, results: list[float]
    ) -> None:
        self.rows.append((experience.task_id, list(results)))


OptimizerSpec = str | Callable[[Any], torch.optim.Optimizer] | torch.optim.Optimizer


class Trainer:
    """Train a model over a stream of experiences with a continual-learning strategy.

    The loop per batch is: ``zero_grad`` -> strategy ``before_forward`` -> forward -> loss
    (+ strategy penalty) -> ``backward`` -> strategy ``after_backward`` -> ``optimizer.step`` ->
    strategy ``after_step``. Experiences backed by a ``TensorDataset`` are moved to the device once
    per epoch and batched by indexing (no DataLoader overhead); other datasets go through a
    ``DataLoader`` with the trainer's generator (an ``IterableDataset``, a stream, is read in its
    own order). Floating inputs are cast to the model's dtype (float64 data, float32 model);
    integer labels of any dtype (int32, uint8, ...) to int64.
    Every random choice of the trainer uses its own generator.

    Args:
        model: any ``nn.Module`` (a :class:`~continual.ContinualLearner` works too).
        strategy: the plugin (``Naive()`` if None).
        optimizer: ``"sgd"``, ``"adam"``, a callable ``params -> Optimizer`` or an optimizer
            built on ``model.parameters()``.
        lr: learning rate for ``"sgd"`` / ``"adam"``. Assigning ``trainer.lr`` later sets the
            rate of every parameter group (of any optimizer) at the next training step.
        loss_fn: ``loss_fn(output, target) -> scalar`` (cross-entropy if None).
        metric: ``"accuracy"`` (argmax vs label, higher is better) or ``"loss"`` (mean
            ``loss_fn``, lower is better; for regression).
        epochs: epochs per experience.
        batch_size: training batch size.
        eval_batch_size: evaluation batch size.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``.
        callbacks: :class:`Callback` instances.
        verbose: show tqdm progress bars.
        random_state: seed of the trainer's generator (batch order).
        eval_initial: evaluate the untrained model first (needed for forward transfer).
        last_batch: how an epoch of ``n`` training rows is cut when ``batch_size`` does not
            divide ``n``. ``"even"`` (default): ``ceil(n / batch_size)`` batches whose sizes
            differ by at most one, so every row is seen once and no step is taken on a tiny
            remainder batch (a step on, say, 3 rows has a much noisier gradient than the
            others and, with a strong regulariser, can undo much of an epoch). ``"keep"``: full
            batches then the remainder (PyTorch's ``DataLoader`` default). ``"drop"``: full
            batches only (``drop_last=True``; an experience smaller than one batch is still
            trained on as one batch).
    """

    def __init__(
        self,
        model: nn.Module,
        strategy: Strategy | None = None,
        *,
        optimizer: OptimizerSpec = "sgd",
        lr: float = 0.01,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        metric: str = "accuracy",
        epochs: int = 1,
        batch_size: int = 32,
        eval_batch_size: int = 512,
        device: str | torch.device = "auto",
        callbacks: Sequence[Callback] = (),
        verbose: bool = False,
        random_state: Any = 0,
        eval_initial: bool = False,
        last_batch: str = "even",
    ) -> None:
        if last_batch not in ("even", "keep", "drop"):
            raise ValueError(
                f"last_batch={last_batch!r} is not understood; expected 'even', 'keep' or 'drop'"
            )
        if metric not in ("accuracy", "loss"):
            raise ValueError(f"metric={metric!r} is not understood; expected 'accuracy' or 'loss'")
        check_count("epochs", epochs)
        check_count("batch_size", batch_size)
        check_count("eval_batch_size", eval_batch_size)
        check_number("lr", lr, positive=True)
        _check_parts(model, strategy, loss_fn, callbacks)
        self.device = blockops.resolve_device(device, name="device")
        self.model = model.to(self.device)
        self.strategy = strategy if strategy is not None else Naive()
        self.lr = lr
        self._applied_lr = lr  # the lr last given to the optimizer (see _sync_lr)
        self.optimizer = self._make_optimizer(optimizer)
        self.loss_fn = loss_fn if loss_fn is not None else F.cross_entropy
        self.metric = metric
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size)
        self.callbacks = list(callbacks)
        self.verbose = verbose
        self.generator = blockops.make_generator(random_state, "cpu")
        self.eval_initial = eval_initial
        self.last_batch = last_batch
        self.experiences_done = 0
        self.results: ResultMatrix | None = None
        self._mask_rows: dict[int, tuple[int, ...]] = {}
        self._mask_table: torch.Tensor | None = None
        self._n_outputs: int | None = None
        self._distributed = (
            torch.distributed.is_available()
            and torch.distributed.is_initialized()
            and torch.distributed.get_world_size() > 1
        )
        self._named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        floats = [p.dtype for p in self.model.parameters() if p.is_floating_point()]
        self._dtype = floats[0] if floats else torch.get_default_dtype()
        self._raw_output: torch.Tensor | None = None
        self.strategy.setup(self)
        self.strategy._model = model  # its state is this model's from now on (_check_parts)

    # ------------------------------------------------------------------ building blocks
    def _make_optimizer(self, spec: OptimizerSpec) -> torch.optim.Optimizer:
        if isinstance(spec, torch.optim.Optimizer):
            given = {id(p) for g in spec.param_groups for p in g["params"]}
            if given.isdisjoint(id(p) for p in self.model.parameters()):
                raise ValueError(  # it stepped another model's weights: this one never trained
                    "optimizer holds none of the model's parameters; build it on "
                    "model.parameters() (or pass 'sgd', 'adam' or a callable)"
                )
            return spec
        params = [p for p in self.model.parameters() if p.requires_grad]
        if spec == "sgd":
            return torch.optim.SGD(params, lr=self.lr)
        if spec == "adam":
            return torch.optim.Adam(params, lr=self.lr)
        if callable(spec):
            built = spec(params)
            if not isinstance(built, torch.optim.Optimizer):  # failed at the first zero_grad
                raise TypeError(
                    "optimizer must return a torch.optim.Optimizer when called with the "
                    f"parameters, got {type(built).__name__}"
                )
            return built
        raise ValueError(
            f"optimizer={spec!r} is not understood; expected 'sgd', 'adam', a callable or an Optimizer"
        )

    def _sync_lr(self) -> None:
        """Give every parameter group the ``lr`` assigned since the last step (an assignment
        after construction used to be ignored, the optimizer being already built); the groups'
        own rates (a scheduler's, a checkpoint's) are left alone while ``lr`` is unchanged."""
        if self.lr == self._applied_lr:
            return
        check_number("lr", self.lr, positive=True)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        self._applied_lr = self.lr

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` on the trainer's device; floating inputs in the model's dtype (float64 data
        trains a float32 model in float32)."""
        if x.is_floating_point():
            return x.to(self.device, self._dtype)
        return x.to(self.device)

    def to_target(self, y: torch.Tensor) -> torch.Tensor:
        """Labels / targets ``(n, ...)`` on the trainer's device; integer labels of any dtype
        (int32, uint8, ...) as int64, the dtype of the scenario builders and torch's losses."""
        return _to_target(y, self.device)

    def named_trainable(self) -> list[tuple[str, nn.Parameter]]:
        """``(name, parameter)`` of every parameter that requires grad."""
        return self._named

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters that require grad, in ``named_parameters`` order."""
        return [p for _, p in self._named]

    def output(self, out: Any) -> torch.Tensor:
        """The tensor the loss uses from a raw forward output (``model_output`` if defined)."""
        if isinstance(out, torch.Tensor):
            return out
        select = getattr(self.model, "model_output", None)
        if select is None:
            raise TypeError(
                f"the model returned a {type(out).__name__}; use a ContinualLearner with output_index"
            )
        return select(out)

    def mask_output(self, out: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """Mask logits outside each row's task classes (task-incremental experiences only)."""
        if self._mask_table is None:
            return out
        mask = self._mask_table[task_ids]
        if mask.shape[0] == 1 and out.shape[0] != 1:
            mask = mask.expand(out.shape[0], -1)
        return out.masked_fill(~mask, _NEG)

    def _output_count(self, x: torch.Tensor) -> int:
        """The number of model outputs (logits), from one forward of a row of ``x`` the first
        time (no gradient, eval mode), cached after."""
        if self._n_outputs is None:
            with torch.no_grad():
                was = self.model.training
                self.model.eval()
                self._n_outputs = int(self.output(self.model(self.to_input(x[:1]))).shape[-1])
                self.model.train(was)
        return self._n_outputs

    @property
    def classifies(self) -> bool:
        """Whether the targets are class labels: the accuracy metric, or a cross-entropy / NLL
        loss (a custom loss with ``metric="loss"`` may take any target)."""
        return self.metric == "accuracy" or _takes_classes(self.loss_fn)

    def check_labels(self, x: torch.Tensor, y: torch.Tensor, task_id: int) -> None:
        """Refuse class labels ``y`` (1-D, integer) outside ``0..n_outputs - 1`` (with the
        accuracy metric or a cross-entropy / NLL loss: the labels are classes).

        Called where the labels enter the trainer (once per experience pass for a
        ``TensorDataset``, per host batch otherwise), not per training step: a CUDA label
        tensor costs one synchronisation per pass. ``cross_entropy`` failed with "Target 12
        is out of bounds" (a device-side assert on CUDA).
        """
        if self.classifies and _is_labels(y):  # a custom loss may take integer non-classes
            _check_label_range(y, self._output_count(x), f"experience {task_id}")

    def check_accuracy_targets(self, y: torch.Tensor, task_id: int) -> None:
        """Refuse targets that ``metric="accuracy"`` cannot compare with the argmax: anything but
        1-D integer class labels (regression targets failed with a broadcasting error in the
        first evaluation, after an experience had been trained)."""
        if self.metric == "accuracy" and not _is_labels(y):
            raise ValueError(
                f"metric='accuracy' compares the argmax with integer class labels, but "
                f"experience {task_id} has {y.dtype} targets of shape {tuple(y.shape)}; cast "
                "class labels to an integer dtype, or use metric='loss' (with a loss_fn such as "
                "F.mse_loss) for regression"
            )

    def _register_masks(self, experiences: Sequence[Experience]) -> None:
        rows = dict(self._mask_rows)  # kept only once checked against the model's outputs
        for e in experiences:
            if e.masked and e.task_id not in rows:
                rows[e.task_id] = tuple(int(c) for c in e.classes or ())
        if not rows:
            return
        self._output_count(_first_input(experiences[0]))
        n_tasks = max(max(rows), max(e.task_id for e in experiences)) + 1
        table = torch.ones(n_tasks, self._n_outputs, dtype=torch.bool)
        for t, classes in rows.items():
            outside = [c for c in classes if not 0 <= c < self._n_outputs]
            if outside:  # used to fail with a bare IndexError of the mask table
                raise ValueError(
                    f"experience {t} has classes {outside} but the model has "
                    f"{self._n_outputs} outputs (classes 0..{self._n_outputs - 1}); build it "
                    "with one output per class (scenario.n_classes)"
                )
            table[t] = False
            table[t, list(classes)] = True
        self._mask_rows = rows
        self._mask_table = table.to(self.device)

    def batch_grads(self, batch: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Gradients of the loss on ``(x, y, task_ids, ...)`` w.r.t. the trainable parameters.

        Uses ``torch.autograd.grad`` (``.grad`` is untouched); unreached parameters get zeros.
        """
        x, y, t = self.to_input(batch[0]), self.to_target(batch[1]), batch[2]
        out = self.mask_output(self.output(self.model(x)), t)
        loss = self.loss_fn(out, y)
        params = self.trainable_parameters()
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]

    def write_grads(self, flat: torch.Tensor) -> None:
        """Copy a flat gradient vector back into the ``.grad`` of the trainable parameters."""
        offset = 0
        for p in self.trainable_parameters():
            k = p.numel()
            piece = flat[offset : offset + k].view_as(p)
            if p.grad is None:
                p.grad = piece.clone()
            else:
                p.grad.copy_(piece)
            offset += k

    def fisher(
        self, experience: Experience, max_samples: int | None = None
    ) -> dict[str, torch.Tensor]:
        """Per-sample empirical Fisher of the model on an experience (task mask applied)."""
        return fisher_on(self, experience, max_samples)

    # ------------------------------------------------------------------ batching
    def _batch_bounds(self, n: int, batch_size: int, train: bool) -> list[tuple[int, int]]:
        """``(start, stop)`` of each batch over ``n`` rows (see ``last_batch``)."""
        if not train or self.last_batch == "keep" or n <= batch_size:
            return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
        if self.last_batch == "drop":
            return [(s, s + batch_size) for s in range(0, n - batch_size + 1, batch_size)]
        k = -(-n // batch_size)  # "even": as many batches as "keep", sizes differ by <= 1
        base, extra = divmod(n, k)
        bounds, start = [], 0
        for i in range(k):
            stop = start + base + (1 if i < extra else 0)
            bounds.append((start, stop))
            start = stop
        return bounds

    def _batches(
        self, dataset: Dataset, task_id: int, shuffle: bool, batch_size: int
    ) -> Iterator[tuple[torch.Tensor, ...]]:
        if isinstance(dataset, TensorDataset):
            _check_has_targets(dataset.tensors, task_id)
            self.check_labels(dataset.tensors[0], dataset.tensors[1], task_id)
            tensors = [self.to_input(dataset.tensors[0]), self.to_target(dataset.tensors[1])]
            task_ids = getattr(dataset, "task_ids", None)
            n = tensors[0].shape[0]
            tids = (
                task_ids.to(self.device)
                if task_ids is not None
                else torch.full((n,), task_id, dtype=torch.long, device=self.device)
            )
            order = torch.randperm(n, generator=self.generator).to(self.device) if shuffle else None
            for start, stop in self._batch_bounds(n, batch_size, shuffle):
                if order is None:
                    sl = slice(start, stop)
                    yield tensors[0][sl], tensors[1][sl], tids[sl]
                else:
                    idx = order[start:stop]
                    yield tensors[0][idx], tensors[1][idx], tids[idx]
            return
        if shuffle and not isinstance(dataset, IterableDataset):  # a stream keeps its order
            n = len(dataset)  # type: ignore[arg-type]
            perm = torch.randperm(n, generator=self.generator).tolist()
            sampler = [perm[a:b] for a, b in self._batch_bounds(n, batch_size, True)]
            loader = DataLoader(dataset, batch_sampler=sampler, num_workers=0)
        else:
            loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
        tagged = getattr(dataset, "yields_task_ids", False)  # Joint: rows of several tasks
        for batch in loader:
            _check_has_targets(batch, task_id)
            if batch[1].device.type == "cpu":  # a CUDA batch is not checked: a sync per step
                self.check_labels(batch[0], batch[1], task_id)
            x, y = self.to_input(batch[0]), self.to_target(batch[1])
            if tagged:
                yield x, y, batch[2].to(self.device)
            else:
                yield x, y, torch.full((x.shape[0],), task_id, dtype=torch.long, device=self.device)

    # ------------------------------------------------------------------ training
    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """One optimisation step on ``(x, y, task_ids)``; returns the (detached) loss."""
        strategy = self.strategy
        self._sync_lr()
        self.optimizer.zero_grad(set_to_none=True)
        batch = strategy.before_forward(self, batch)
        x, y, t = batch
        self._raw_output = self.output(self.model(x))  # before the task mask (LwF reads it)
        out = self.mask_output(self._raw_output, t)
        loss = self.loss_fn(out, y)
        extra = strategy.penalty(self, batch, out)
        if extra is not None:
            loss = loss + extra
        loss.backward()
        if self._distributed:
            world = torch.distributed.get_world_size()
            for p in self.trainable_parameters():
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                torch.distributed.all_reduce(p.grad)
                p.grad /= world
        strategy.after_backward(self, batch)
        self.optimizer.step()
        strategy.after_step(self, batch, out)
        self._raw_output = None
        return loss.detach()

    def train_experience(self, experience: Experience) -> list[float]:
        """Train on one experience for ``epochs`` epochs; returns the mean loss of each epoch.

        A ``RuntimeWarning`` is issued when an epoch's mean loss is NaN or infinite (NaN/inf in
        the data, or a diverging run).

        Raises:
            ValueError: the experience has no samples, or an epoch yields no batch (a stream
                that can be read only once, trained for several epochs).
        """
        if hasattr(experience.dataset, "__len__") and len(experience) == 0:  # streams: unknown
            raise ValueError(f"experience {experience.task_id} has no training samples")
        self._register_masks([experience])
        self.strategy.before_experience(self, experience)
        data = self.strategy.train_dataset(self, experience)
        self.model.train()
        losses = []
        bar = None
        if self.verbose:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.epochs, desc=f"experience {experience.task_id}", leave=False)
        for epoch in range(self.epochs):
            total = torch.zeros((), device=self.device)
            steps = 0
            for batch in self._sharded(
                self._batches(data, experience.task_id, True, self.batch_size)
            ):
                total += self.train_step(batch)
                steps += 1
            if steps == 0:  # a stream read up by an earlier epoch reported a loss of 0.0
                raise ValueError(
                    f"experience {experience.task_id} yielded no training batch in epoch {epoch}"
                    + (
                        ": its stream (IterableDataset) can be read only once; use epochs=1 or "
                        "a dataset that can be iterated again"
                        if epoch
                        else ""
                    )
                )
            mean = float(total.item()) / steps
            losses.append(mean)
            if not math.isfinite(mean) and all(math.isfinite(v) for v in losses[:-1]):
                warnings.warn(  # once per experience: the weights are no longer usable
                    f"the training loss of experience {experience.task_id} is {mean} at epoch "
                    f"{epoch}: the data holds NaN/inf values or training diverged (a smaller lr "
                    "or penalty strength, or EWC(solver='proximal'), may help)",
                    RuntimeWarning,
                    stacklevel=2,
                )
            for cb in self.callbacks:
                cb.on_epoch_end(self, experience, epoch, mean)
            if bar is not None:
                bar.set_postfix(loss=f"{mean:.4f}")
                bar.update(1)
        if bar is not None:
            bar.close()
        self.strategy.after_experience(self, experience)
        return losses

    def _sharded(
        self, batches: Iterator[tuple[torch.Tensor, ...]]
    ) -> Iterator[tuple[torch.Tensor, ...]]:
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            yield from batches
            return
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        for batch in batches:
            yield tuple(b[rank::world] for b in batch)

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate_experience(self, experience: Experience) -> float:
        """The metric (accuracy or mean loss) on one experience."""
        self._register_masks([experience])
        was = self.model.training
        self.model.eval()
        total, n = 0.0, 0
        for x, y, t in self._batches(
            experience.dataset, experience.task_id, False, self.eval_batch_size
        ):
            out = self.mask_output(self.output(self.model(x)), t)
            if self.metric == "accuracy":
                self.check_accuracy_targets(y, experience.task_id)
                total += float((out.argmax(1) == y).sum().item())
            else:
                total += float(self.loss_fn(out, y).item()) * x.shape[0]
            n += x.shape[0]
        self.model.train(was)
        if n == 0:
            raise ValueError(f"experience {experience.task_id} has no test samples")
        return total / n

    def evaluate(self, stream: Sequence[Experience]) -> list[float]:
        """The metric on every experience of a stream."""
        return [self.evaluate_experience(e) for e in stream]

    # ------------------------------------------------------------------ streams
    def fit_stream(
        self,
        train_stream: Sequence[Experience] | Scenario,
        test_stream: Sequence[Experience] | None = None,
        *,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
    ) -> ResultMatrix:
        """Train on each experience in turn, evaluating every test experience after each one.

        Args:
            train_stream: the experiences (or a :class:`~continual.Scenario`, whose test stream
                is then used).
            test_stream: the experiences to evaluate on (the train stream if None).
            checkpoint_dir: save the whole state there after each experience (atomic).
            resume: continue from the checkpoint in ``checkpoint_dir`` when one exists, else from
                this trainer's own progress on a stream of the same length (a run interrupted
                in this process). Without it every experience is trained, from the model's
                current state, and the results start afresh.

        Returns:
            The :class:`~continual.ResultMatrix` ``R[i, j]``.
        """
        if isinstance(train_stream, Scenario):
            test_stream = train_stream.test_stream if test_stream is None else test_stream
            train_stream = train_stream.train_stream
        train_stream = _experiences(train_stream, "train_stream")
        test_stream = (
            _experiences(test_stream, "test_stream") if test_stream is not None else train_stream
        )
        T = len(train_stream)
        if T == 0:
            raise ValueError("train_stream is empty: no experience to train on")
        if len(test_stream) != T:
            raise ValueError(
                f"test_stream has {len(test_stream)} experiences, train_stream has {T}"
            )
        for part, stream in (("training", train_stream), ("test", test_stream)):
            for e in stream:  # before any training, not at experience k
                if hasattr(e.dataset, "__len__") and len(e) == 0:  # time_windows(test_fraction=0)
                    raise ValueError(f"experience {e.task_id} has no {part} samples")
                if isinstance(e.dataset, TensorDataset):
                    _check_has_targets(e.dataset.tensors, e.task_id)
                    if part == "test":  # soft training targets are fine for cross-entropy
                        self.check_accuracy_targets(e.dataset.tensors[1], e.task_id)
                if isinstance(e.dataset, TensorDataset) and not e.masked:  # masked: by classes
                    self.check_labels(e.dataset.tensors[0], e.dataset.tensors[1], e.task_id)
        if (
            resume
            and checkpoint_dir is not None
            and os.path.isdir(checkpoint_dir)
            and os.listdir(checkpoint_dir)
        ):
            config, tensors = self._read_checkpoint(checkpoint_dir)
            saved_T = None if config["results"] is None else config["results"]["n_experiences"]
            if saved_T is not None and saved_T != T:
                raise ValueError(
                    f"the checkpoint in {os.fspath(checkpoint_dir)!r} is of a stream of "
                    f"{saved_T} experiences, this stream has {T}; resume it "
                    "with its own stream or use another checkpoint_dir"
                )
            self._apply_checkpoint(config, tensors)
        if not resume or self.results is None or self.results.n_experiences != T:
            self.results = ResultMatrix(T, self.metric, self.metric == "accuracy")
            self.experiences_done = 0
            # a new stream's task ids name its own classes: the previous stream's masks were
            # kept (first registration won) and masked the new tasks' logits wrongly
            self._mask_rows, self._mask_table = {}, None
        self._register_masks(train_stream + test_stream)
        for cb in self.callbacks:
            cb.on_fit_start(self)
        if self.eval_initial and self.results.baseline is None:
            import numpy as np

            self.results.baseline = np.asarray(self.evaluate(test_stream))
        bar = None
        if self.verbose:
            from tqdm.auto import tqdm

            bar = tqdm(total=T, initial=self.experiences_done, desc="stream")
        for i in range(self.experiences_done, T):
            exp = train_stream[i]
            for cb in self.callbacks:
                cb.on_experience_start(self, exp)
            self.train_experience(exp)
            row = self.evaluate(test_stream)
            self.results.set_row(i, row)
            self.experiences_done = i + 1
            for cb in self.callbacks:
                cb.on_experience_end(self, exp, row)
            if checkpoint_dir is not None and _is_main_process():
                self.save_checkpoint(checkpoint_dir)
            if bar is not None:
                bar.set_postfix(avg=f"{float(sum(row[: i + 1])) / (i + 1):.3f}")
                bar.update(1)
        if bar is not None:
            bar.close()
        for cb in self.callbacks:
            cb.on_fit_end(self, self.results)
        return self.results

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """The whole training state as ``(config, tensors)``: model, optimizer, strategy
        (memory included), generators and results."""
        tensors: dict[str, torch.Tensor] = {}
        for k, v in self.model.state_dict().items():
            tensors[f"model.{k}"] = v
        opt_skeleton, opt_tensors = flatten_state(self.optimizer.state_dict(), "optim")
        tensors.update(opt_tensors)
        s_config, s_tensors = self.strategy.state_dict()
        tensors.update({f"strategy.{k}": v for k, v in s_tensors.items()})
        cl_config = None
        if hasattr(self.model, "cl_state_dict"):
            cl_config, cl_tensors = self.model.cl_state_dict()
            tensors.update({f"learner.{k}": v for k, v in cl_tensors.items()})
        tensors["rng.trainer"] = self.generator.get_state()
        tensors["rng.torch"] = torch.get_rng_state()
        if self.device.type == "cuda":  # random ops on the GPU (dropout) use its own generator
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        config = {
            "format": CHECKPOINT_FORMAT,
            "strategy": {"class": type(self.strategy).__name__, "state": s_config},
            "learner": cl_config,
            "optimizer": opt_skeleton,
            "optimizer_class": type(self.optimizer).__name__,
            "experiences_done": self.experiences_done,
            "results": None if self.results is None else self.results.state_dict(),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "metric": self.metric,
        }
        return config, tensors

    def save_checkpoint(self, directory: str | os.PathLike[str]) -> None:
        """Write the whole state atomically (``blockops.save_checkpoint``: YAML + tensors + JSON)."""
        config, tensors = self.state()
        blockops.save_checkpoint(
            directory, config, tensors, {"package": "continual", "version": __version__}
        )

    def load_checkpoint(self, directory: str | os.PathLike[str]) -> None:
        """Restore a checkpoint written by :meth:`save_checkpoint` into this trainer.

        The trainer must have been built with the same model architecture, optimizer class and
        parameter groups, strategy class (with the same memory size and policy, or EWC mode) and metric;
        a mismatch raises ValueError before anything is loaded, so the trainer is unchanged.
        Tensors are loaded with ``weights_only=True`` and moved to the trainer's device.
        """
        self._apply_checkpoint(*self._read_checkpoint(directory))

    def _read_checkpoint(
        self, directory: str | os.PathLike[str]
    ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """Read a checkpoint and check that it fits this trainer; nothing is loaded yet."""
        config, tensors, _ = blockops.load_checkpoint(directory, map_location="cpu")
        if config.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"unsupported trainer checkpoint format {config.get('format')!r}")
        cls = config["strategy"]["class"]
        if cls != type(self.strategy).__name__:
            raise ValueError(
                f"checkpoint was written with strategy {cls}, this trainer uses "
                f"{type(self.strategy).__name__}"
            )
        if config.get("metric", self.metric) != self.metric:
            raise ValueError(
                f"checkpoint was written with metric={config['metric']!r}, this trainer uses "
                f"metric={self.metric!r}; its result matrix cannot be continued"
            )
        self.strategy.check_state_dict(config["strategy"]["state"], _part(tensors, "strategy."))
        if config.get("learner") is not None and hasattr(self.model, "load_cl_state_dict"):
            own_params = dict(self.model.named_parameters())
            _check_ewc_tensors(config["learner"], _part(tensors, "learner."), own_params)
        saved = _part(tensors, "model.")
        own = self.model.state_dict()
        wrong = sorted(set(own) ^ set(saved)) + [
            k for k in own if k in saved and saved[k].shape != own[k].shape
        ]
        if wrong:
            raise ValueError(
                f"the checkpoint's model does not fit this trainer's model (missing, unexpected "
                f"or reshaped entries: {wrong[:5]}); build the trainer with the same architecture"
            )
        opt_cls = config.get("optimizer_class", type(self.optimizer).__name__)
        if opt_cls != type(self.optimizer).__name__:
            raise ValueError(
                f"checkpoint was written with optimizer {opt_cls}, this trainer uses "
                f"{type(self.optimizer).__name__}; its state (momentum, moments) cannot be loaded"
            )
        groups = config["optimizer"]["param_groups"]
        saved_sizes = [len(g["params"]) for g in groups]
        own_sizes = [len(g["params"]) for g in self.optimizer.param_groups]
        if saved_sizes != own_sizes:
            raise ValueError(
                f"the checkpoint's optimizer has parameter groups of sizes {saved_sizes}, this "
                f"trainer's has {own_sizes}"
            )
        return config, tensors

    def _apply_checkpoint(self, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Load a checkpoint checked by :meth:`_read_checkpoint` into this trainer."""
        self.model.load_state_dict(_part(tensors, "model."))
        self.model.to(self.device)
        self.optimizer.load_state_dict(
            unflatten_state(config["optimizer"], _part(tensors, "optim."))
        )
        for state in self.optimizer.state.values():
            for k, v in state.items():
                if isinstance(v, torch.Tensor) and k != "step":
                    state[k] = v.to(self.device)
        self.strategy.load_state_dict(
            config["strategy"]["state"], _part(tensors, "strategy."), self
        )
        if config.get("learner") is not None and hasattr(self.model, "load_cl_state_dict"):
            self.model.load_cl_state_dict(config["learner"], _part(tensors, "learner."))
        self.generator.set_state(tensors["rng.trainer"])
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        self.experiences_done = int(config["experiences_done"])
        self.results = (
            None if config["results"] is None else ResultMatrix.from_state_dict(config["results"])
        )


def _part(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``tensors`` under ``prefix``, with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _experiences(stream: Any, name: str) -> list[Experience]:
    """``stream`` as a list of :class:`Experience`; anything else is refused by name (a list of
    tensors failed with "'Tensor' object has no attribute 'masked'")."""
    if isinstance(stream, (torch.Tensor, str, bytes)) or not isinstance(stream, Iterable):
        raise TypeError(
            f"{name} must be a Scenario or a sequence of Experience, got {type(stream).__name__}"
        )
    out = list(stream)
    wrong = [type(e).__name__ for e in out if not isinstance(e, Experience)]
    if wrong:
        raise TypeError(
            f"{name} must hold Experience objects (see class_incremental, permuted, "
            f"time_windows or Experience(dataset, task_id)), got {sorted(set(wrong))}"
        )
    return out


def _check_parts(model: Any, strategy: Any, loss_fn: Any, callbacks: Sequence[Any]) -> None:
    """Refuse by name what used to fail later with an AttributeError, and a strategy already
    used with another model (its memory, penalty terms or old model carried over into the new
    run; the same model continues its run)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if strategy is not None and not isinstance(strategy, Strategy):
        raise TypeError(
            f"strategy must be a Strategy (Naive(), EWC(), Replay(), ...), got {strategy!r}"
        )
    if getattr(strategy, "_model", model) is not model and type(strategy) is not Naive:
        raise ValueError(
            f"strategy {strategy!r} was used with another model: its state (memory, penalty "
            "terms, old model) would carry over into this run; build a new one per model"
        )
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable(output, target), got {loss_fn!r}")
    wrong = [type(cb).__name__ for cb in callbacks if not isinstance(cb, Callback)]
    if wrong:
        raise TypeError(f"callbacks must be Callback instances, got {wrong}")


def _check_has_targets(batch: Any, task_id: int) -> None:
    """Refuse data without targets: a ``TensorDataset(X)`` failed with "tuple index out of
    range", and a dataset yielding bare inputs was read row by row as ``(x, y)``."""
    if isinstance(batch, torch.Tensor) or not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise ValueError(
            f"experience {task_id} yields inputs without targets; the Trainer needs (inputs, "
            "targets, ...) rows: for reconstruction (an autoencoder) give the inputs as the "
            "targets too, TensorDataset(X, X)"
        )


def _first_input(experience: Experience) -> torch.Tensor:
    """The first input of an experience, ``(1, ...)``; a stream (``IterableDataset``, which
    cannot be indexed) is read up to its first item."""
    ts = experience.tensors()
    if ts is not None:
        return ts[0][:1]
    data = experience.dataset
    first = next(iter(data), None) if isinstance(data, IterableDataset) else data[0]
    if first is None:
        raise ValueError(f"experience {experience.task_id} has no samples")
    return torch.as_tensor(first[0]).unsqueeze(0)


def _is_main_process() -> bool:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank() == 0
    return True


def fit_stream(
    model: nn.Module,
    strategy: Strategy | None,
    train_stream: Sequence[Experience] | Scenario,
    test_stream: Sequence[Experience] | None = None,
    **kwargs: Any,
) -> ResultMatrix:
    """Build a :class:`Trainer` with ``kwargs`` and run :meth:`Trainer.fit_stream`.

    ``checkpoint_dir`` and ``resume`` in ``kwargs`` go to ``fit_stream``, the rest to the Trainer.
    """
    fit_kwargs = {k: kwargs.pop(k) for k in ("checkpoint_dir", "resume") if k in kwargs}
    trainer = Trainer(model, strategy, **kwargs)
    return trainer.fit_stream(train_stream, test_stream, **fit_kwargs)
