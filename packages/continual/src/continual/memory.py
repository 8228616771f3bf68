"""Episodic memory with pluggable storage policies and its own random generator."""

from __future__ import annotations

import bisect
import numbers
import operator
from collections import Counter
from collections.abc import Iterable
from typing import Any

import blockops
import torch
from torch.utils.data import TensorDataset

from ._checks import check_count
from .learner import _from_numpy

__all__ = ["POLICIES", "EpisodicMemory", "stratified_order"]

POLICIES = ("quota", "reservoir", "class_balanced", "fifo")
"""The policies `EpisodicMemory(policy=...)` accepts."""


def stratified_order(
    labels: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A random order of ``labels``' indices whose every prefix is as class-balanced as possible.

    The rows of each class are shuffled, then the classes are visited round-robin (in a random
    order each round), so the first ``q`` indices hold ``q // n_classes`` or one more of every
    class that has that many rows. Taking a prefix of this order is a stratified random sample.

    Args:
        labels: ``(n,)`` integer labels.
        generator: the random generator (the global one if None).

    Returns:
        ``(n,)`` long tensor, a permutation of ``range(n)``.
    """
    labels = labels.reshape(-1).cpu()
    n = labels.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.long)
    shuffled = torch.randperm(n, generator=generator)
    lab = labels[shuffled]
    # rank of each row inside its class (in shuffled order), then a random tie-break per class;
    # from a stable sort by class, O(n log n) (a one-hot cumsum took O(n * classes) time and
    # memory: 16 s and gigabytes for 80000 rows of 1000 classes)
    _, inverse, counts = torch.unique(lab, return_inverse=True, return_counts=True)
    by_class = torch.argsort(inverse, stable=True)
    starts = counts.cumsum(0) - counts
    rank = torch.empty(n, dtype=torch.long)
    rank[by_class] = torch.arange(n) - starts[inverse[by_class]]
    class_key = torch.rand(n, generator=generator)  # different class order in every round
    key = rank.double() + class_key.double() * 0.5
    return shuffled[torch.argsort(key, stable=True)]


_STATE_KEYS = (
    "total_mem_size",
    "total_tasks",
    "gradient_ref_data_size",
    "policy",
    "tasks",
    "labels",
    "task_order",
    "n_seen",
    "class_seen",
    "n_fields",
)


def _state_int(config: dict[str, Any], key: str, low: int) -> int:
    """``config[key]`` checked to be an integer ``>= low`` (a memory state's entry)."""
    value = config[key]
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"the memory state's {key} must be an integer >= {low}, got {value!r}")
    return int(value)


def _state_ints(config: dict[str, Any], key: str) -> list[int]:
    """``config[key]`` checked to be a list of integers (a memory state's entry)."""
    values = config[key]
    if not isinstance(values, list) or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values
    ):
        raise ValueError(f"the memory state's {key} must be a list of integers")
    return [int(v) for v in values]


def _task_id(name: str, value: Any) -> int:
    """``value`` as a task id: an integer (a numpy or 0-d tensor integer too), never a bool or
    a float (``1.7`` or ``True`` used to be read as task 1)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer task id, got {value!r}") from None


def _task_ids(name: str, value: Any) -> set[int] | None:
    """``value`` as a set of task ids: None (no filter), one integer task id or an iterable
    (list, tuple, set, 1-D tensor) of them."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer task ids, got a {value.dtype} tensor")
        value = value.tolist()  # an int for a 0-d tensor, a (nested) list otherwise
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return {_task_id(name, value)}
    try:
        return {_task_id(name, v) for v in value}
    except TypeError:
        raise TypeError(
            f"{name} must be an integer task id or a list of them, got {value!r}"
        ) from None


def _integer_labels(fields: list[torch.Tensor] | None, m: int) -> torch.Tensor | None:
    """The second stored field as ``(m,)`` labels when it holds one integer per row, else None."""
    if fields is None or len(fields) < 2:
        return None
    y = fields[1][:m]
    if y.is_floating_point() or y.is_complex() or y.dim() != 1:
        return None
    return y


