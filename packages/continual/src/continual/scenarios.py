"""Streams of experiences: class-/task-incremental splits, permutations, time windows."""

from __future__ import annotations

import numbers
import operator
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import blockops
import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from ._checks import check_count, check_number

__all__ = [
    "DeviceDataLoader",
    "Experience",
    "Scenario",
    "SubDataset",
    "class_incremental",
    "permuted",
    "task_incremental",
    "time_windows",
    "to_device",
]


@dataclass
class Experience:
    """One step of a stream: a dataset plus what the learner may know about it.

    Attributes:
        dataset: the samples (``(x, y)`` items; a ``TensorDataset`` gets a fast batching path).
        task_id: position of the experience in the stream.
        classes: the labels present (None for regression or unknown); any sequence of integers
            (a list, ``np.unique(y)``, a tensor), kept as a tuple of ints.
        task_label: the task identity given to the learner in task-incremental scenarios; when
            set with ``classes``, logits outside ``classes`` are masked in training and testing.
    """

    dataset: Dataset
    task_id: int
    classes: tuple[int, ...] | None = None
    task_label: int | None = None

    def __post_init__(self) -> None:
        # it indexes the task-mask table: -1 took the last task's row
        check_count("task_id", self.task_id, minimum=0)
        if self.classes is not None:  # np.unique(y) failed later: "truth value ... ambiguous"
            given = self.classes
            values = given.tolist() if isinstance(given, (np.ndarray, torch.Tensor)) else given
            try:
                if isinstance(values, (str, bytes)) or any(isinstance(c, bool) for c in values):
                    raise TypeError
                self.classes = tuple(operator.index(c) for c in values)
            except TypeError:
                raise ValueError(
                    f"classes must be a sequence of integer class labels, got {given!r}"
                ) from None

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    @property
    def masked(self) -> bool:
        """Whether the logits are restricted to ``classes`` (task-incremental)."""
        return self.task_label is not None and self.classes is not None

    def tensors(self) -> tuple[torch.Tensor, ...] | None:
        """The dataset's tensors when it is a ``TensorDataset``, else None."""
        if isinstance(self.dataset, TensorDataset):
            return tuple(self.dataset.tensors)
        return None


@dataclass
class Scenario:
    """A train stream and the matching test stream (same length, same task ids).

    Attributes:
        train_stream: experiences to learn from, in order.
        test_stream: experiences to evaluate on, one per training experience.
        n_classes: number of output units the model needs (None for regression).
        name: a short description.
    """

    train_stream: list[Experience]
    test_stream: list[Experience]
    n_classes: int | None = None
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.train_stream)


def _host(a: Any) -> Any:
    """``a`` on the CPU when it is a tensor (numpy cannot read a CUDA tensor), else ``a``."""
    return a.cpu() if isinstance(a, torch.Tensor) else a