def _check_finite(tensors: tuple[torch.Tensor, ...]) -> None:
    """Refuse NaN / inf in the floating fields of a batch offered to :meth:`EpisodicMemory.add`
    (one host synchronisation for fields on the GPU): a stored NaN row spoils every replay."""
    floats = [t for t in tensors if t.is_floating_point() or t.is_complex()]
    if not floats:
        return
    ok = [torch.isfinite(t).all().to(floats[0].device) for t in floats]
    if bool(torch.stack(ok).all()):
        return
    for i, t in enumerate(tensors):
        if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
            rows = (~torch.isfinite(t)).reshape(t.shape[0], -1).any(1).nonzero().flatten()
            raise ValueError(
                f"field {i} of the tensors given to add holds NaN / inf values in "
                f"{rows.numel()} of its {t.shape[0]} rows (first: row {int(rows[0])}); the "
                "memory stores finite values only"
            )


def _check_fits(i: int, t: torch.Tensor, stored: torch.dtype) -> None:
    """Refuse integer values of field ``i`` that the stored integer dtype (the first ``add``'s)
    cannot hold: the copy would wrap them silently (int64 labels above 2**31 into int32)."""
    if t.dtype == stored or t.is_floating_point() or stored.is_floating_point or not t.numel():
        return
    if stored == torch.bool or t.dtype == torch.bool:
        return
    info = torch.iinfo(stored)
    lo, hi = int(t.min()), int(t.max())
    if lo < info.min or hi > info.max:
        raise ValueError(
            f"field {i} is stored as {stored} (the dtype of the first add), which cannot hold "
            f"its values {lo}..{hi}; add {t.dtype} data from the first call"
        )