def _tensors(
    X: Any, y: Any, names: tuple[str, str] = ("X", "y"), *, samples: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``X`` and ``y`` as tensors; ``X`` is ``(n, d)``, or ``(n, ...)`` with ``samples`` (images,
    volumes: the class splits need no feature axis)."""
    Xt = blockops.as_tensor(X, name=names[0], ndim=None if samples else 2)
    if Xt.ndim < 2:
        raise ValueError(
            f"{names[0]} must have a sample axis and at least one feature axis (n, ...), got "
            f"shape {tuple(Xt.shape)}"
        )
    ya = np.asarray(_host(y))
    if ya.ndim != 1 or ya.shape[0] != Xt.shape[0]:
        raise ValueError(
            f"{names[1]} must be 1-D with {Xt.shape[0]} entries, got shape {tuple(ya.shape)}"
        )
    return Xt, _class_labels(ya, names[1])


def _class_labels(ya: np.ndarray, name: str) -> torch.Tensor:
    """``ya`` as long labels, refusing non-integer, non-finite and negative values."""
    if ya.dtype.kind not in "iub" and not (
        ya.dtype.kind == "f" and np.isfinite(ya).all() and (ya == np.round(ya)).all()
    ):
        raise ValueError(
            f"{name} must hold integer class labels, got dtype {ya.dtype} with "
            "non-integer or non-finite values"
        )
    if ya.size and ya.min() < 0:
        raise ValueError(f"{name} must hold non-negative class labels, got {ya.min()}")
    return torch.as_tensor(ya).long()


def _same_width(Xt: torch.Tensor, Xs: torch.Tensor) -> None:
    if Xt.ndim == Xs.ndim == 2 and Xs.shape[1] != Xt.shape[1]:
        raise ValueError(f"X_test must have {Xt.shape[1]} features like X, got {Xs.shape[1]}")
    if Xs.shape[1:] != Xt.shape[1:]:
        raise ValueError(
            f"X_test samples must have the shape of X's, {tuple(Xt.shape[1:])}, got "
            f"{tuple(Xs.shape[1:])}"
        )


def _order_groups(class_order: Any) -> list[list[int]]:
    """``class_order`` as lists of ints; int() truncated 0.5 to 0 and read "01" as two groups."""

    def is_int(c: Any) -> bool:
        if isinstance(c, torch.Tensor):
            return c.ndim == 0 and not c.is_floating_point() and c.dtype != torch.bool
        return isinstance(c, (numbers.Integral, np.integer)) and not isinstance(c, bool)

    seq = (list, tuple, np.ndarray, range, torch.Tensor)
    if not isinstance(class_order, seq) or not all(
        isinstance(g, seq) and all(is_int(c) for c in g) for g in class_order
    ):
        raise ValueError(
            "class_order must be a list of groups of integer classes, e.g. [[0, 1], [2, 3]], "
            f"got {class_order!r}"
        )
    return [[int(c) for c in g] for g in class_order]


def _class_groups(
    labels: np.ndarray, n_experiences: int | None, class_order: Sequence[Sequence[int]] | None
) -> list[list[int]]:
    classes = sorted(int(c) for c in np.unique(labels))
    if class_order is not None:
        groups = _order_groups(class_order)
        flat = [c for g in groups for c in g]
        if not groups:  # [] gave a stream of no experience
            raise ValueError("class_order must hold at least one group of classes, got []")
        if len(set(flat)) != len(flat):
            raise ValueError(f"class_order must use each class at most once, got {class_order}")
        absent = sorted(set(flat) - set(classes))
        if absent:
            raise ValueError(f"class_order names classes {absent} that y does not hold ({classes})")
        dropped = sorted(set(classes) - set(flat))
        if dropped:  # their samples used to vanish from the stream without a word
            warnings.warn(
                f"class_order leaves out classes {dropped}: their samples are in no experience",
                UserWarning,
                stacklevel=4,
            )
        return groups
    k = len(classes)
    integral = isinstance(n_experiences, numbers.Integral) and not isinstance(n_experiences, bool)
    if not integral or not 1 <= n_experiences <= k:  # type: ignore[operator]
        raise ValueError(f"n_experiences must be an integer in [1, {k}], got {n_experiences!r}")
    return [list(map(int, g)) for g in np.array_split(classes, n_experiences)]


def _split(
    X: Any,
    y: Any,
    X_test: Any,
    y_test: Any,
    n_experiences: int | None,
    class_order: Sequence[Sequence[int]] | None,
    task_labels: bool,
) -> Scenario:
    Xt, yt = _tensors(X, y, samples=True)
    Xs, ys = _tensors(X_test, y_test, ("X_test", "y_test"), samples=True)
    _same_width(Xt, Xs)
    groups = _class_groups(yt.numpy(), n_experiences, class_order)
    unseen = sorted(set(ys.unique().tolist()) - set(yt.unique().tolist()))
    if unseen:  # no experience holds them: their test rows used to vanish without a word
        n = int(torch.isin(ys, torch.tensor(unseen)).sum())
        warnings.warn(
            f"y_test holds classes {unseen} that y never trains: their {n} test rows are left "
            "out of every experience",
            UserWarning,
            stacklevel=3,
        )
    train, test = [], []
    for i, g in enumerate(groups):
        gt = torch.tensor(g, dtype=torch.long)
        m = torch.isin(yt, gt)
        ms = torch.isin(ys, gt)
        if not bool(m.any()) or not bool(ms.any()):
            part = "training" if not bool(m.any()) else "test"
            raise ValueError(f"experience {i} (classes {g}) has no {part} samples")
        label = i if task_labels else None
        train.append(Experience(TensorDataset(Xt[m], yt[m]), i, tuple(g), label))
        test.append(Experience(TensorDataset(Xs[ms], ys[ms]), i, tuple(g), label))
    n_classes = int(max(yt.max(), ys.max()).item()) + 1
    kind = "task" if task_labels else "class"
    return Scenario(train, test, n_classes, f"{kind}-incremental, {len(groups)} experiences")


def class_incremental(
    X: Any,
    y: Any,
    X_test: Any,
    y_test: Any,
    n_experiences: int | None = None,
    *,
    class_order: Sequence[Sequence[int]] | None = None,
) -> Scenario:
    """Class-incremental split: each experience brings new classes, one shared output head.

    Args:
        X: training inputs ``(n, d)``, or ``(n, ...)`` samples of any shape (images
            ``(n, C, H, W)`` for a CNN).
        y: integer training labels ``(n,)``.
        X_test: test inputs ``(m, ...)``, samples shaped like those of ``X``.
        y_test: integer test labels ``(m,)``.
        n_experiences: split the sorted classes into this many contiguous groups.
        class_order: explicit groups of classes, one per experience (overrides
            ``n_experiences``). Classes of ``y`` left out of every group are dropped from the
            stream (a ``UserWarning`` names them); ``n_classes`` still counts them.
    """
    return _split(X, y, X_test, y_test, n_experiences, class_order, task_labels=False)


def task_incremental(
    X: Any,
    y: Any,
    X_test: Any,
    y_test: Any,
    n_experiences: int | None = None,
    *,
    class_order: Sequence[Sequence[int]] | None = None,
) -> Scenario:
    """Task-incremental split: like :func:`class_incremental`, but the task label is known.

    The trainer masks the logits of the classes outside the experience's task, in training
    and at test time (a multi-head setting on a single output layer).

    Args:
        X: training inputs ``(n, d)``, or ``(n, ...)`` samples of any shape (images
            ``(n, C, H, W)`` for a CNN).
        y: integer training labels ``(n,)``.
        X_test: test inputs ``(m, ...)``, samples shaped like those of ``X``.
        y_test: integer test labels ``(m,)``.
        n_experiences: split the sorted classes into this many contiguous groups.
        class_order: explicit groups of classes, one per experience; classes left out are
            dropped with a ``UserWarning``, as in :func:`class_incremental`.
    """
    return _split(X, y, X_test, y_test, n_experiences, class_order, task_labels=True)


def permuted(
    X: Any,
    y: Any,
    X_test: Any,
    y_test: Any,
    n_experiences: int,
    *,
    random_state: Any = None,
    keep_first: bool = True,
) -> Scenario:
    """Domain-incremental stream: every experience applies its own fixed feature permutation.

    Args:
        X: training inputs ``(n, d)``.
        y: integer training labels ``(n,)``.
        X_test: test inputs ``(m, d)``.
        y_test: integer test labels ``(m,)``.
        n_experiences: number of permutations.
        random_state: seed of the permutations.
        keep_first: the first experience uses the identity permutation.
    """
    check_count("n_experiences", n_experiences)
    Xt, yt = _tensors(X, y)
    Xs, ys = _tensors(X_test, y_test, ("X_test", "y_test"))
    _same_width(Xt, Xs)
    gen = blockops.make_generator(random_state)
    d = Xt.shape[1]
    perms = []
    train, test = [], []
    for i in range(n_experiences):
        perm = torch.arange(d) if (i == 0 and keep_first) else torch.randperm(d, generator=gen)
        perms.append(perm)
        classes = tuple(int(c) for c in torch.unique(yt).tolist())
        train.append(Experience(TensorDataset(Xt[:, perm], yt), i, classes))
        test.append(Experience(TensorDataset(Xs[:, perm], ys), i, classes))
    n_classes = int(max(yt.max(), ys.max()).item()) + 1
    return Scenario(
        train, test, n_classes, f"permuted, {n_experiences} experiences", {"permutations": perms}
    )


def time_windows(
    X: Any,
    y: Any,
    times: Any,
    n_windows: int | None = None,
    *,
    edges: Sequence[float] | None = None,
    test_fraction: float = 0.2,
    random_state: Any = None,
    classification: bool = True,
) -> Scenario:
    """Split time-stamped samples into consecutive windows, one experience each.

    Each window's samples are split at random into train and test parts.

    Args:
        X: inputs ``(n, d)``.
        y: labels ``(n,)`` (classification) or targets ``(n,)`` / ``(n, k)`` (regression).
        times: time stamp of each sample ``(n,)``.
        n_windows: number of equal-width windows between the first and last time.
        edges: explicit window edges (``len(edges) - 1`` windows, right edge inclusive at the end;
            instead of ``n_windows``). Samples outside ``[edges[0], edges[-1]]`` are left out,
            with a ``UserWarning``.
        test_fraction: fraction of each window held out for testing.
        random_state: seed of the train/test split.
        classification: labels are integer classes (else float regression targets).
    """
    Xt = blockops.as_tensor(X, name="X", ndim=2)
    t = torch.as_tensor(np.asarray(_host(times)), dtype=torch.float64)
    ya = np.asarray(_host(y))
    if t.dim() != 1:
        raise ValueError(f"times must be 1-D, got shape {tuple(t.shape)}")
    if t.shape[0] != Xt.shape[0] or ya.shape[:1] != (Xt.shape[0],):
        raise ValueError("X, y and times must have the same number of rows")
    if classification:
        if ya.ndim != 1:
            raise ValueError(f"y must be 1-D class labels, got shape {tuple(ya.shape)}")
        yt = _class_labels(ya, "y")
    else:
        yt = torch.as_tensor(ya).float()
        if not bool(torch.isfinite(yt).all()):
            raise ValueError("y contains NaN or infinite targets")
    if not bool(torch.isfinite(t).all()):
        raise ValueError("times must be finite (no NaN or infinite time stamps)")
    if edges is not None and n_windows is not None:  # n_windows was ignored
        raise ValueError(f"give n_windows or edges, not both (n_windows={n_windows!r})")
    if edges is None:
        if n_windows is None:
            raise ValueError("give n_windows >= 1 or edges, got n_windows=None")
        check_count("n_windows", n_windows)
        if float(t.min()) == float(t.max()):  # was "edges must be ... increasing", unasked
            raise ValueError(
                f"n_windows={n_windows} equal-width windows need times spanning an interval, "
                f"but every time stamp is {float(t.min())}; pass edges instead (two edges "
                "around it for one window)"
            )
        # float64, exact end points: float32 edges dropped the first/last samples and merged
        # the windows of large time stamps (Unix seconds are 128 s apart in float32)
        edges = np.linspace(float(t.min()), float(t.max()), n_windows + 1).tolist()
    edges = [float(e) for e in edges]
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges must be at least two strictly increasing values, got {edges}")
    outside = int(((t < edges[0]) | (t > edges[-1])).sum())
    if outside:  # these samples used to vanish without a word
        warnings.warn(
            f"{outside} of the {t.shape[0]} samples have times outside the edges "
            f"[{edges[0]}, {edges[-1]}]: they are left out of every window",
            UserWarning,
            stacklevel=2,
        )
    check_number("test_fraction", test_fraction, upper=1.0)  # "0.2" failed in a comparison
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    gen = blockops.make_generator(random_state)
    train, test = [], []
    for i in range(len(edges) - 1):
        lo, hi = edges[i], edges[i + 1]
        last = i == len(edges) - 2
        m = (t >= lo) & ((t <= hi) if last else (t < hi))
        idx = torch.nonzero(m).flatten()
        idx = idx[torch.randperm(idx.numel(), generator=gen)]
        n_test = int(round(test_fraction * idx.numel()))
        te, tr = idx[:n_test].sort().values, idx[n_test:].sort().values
        if tr.numel() == 0 or (te.numel() == 0 and test_fraction > 0):
            raise ValueError(
                f"window {i} [{lo}, {hi}{']' if last else ')'} has {tr.numel()} training and "
                f"{te.numel()} test samples; every window needs both (use fewer windows or "
                "other edges)"
            )
        classes = tuple(int(c) for c in torch.unique(yt[tr]).tolist()) if classification else None
        train.append(Experience(TensorDataset(Xt[tr], yt[tr]), i, classes))
        test.append(Experience(TensorDataset(Xt[te], yt[te]), i, classes))
    n_classes = int(yt.max().item()) + 1 if classification else None
    return Scenario(train, test, n_classes, f"time windows, {len(train)} experiences")


class SubDataset(Dataset):
    """The samples of a dataset whose label is in ``sub_labels``, with an optional label map.

    Labels are read from ``dataset.targets`` when it exists (after the parent's own
    ``target_transform`` if any), otherwise by indexing every item once at construction.

    Args:
        original_dataset: any map-style dataset of ``(x, y)`` items.
        sub_labels: labels to keep.
        target_transform: applied to the label on read (for example to map classes onto a fixed
            set of output units).
    """

    def __init__(
        self,
        original_dataset: Dataset,
        sub_labels: Sequence[int],
        target_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        self.dataset = original_dataset
        given = (
            sub_labels.tolist()
            if isinstance(sub_labels, (np.ndarray, torch.Tensor))
            else sub_labels
        )
        try:  # 1.5 was truncated to class 1, "12" read as classes 1 and 2, 1 a bare TypeError
            if isinstance(given, (str, bytes)) or any(isinstance(v, bool) for v in given):
                raise TypeError
            self.sub_labels = [operator.index(v) for v in given]
        except TypeError:
            raise ValueError(
                f"sub_labels must be a sequence of integer labels, got {sub_labels!r}"
            ) from None
        self.target_transform = target_transform
        wanted = set(self.sub_labels)
        targets = getattr(original_dataset, "targets", None)
        if targets is not None:
            parent_tt = getattr(original_dataset, "target_transform", None)
            labels = [int(parent_tt(v) if parent_tt else v) for v in list(targets)]
        else:
            labels = [int(original_dataset[i][1]) for i in range(len(original_dataset))]  # type: ignore[arg-type]
        self.indices = [i for i, v in enumerate(labels) if v in wanted]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        x, y = self.dataset[self.indices[index]]
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y


def to_device(data: Any, device: str | torch.device, non_blocking: bool = False) -> Any:
    """Move a tensor, or every tensor of a (nested) list/tuple/namedtuple/dict, to ``device``.

    ``device`` is ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``, as for
    :class:`DeviceDataLoader`.
    """
    if isinstance(device, str):  # "auto" failed inside torch ("Expected one of cpu, cuda...")
        device = blockops.resolve_device(device, name="device")
    if isinstance(data, torch.Tensor):
        out = data.to(device, non_blocking=non_blocking)
        if non_blocking and data.is_cuda and out.device.type == "cpu":
            # a non-blocking device-to-host copy may still be in flight: wait before the host
            # reads it (host-to-device copies are ordered on the stream and need no wait)
            torch.cuda.current_stream(data.device).synchronize()
        return out
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # a namedtuple takes fields
        return type(data)(*(to_device(d, device, non_blocking) for d in data))
    if isinstance(data, (list, tuple)):
        return type(data)(to_device(d, device, non_blocking) for d in data)
    if isinstance(data, dict):
        return {k: to_device(v, device, non_blocking) for k, v in data.items()}
    return data


class DeviceDataLoader:
    """Wrap a loader so that each batch arrives on ``device``.

    Args:
        dl: any iterable of batches (a ``DataLoader``).
        device: target device (``"auto"``, ``"cpu"``, ``"cuda:N"`` or a ``torch.device``).
        non_blocking: asynchronous copies for pinned host memory.
    """

    def __init__(self, dl: Any, device: str | torch.device = "auto", non_blocking: bool = False):
        self.dl = dl
        self.device = blockops.resolve_device(device, name="device")
        self.non_blocking = non_blocking

    def __iter__(self) -> Iterator[Any]:
        for batch in self.dl:
            yield to_device(batch, self.device, self.non_blocking)

    def __len__(self) -> int:
        return len(self.dl)