class EpisodicMemory:
    """Fixed-size memory of past samples for replay, A-GEM and GEM.

    Each stored row is a tuple of tensors (``x``, usually ``y``, and any extra fields such as
    the logits DER++ keeps) plus the id of the task it came from. Storage is preallocated
    tensors on ``device``; every random choice uses the memory's own ``torch.Generator``.

    Policies:

    * ``"quota"`` (the original's): the capacity is split evenly over tasks and each task keeps
      the first samples that arrive until its quota is full. With ``total_tasks`` given the
      quotas are fixed; with ``total_tasks=None`` they shrink as new tasks arrive, evicting
      random samples of the tasks over their new quota (a class-stratified random subset is
      kept when the second field holds integer labels, so a task's classes stay balanced).
    * ``"reservoir"``: reservoir sampling over everything seen, a uniform sample of the stream.
    * ``"class_balanced"``: class-balancing reservoir sampling (CBRS, Chrysakis & Moens,
      "Online Continual Learning from Imbalanced Data", ICML 2020, Algorithm 1). Needs one
      integer label per row as the second field. A class is *largest* when no class has more
      stored rows (several classes can be largest together). Once the memory is filled, a class
      becomes *full* when it is a largest class and stays full from then on, also after it has
      stopped being the largest. Until the memory is filled every sample is stored. Afterwards
      a sample of a class that is not full replaces a random stored row of a largest class (of
      one of them, chosen at random, when several are tied); a sample of a full class ``c``
      replaces a random stored row of ``c`` with probability ``m_c / n_c`` and is discarded
      otherwise (``m_c``: rows of ``c`` stored; ``n_c``: samples of ``c`` offered so far, those
      of the first fill and this one included). A full class thus keeps a uniform sample of its
      own stream and never grows again (with more classes than rows, a full class that lost its
      last row stays empty).
    * ``"fifo"``: a ring buffer, the oldest sample is overwritten.

    Args:
        total_mem_size: capacity in samples (> 0).
        total_tasks: number of tasks for the fixed quotas of the ``"quota"`` policy (None:
            quotas adapt to the tasks seen so far). Every one of them gets a quota: the original
            split the memory over ``total_tasks - 1`` tasks, as it never stored the last one,
            so pass ``total_tasks - 1`` for its quotas.
        gradient_ref_data_size: reference batch size of :meth:`get_data_for_reference_gradient`
            (0: the whole memory block of one random earlier task).
        policy: one of ``"quota"``, ``"reservoir"``, ``"class_balanced"``, ``"fifo"``.
        random_state: seed, numpy Generator or torch Generator for the memory's generator.
        device: where the samples are stored.
    """

    def __init__(
        self,
        total_mem_size: int,
        total_tasks: int | None = None,
        gradient_ref_data_size: int = 0,
        *,
        policy: str = "quota",
        random_state: Any = None,
        device: str | torch.device = "cpu",
    ) -> None:
        check_count("total_mem_size", total_mem_size)
        if policy not in POLICIES:
            raise ValueError(f"policy={policy!r} is not understood; expected one of {POLICIES}")
        check_count("total_tasks", total_tasks, none_ok=True)
        check_count("gradient_ref_data_size", gradient_ref_data_size, minimum=0)
        self.total_mem_size = int(total_mem_size)
        self.total_tasks = None if total_tasks is None else int(total_tasks)
        self.gradient_ref_data_size = int(gradient_ref_data_size)
        self.policy = policy
        self.device = (
            blockops.resolve_device(device, name="device") if isinstance(device, str) else device
        )
        self.generator = blockops.make_generator(random_state, "cpu")
        self._fields: list[torch.Tensor] | None = None
        self._tasks: list[int] = []  # task id of each stored row
        self._labels: list[int] = []  # label of each row (class_balanced only)
        self._task_order: list[int] = []  # task ids in order of first appearance
        self._n_seen = 0
        self._class_seen: dict[int, int] = {}  # n_c (class_balanced only)
        self._full_classes: set[int] = set()  # classes that have been largest (class_balanced)
        # class_balanced index of ``_labels``, kept up to date on every write: the sorted slots
        # of each stored class, the classes having each row count, and the largest count
        self._class_slots: dict[int, list[int]] = {}
        self._classes_by_count: dict[int, set[int]] = {}
        self._most = 0
        self._pass: torch.Tensor | None = None  # shuffled pass of :meth:`cycle`
        self._pass_pos = 0
        self._task_rows: dict[int, torch.Tensor] | None = None  # see _rows_by_task

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def capacity(self) -> int:
        """Maximum number of stored samples."""
        return self.total_mem_size

    @property
    def n_fields(self) -> int:
        """Number of tensors per stored row (0 before the first add)."""
        return 0 if self._fields is None else len(self._fields)

    def tasks(self) -> list[int]:
        """Task ids present in memory, in order of first appearance."""
        present = self._rows_by_task()
        return [t for t in self._task_order if t in present]

    def _rows_by_task(self) -> dict[int, torch.Tensor]:
        """The stored slots of each task, ascending; cached until the stored rows change (GEM
        reads every task's rows at each step)."""
        if self._task_rows is None:
            slots: dict[int, list[int]] = {}
            for slot, task in enumerate(self._tasks):
                slots.setdefault(task, []).append(slot)
            self._task_rows = {t: torch.tensor(s, dtype=torch.long) for t, s in slots.items()}
        return self._task_rows

    def status(self) -> dict[int, int]:
        """Number of stored rows per task id (time step), in order of first appearance; the
        original ``ExperienceReplay.status()`` histogram."""
        counts = Counter(self._tasks)
        return {t: counts[t] for t in self._task_order if t in counts}

    def _randint(self, high: int) -> int:
        return int(torch.randint(0, high, (1,), generator=self.generator).item())

    def _quotas(self) -> dict[int, int]:
        if self.total_tasks is not None:
            n = self.total_tasks
            ids = list(self._task_order)
            ids += [None] * (n - len(ids))  # type: ignore[list-item]
        else:
            n = max(1, len(self._task_order))
            ids = list(self._task_order)
        base, extra = divmod(self.total_mem_size, n)
        return {t: base + (1 if i < extra else 0) for i, t in enumerate(ids) if t is not None}

    # ------------------------------------------------------------------ adding
    def add(self, *tensors: torch.Tensor, task_id: int = 0) -> int:
        """Offer a batch of samples to the memory; the policy decides which rows are kept.

        Args:
            *tensors: the fields of the batch, each ``(n, ...)`` (``x``, ``y``, extras); the same
                number and shapes on every call. numpy arrays are read as tensors.
            task_id: the task these samples belong to.

        Returns:
            The number of rows written.
        """
        if not tensors:
            raise ValueError("add needs at least one tensor")
        task_id = _task_id("task_id", task_id)  # 1.7 and True used to be stored as task 1
        # numpy labels (y from scikit-learn) were refused: "field 1 must be a tensor"
        tensors = tuple(_from_numpy(t) for t in tensors)
        for i, t in enumerate(tensors):
            if not isinstance(t, torch.Tensor) or t.dim() == 0:
                raise TypeError(
                    f"field {i} must be a tensor of shape (n, ...), got "
                    f"{type(t).__name__}{tuple(t.shape) if isinstance(t, torch.Tensor) else ''}"
                )
        n = tensors[0].shape[0]
        if any(t.shape[0] != n for t in tensors):
            raise ValueError(
                f"all fields must have the same first dimension, got {[t.shape[0] for t in tensors]}"
            )
        _check_finite(tensors)
        labels: list[int] | None = None
        if self.policy == "class_balanced":
            y = tensors[1] if len(tensors) > 1 else None
            if y is None or y.is_floating_point() or y.is_complex() or y.numel() != n:
                raise ValueError(
                    "policy='class_balanced' needs integer class labels, one per row, as the "
                    f"second field; got {'none' if y is None else f'{y.dtype} {tuple(y.shape)}'}"
                )
            labels = [int(v) for v in y.reshape(-1).tolist()]
        if self._fields is None:
            self._fields = [
                torch.zeros((self.total_mem_size, *t.shape[1:]), dtype=t.dtype, device=self.device)
                for t in tensors
            ]
        elif len(tensors) != len(self._fields):
            raise ValueError(
                f"memory stores {len(self._fields)} fields per row, got {len(tensors)}"
            )
        else:
            for i, (store, t) in enumerate(zip(self._fields, tensors)):
                if t.shape[1:] != store.shape[1:]:
                    raise ValueError(
                        f"field {i} must have rows of shape {tuple(store.shape[1:])} as stored, "
                        f"got {tuple(t.shape[1:])}"
                    )
                if t.is_floating_point() and not store.is_floating_point():
                    raise TypeError(
                        f"field {i} is stored as {store.dtype}, got {t.dtype} (values would be "
                        "truncated)"
                    )
                _check_fits(i, t, store.dtype)
        if n == 0:
            # nothing offered: the task is not registered (under "quota" it used to take a
            # share of the memory, evicting stored rows for a task that stores none)
            return 0
        if task_id not in self._task_order:
            if (
                self.policy == "quota"
                and self.total_tasks is not None
                and len(self._task_order) >= self.total_tasks
            ):
                raise ValueError(
                    f"task {task_id} would be task number {len(self._task_order) + 1} but "
                    f"total_tasks={self.total_tasks}"
                )
            self._task_order.append(task_id)
            if self.policy == "quota" and self.total_tasks is None:
                self._shrink_to_quotas()
        writes: dict[int, int] = {}  # slot -> row of the batch
        # the quotas do not change within a call: the first ``room`` rows fill the free slots
        room = self._quota_room(task_id) if self.policy == "quota" else 0
        for row in range(n):
            if self.policy == "quota":
                slot = len(self._tasks) if row < room else -1
            else:
                slot = self._choose_slot(None if labels is None else labels[row])
            self._n_seen += 1
            if slot < 0:
                continue
            writes[slot] = row
            if slot == len(self._tasks):
                self._tasks.append(task_id)
            else:
                self._tasks[slot] = task_id
            if labels is not None:
                self._store_label(slot, labels[row])
        if writes:
            slots = torch.tensor(list(writes.keys()), device=self.device)
            rows = torch.tensor(list(writes.values()))
            for store, t in zip(self._fields, tensors):
                # each field indexed on its own device: the fields may live on different ones
                # (CUDA inputs, CPU task ids), and a CPU tensor cannot take a CUDA index
                store[slots] = t.detach()[rows.to(t.device)].to(self.device, store.dtype)
        if writes:
            self._pass = None  # the stored rows changed: the next cycle() starts a new pass
            self._task_rows = None
        return len(writes)

    def _quota_room(self, task_id: int) -> int:
        """How many more rows of ``task_id`` the quota policy keeps now."""
        quota = self._quotas().get(task_id, 0)
        free = self.total_mem_size - len(self._tasks)
        return max(0, min(quota - self._tasks.count(task_id), free))

    def _choose_slot(self, label: int | None) -> int:
        """The slot a streamed sample goes to (-1: not kept), for the sampling policies."""
        size = len(self._tasks)
        cap = self.total_mem_size
        if self.policy == "fifo":
            return self._n_seen % cap if size == cap else size
        if self.policy == "reservoir":
            if size < cap:
                return size
            j = self._randint(self._n_seen + 1)
            return j if j < cap else -1
        # class_balanced (CBRS); ``_store_label`` keeps every largest class of the filled memory
        # in ``_full_classes``, so a class that is not full is never a largest one
        assert label is not None
        self._class_seen[label] = self._class_seen.get(label, 0) + 1
        if size < cap:
            return size
        if label not in self._full_classes:
            largest = self._largest_classes()
            victim = self._class_slots[largest[self._randint(len(largest))]]
            return victim[self._randint(len(victim))]
        # a full class: reservoir sampling within the class, kept with probability m_c / n_c
        own = self._class_slots.get(label, [])
        if self._randint(self._class_seen[label]) >= len(own):
            return -1
        return own[self._randint(len(own))]

    def _store_label(self, slot: int, label: int) -> None:
        """Write ``label`` to ``slot`` (an existing one or the next free one) and update the
        class index and the full classes in time independent of the memory size."""
        if slot == len(self._labels):
            self._labels.append(label)
        else:
            old = self._labels[slot]
            if old == label:
                return  # same counts, same largest classes: nothing to update
            self._labels[slot] = label
            self._unindex(old, slot)
        slots = self._class_slots.setdefault(label, [])
        bisect.insort(slots, slot)
        self._recount(label, len(slots) - 1, len(slots))
        if len(self._labels) == self.total_mem_size:
            # "full": is or has been a largest class since the memory was filled
            self._full_classes.update(self._classes_by_count[self._most])

    def _unindex(self, label: int, slot: int) -> None:
        """Remove ``slot`` from the class index of ``label``."""
        slots = self._class_slots[label]
        del slots[bisect.bisect_left(slots, slot)]
        if not slots:
            del self._class_slots[label]
        self._recount(label, len(slots) + 1, len(slots))

    def _recount(self, label: int, old: int, new: int) -> None:
        """Move ``label`` from the classes with ``old`` stored rows to those with ``new``
        (``new = old +- 1``) and update the largest count."""
        if old:
            same = self._classes_by_count[old]
            same.discard(label)
            if not same:
                del self._classes_by_count[old]
        if new:
            self._classes_by_count.setdefault(new, set()).add(label)
        if new > self._most:
            self._most = new
        elif old == self._most and old not in self._classes_by_count:
            self._most = new  # the only largest class lost a row

    def _rebuild_class_index(self) -> None:
        """Recompute the class index from ``_labels`` (after loading a state)."""
        self._class_slots = {}
        for slot, label in enumerate(self._labels):
            self._class_slots.setdefault(label, []).append(slot)
        self._classes_by_count = {}
        for label, slots in self._class_slots.items():
            self._classes_by_count.setdefault(len(slots), set()).add(label)
        self._most = max(self._classes_by_count, default=0)

    def _largest_classes(self) -> list[int]:
        """The classes with the most stored rows (all of them when tied), in order of their
        first stored slot (class_balanced)."""
        if not self._most:
            return []
        return sorted(self._classes_by_count[self._most], key=lambda c: self._class_slots[c][0])

    def _shrink_to_quotas(self) -> None:
        quotas = self._quotas()
        labels = _integer_labels(self._fields, len(self._tasks))
        keep: list[int] = []
        for t in self._task_order:
            idx = [i for i, tt in enumerate(self._tasks) if tt == t]
            q = quotas.get(t, 0)
            if len(idx) > q:
                if labels is None:
                    order = torch.randperm(len(idx), generator=self.generator)
                else:
                    order = stratified_order(labels[torch.tensor(idx)], self.generator)
                perm = order[:q].sort().values
                idx = [idx[i] for i in perm.tolist()]
            keep += idx
        if len(keep) == len(self._tasks):
            return
        keep.sort()
        self._compact(keep)

    def _compact(self, keep: list[int]) -> None:
        assert self._fields is not None
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        m = len(keep)
        for store in self._fields:
            store[:m] = store[index].clone()
        self._tasks = [self._tasks[i] for i in keep]
        if self._labels:
            self._labels = [self._labels[i] for i in keep]
        self._pass = None
        self._task_rows = None

    def add_data_for_task(
        self, task_id: int, data: torch.Tensor, labels: torch.Tensor | None = None
    ) -> int:
        """The original's name for :meth:`add` (``data`` and optional ``labels`` of one task)."""
        fields = (data,) if labels is None else (data, labels)
        return self.add(*fields, task_id=task_id)

    # ------------------------------------------------------------------ reading
    def _select(self, index: torch.Tensor, device: Any) -> tuple[torch.Tensor, ...]:
        assert self._fields is not None
        index = index.to(self.device)
        out = tuple(store[index] for store in self._fields)
        if isinstance(device, str):  # "auto" failed inside torch, as it does not in __init__
            device = blockops.resolve_device(device, name="device")
        if device is not None:
            out = tuple(t.to(device) for t in out)
        return out

    def _indices(self, tasks: Any = None, exclude: Any = None) -> torch.Tensor:
        wanted = _task_ids("tasks", tasks)
        excluded = _task_ids("exclude_tasks", exclude)
        if wanted is None and excluded is None:
            return torch.arange(len(self._tasks))
        rows = self._rows_by_task()
        allowed = set(rows) if wanted is None else wanted
        if excluded is not None:
            allowed -= excluded
        parts = [index for task, index in rows.items() if task in allowed]
        return torch.cat(parts).sort().values if parts else torch.zeros(0, dtype=torch.long)

    def sample(
        self,
        n: int,
        *,
        tasks: Any = None,
        exclude_tasks: Any = None,
        device: str | torch.device | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """A uniformly random subset of ``min(n, available)`` stored rows, without replacement.

        Args:
            n: requested number of rows.
            tasks: only rows of this task id or of these task ids (a list, tuple, set or 1-D
                tensor of integers; all tasks if None).
            exclude_tasks: never rows of this task id / these task ids (same forms).
            device: move the result there (stay on the storage device if None).

        Returns:
            One tensor per field.

        Raises:
            ValueError: ``n`` is not an integer >= 1, or nothing stored matches.
            TypeError: a task id is not an integer (a bool, a float, a string).
        """
        check_count("n", n)
        idx = self._indices(tasks, exclude_tasks)
        if idx.numel() == 0:
            raise ValueError(
                f"the episodic memory holds no sample matching tasks={tasks!r}, "
                f"exclude_tasks={exclude_tasks!r} (stored tasks: {self.tasks()})"
            )
        if n < idx.numel():
            idx = idx[torch.randperm(idx.numel(), generator=self.generator)[: int(n)]]
        return self._select(idx, device)

    def cycle(
        self, n: int, *, device: str | torch.device | None = None
    ) -> tuple[torch.Tensor, ...]:
        """The next ``n`` rows of a shuffled pass over the whole memory.

        Successive calls walk through one random permutation of the stored rows and draw a new
        one when it is used up (a batch may span two passes), so every stored row is returned
        equally often, as when iterating over the memory like a dataset. Any change to the
        stored rows starts a new pass. Compared with :meth:`sample` (independent random subsets)
        this replays a small memory more evenly.

        Args:
            n: number of rows (> 0).
            device: move the result there (stay on the storage device if None).

        Returns:
            One tensor per field.

        Raises:
            ValueError: the memory is empty or ``n`` is not an integer >= 1.
        """
        m = len(self._tasks)
        if m == 0:
            raise ValueError("the episodic memory is empty")
        check_count("n", n)
        parts = []
        left = int(n)
        while left > 0:
            if self._pass is None or self._pass_pos >= self._pass.numel():
                self._pass = torch.randperm(m, generator=self.generator)
                self._pass_pos = 0
            take = self._pass[self._pass_pos : self._pass_pos + left]
            self._pass_pos += take.numel()
            left -= take.numel()
            parts.append(take)
        return self._select(torch.cat(parts), device)

    def task_data(
        self, task_id: int, device: str | torch.device | None = None
    ) -> tuple[torch.Tensor, ...]:
        """All rows stored for one task (empty tensors when the task has none)."""
        task_id = _task_id("task_id", task_id)
        if self._fields is None:
            raise ValueError("the episodic memory is empty")
        index = self._rows_by_task().get(task_id, torch.zeros(0, dtype=torch.long))
        return self._select(index, device)

    def get_data_for_reference_gradient(
        self, task_id: int, device: str | torch.device | None = None
    ) -> tuple[torch.Tensor, ...]:
        """Reference batch for A-GEM from the tasks stored before ``task_id``.

        With ``gradient_ref_data_size == 0`` this is the whole block of one random earlier task;
        otherwise a random subset of ``min(gradient_ref_data_size, available)`` rows of all
        earlier tasks (never an error when fewer are stored).

        Raises:
            ValueError: no sample of an earlier task is stored.
        """
        task_id = _task_id("task_id", task_id)
        order = self._task_order
        earlier = order[: order.index(task_id)] if task_id in order else list(order)
        earlier = [t for t in earlier if t in set(self._tasks)]
        if not earlier:
            raise ValueError(f"no sample of a task before task {task_id} is stored")
        if self.gradient_ref_data_size == 0:
            chosen = earlier[self._randint(len(earlier))]
            return self.task_data(chosen, device)
        return self.sample(self.gradient_ref_data_size, tasks=earlier, device=device)

    def dataset(self) -> TensorDataset:
        """The stored rows as a ``TensorDataset`` (fields, then the task id)."""
        if self._fields is None:
            raise ValueError("the episodic memory is empty")
        m = len(self._tasks)
        return TensorDataset(*(store[:m] for store in self._fields), torch.tensor(self._tasks))

    # ------------------------------------------------------------------ state
    def state_dict(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """``(config, tensors)``: plain values (safe YAML) and tensors, generator state included."""
        config = {
            "total_mem_size": self.total_mem_size,
            "total_tasks": self.total_tasks,
            "gradient_ref_data_size": self.gradient_ref_data_size,
            "policy": self.policy,
            "tasks": list(self._tasks),
            "labels": list(self._labels),
            "task_order": list(self._task_order),
            "n_seen": self._n_seen,
            "class_seen": [[k, v] for k, v in self._class_seen.items()],
            "full_classes": sorted(self._full_classes),
            "n_fields": self.n_fields,
        }
        config["pass_pos"] = self._pass_pos
        tensors = {"generator": self.generator.get_state()}
        if self._pass is not None:
            tensors["pass"] = self._pass
        for i, store in enumerate(self._fields or []):
            tensors[f"field.{i}"] = store
        return config, tensors

    @staticmethod
    def check_state_dict(config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Raise ValueError unless ``(config, tensors)`` is a consistent :meth:`state_dict`
        (changes nothing; a corrupted or hostile checkpoint is refused before anything is
        loaded)."""
        missing = [k for k in _STATE_KEYS if k not in config] + [
            k for k in ("generator",) if k not in tensors
        ]
        if missing:
            raise ValueError(f"the memory state is missing {missing}")
        if config["policy"] not in POLICIES:
            raise ValueError(f"the memory state has policy={config['policy']!r}, not in {POLICIES}")
        cap = _state_int(config, "total_mem_size", 1)
        if config["total_tasks"] is not None:
            _state_int(config, "total_tasks", 1)
        _state_int(config, "gradient_ref_data_size", 0)
        tasks = _state_ints(config, "tasks")
        m = len(tasks)
        if m > cap:
            raise ValueError(f"the memory state stores {m} rows, more than total_mem_size={cap}")
        labels = _state_ints(config, "labels")
        if len(labels) not in ((m,) if config["policy"] == "class_balanced" else (0, m)):
            raise ValueError(f"the memory state has {len(labels)} labels for {m} stored rows")
        if not set(tasks) <= set(_state_ints(config, "task_order")):
            raise ValueError("the memory state stores rows of tasks missing from task_order")
        pairs = config["class_seen"]
        if not isinstance(pairs, list) or any(
            not isinstance(p, (list, tuple)) or len(p) != 2 for p in pairs
        ):
            raise ValueError("the memory state's class_seen must be a list of [label, count] pairs")
        _state_ints({"class_seen": [v for p in pairs for v in p]}, "class_seen")
        _state_ints({"full_classes": config.get("full_classes", [])}, "full_classes")
        if _state_int(config, "n_seen", 0) < m:
            raise ValueError(f"the memory state has n_seen={config['n_seen']!r} < {m} rows")
        n_fields = _state_int(config, "n_fields", 0)
        if m and not n_fields:
            raise ValueError(f"the memory state stores {m} rows but no field")
        for i in range(n_fields):
            field = tensors.get(f"field.{i}")
            if not isinstance(field, torch.Tensor) or field.dim() == 0 or len(field) != cap:
                raise ValueError(f"the memory state's field.{i} must be a tensor of {cap} rows")
        order = tensors.get("pass")
        if order is not None:  # a pass of cycle(): a permutation of the rows and a position in it
            if order.dim() != 1 or not torch.equal(order.sort().values.cpu(), torch.arange(m)):
                raise ValueError(f"the memory state's pass must be a permutation of range({m})")
            pos = config.get("pass_pos", 0)
            if not isinstance(pos, numbers.Integral) or not 0 <= pos <= m:
                raise ValueError(f"the memory state has pass_pos={pos!r}, not in [0, {m}]")
        try:
            torch.Generator().set_state(tensors["generator"].cpu())
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"the memory state's generator state is invalid ({exc})") from exc

    def load_state_dict(self, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned (checked first, see :meth:`check_state_dict`)."""
        self.check_state_dict(config, tensors)
        self.total_mem_size = int(config["total_mem_size"])
        self.total_tasks = config["total_tasks"]
        self.gradient_ref_data_size = int(config["gradient_ref_data_size"])
        self.policy = config["policy"]
        self._tasks = [int(t) for t in config["tasks"]]
        self._task_rows = None
        self._labels = [int(t) for t in config["labels"]]
        self._task_order = [int(t) for t in config["task_order"]]
        self._n_seen = int(config["n_seen"])
        self._class_seen = {int(k): int(v) for k, v in config["class_seen"]}
        self._full_classes = {int(c) for c in config.get("full_classes", ())}
        self._rebuild_class_index()
        if len(self._tasks) == self.total_mem_size:
            # a largest class of the filled memory is full by definition: this restores them in
            # a state saved before "full_classes" existed (and changes nothing otherwise)
            self._full_classes.update(self._largest_classes())
        n_fields = int(config["n_fields"])
        self._fields = (
            [tensors[f"field.{i}"].to(self.device) for i in range(n_fields)] if n_fields else None
        )
        self.generator.set_state(tensors["generator"].cpu())
        self._pass = tensors["pass"].cpu().long() if "pass" in tensors else None
        self._pass_pos = int(config.get("pass_pos", 0))
