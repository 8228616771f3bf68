"""`Feature`: the time series of one tensor (a weight, a gradient or an activation)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .storage import (
    Float16OverflowWarning,
    MemoryStorage,
    Storage,
    check_dtype,
    float16_overflows,
    storage_dtype,
)

__all__ = ["Feature", "effective_rank"]

_METRICS = ("norm", "mean", "std", "cosine_to_init", "distance_to_init", "effective_rank")
_KINDS = ("weight", "grad", "activation")


def _rows(v: torch.Tensor) -> torch.Tensor:
    """A block of snapshots ``(k, *shape)`` as ``(k, numel)`` (scalar snapshots included)."""
    return v.reshape(v.shape[0], -1)


def _as_int(value: int, what: str) -> int:
    """``value`` as an int; a float with a fractional part, a bool or a non-number is an error."""
    try:
        out = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite float
        out = None
    if out is None or isinstance(value, bool) or out != value:
        raise TypeError(f"{what}={value!r} must be an integer")
    return out


def widen_overflowed(feature: Feature, step: int, *, stacklevel: int = 3) -> None:
    """Switch ``feature``'s float16 storage to float32 and warn, naming the series, its layer
    and the step (a snapshot that float16 cannot hold is about to be stored)."""
    feature.storage.promote(torch.float32)
    layer = "" if feature.layer_name is None else f" (layer {feature.layer_name!r})"
    warnings.warn(
        f"float16 overflow: the {feature.kind} series {feature.name!r}{layer} at step {step} "
        "holds finite values beyond float16's range "
        "(|x| > 65504, which float16 stores as inf); it is stored in float32 from this snapshot "
        "on, earlier snapshots converted exactly (twice the memory per snapshot for this series, "
        "beyond its share of memory_budget)",
        Float16OverflowWarning,
        stacklevel=stacklevel,
    )


def effective_rank(matrices: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Effective rank (Roy & Vetterli, 2007) of each matrix: ``exp`` of the entropy of the
    normalised singular values.

    Args:
        matrices: ``(..., r, c)``; tensors with more than two trailing dimensions (conv kernels)
            should be reshaped to ``(..., out, -1)`` first.
        eps: normalised singular values (``s_i / sum(s)``) below ``eps`` count as zero.

    Returns:
        ``(...)`` tensor in the input's floating dtype (float32 for other dtypes), between 1
        (rank one) and ``min(r, c)`` (flat spectrum); 0 for a zero matrix, NaN for a matrix
        with a NaN or infinite entry (a diverged run). Computed in float64.

    Raises:
        TypeError: ``matrices`` is not a tensor.
        ValueError: ``matrices`` has fewer than two dimensions.
    """
    if not isinstance(matrices, torch.Tensor):
        raise TypeError(f"matrices must be a torch.Tensor, got {type(matrices).__name__}")
    if matrices.ndim < 2:  # was "IndexError: Dimension out of range"
        raise ValueError(f"matrices must be (..., r, c), got shape {tuple(matrices.shape)}")
    m = matrices.to(torch.float64)
    finite = torch.isfinite(m).flatten(-2).all(dim=-1)
    s = torch.linalg.svdvals(torch.where(finite[..., None, None], m, torch.zeros_like(m)))
    total = s.sum(dim=-1, keepdim=True)
    p = s / total.clamp_min(torch.finfo(torch.float64).tiny)
    p = torch.where(p > eps, p, torch.zeros_like(p))
    entropy = -(p * torch.log(p.clamp_min(torch.finfo(torch.float64).tiny))).sum(dim=-1)
    out = torch.exp(entropy)
    out = torch.where(total.squeeze(-1) > 0, out, torch.zeros_like(out))
    dtype = matrices.dtype if matrices.is_floating_point() else torch.float32
    return torch.where(finite, out, torch.full_like(out, float("nan"))).to(dtype)


class Feature:
    """The time series of one tracked tensor, on a global step axis.

    Every snapshot carries the global optimizer ``step`` it was taken after, the ``epoch`` and
    the ``batch_idx`` within that epoch. Snapshots live in a :class:`~flt_tracker.storage.Storage`
    (preallocated CPU blocks by default); reading returns CPU tensors.

    Args:
        name: series name, e.g. ``"0.weight"`` or ``"0.weight.grad"``.
        layer_name: module (or parameter) name it belongs to.
        kind: ``"weight"``, ``"grad"`` or ``"activation"``; anything else is a ``ValueError``.
        storage: backend; by default a :class:`~flt_tracker.storage.MemoryStorage` created on the
            first ``append`` with the snapshot's shape.
        dtype: dtype of the default storage (``None``: the tensor's float dtype).

    Example:
        >>> f = Feature("fc.weight", layer_name="fc")
        >>> f.append(torch.ones(2, 3), epoch=0, batch_idx=0)  # stored (a downsampling storage may skip)
        True
        >>> f.get_latest().shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        name: str,
        layer_name: str | None = None,
        *,
        kind: str = "weight",
        storage: Storage | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if kind not in _KINDS:  # a typo hid the series from the default heatmap
            raise ValueError(f"kind={kind!r} is not a known kind; use one of {list(_KINDS)}")
        self.name = str(name)
        self.layer_name = layer_name
        self.kind = kind
        self.storage = storage
        self._dtype = check_dtype(dtype)

    # -- recording -------------------------------------------------------------------------
    def append(
        self,
        value: torch.Tensor,
        epoch: int = 0,
        batch_idx: int = 0,
        step: int | None = None,
    ) -> bool:
        """Add one snapshot (copied to CPU storage; the caller's tensor is not kept).

        Args:
            value: the tensor; its shape must match earlier snapshots.
            epoch: epoch the snapshot belongs to.
            batch_idx: batch index within the epoch.
            step: global step; default one past the last step (0 for the first).

        A float16 series offered a value float16 cannot hold (a finite ``|x| > 65504``, stored
        as ``inf``) switches to float32 first, with a
        :class:`~flt_tracker.storage.Float16OverflowWarning` naming the series and the step.

        Raises:
            TypeError: ``value`` is not a floating tensor, or ``step``, ``epoch`` or
                ``batch_idx`` is not an integer (``2.5`` is refused, not truncated).
            ValueError: ``step`` is not greater than the last stored step.

        Returns:
            Whether the snapshot was stored (a downsampling storage may skip it).
        """
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"value must be a torch.Tensor, got {type(value).__name__}")
        if not value.is_floating_point():  # was cast silently after the first snapshot
            raise TypeError(f"only floating tensors can be tracked, got dtype {value.dtype}")
        if self.storage is None:
            self.storage = MemoryStorage(
                tuple(value.shape), storage_dtype(value.dtype, self._dtype)
            )
        last = self.storage.last_step()
        if step is None:
            step = 0 if last is None else last + 1
        step, epoch, batch_idx = (
            _as_int(step, "step"),
            _as_int(epoch, "epoch"),
            _as_int(batch_idx, "batch_idx"),
        )
        if last is not None and step <= last:  # get_at_step / plots read the steps as sorted
            raise ValueError(
                f"step must be greater than the last step {last} of {self.name!r} "
                f"(a series is ordered by step), got {step}"
            )
        if self.storage.dtype == torch.float16 and float16_overflows([value])[0]:
            widen_overflowed(self, step)
        return self.storage.append(value, step, epoch, batch_idx)

    # -- metadata --------------------------------------------------------------------------
    def __len__(self) -> int:
        return 0 if self.storage is None else len(self.storage)

    def __repr__(self) -> str:
        shape = None if self.storage is None else self.storage.shape
        return (
            f"Feature(name={self.name!r}, kind={self.kind!r}, shape={shape}, snapshots={len(self)})"
        )

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Shape of one snapshot (``None`` before the first)."""
        return None if self.storage is None else self.storage.shape

    def _index(self) -> np.ndarray:
        if self.storage is None:
            return np.zeros((0, 3), dtype=np.int64)
        return self.storage.index()

    @property
    def steps(self) -> np.ndarray:
        """Global step of each snapshot, ``(n,)`` int64."""
        return self._index()[:, 0].copy()

    @property
    def epochs(self) -> np.ndarray:
        """Epoch of each snapshot, ``(n,)`` int64."""
        return self._index()[:, 1].copy()

    @property
    def batch_indices(self) -> np.ndarray:
        """Batch index within its epoch of each snapshot, ``(n,)`` int64."""
        return self._index()[:, 2].copy()

    # -- access ----------------------------------------------------------------------------
    def _require(self) -> Storage:
        if self.storage is None or len(self.storage) == 0:
            raise ValueError(f"feature {self.name!r} has no snapshots yet")
        return self.storage

    def get_latest(self) -> torch.Tensor:
        """The most recent snapshot, ``shape``."""
        return self._require().get(-1)

    def get_at_step(self, step: int) -> torch.Tensor:
        """The snapshot taken at global ``step`` (found by bisection: O(log n) per lookup).

        Raises:
            KeyError: no snapshot at that step (the message lists the nearest recorded steps).
            TypeError: ``step`` is not an integer.
        """
        step = _as_int(step, "step")
        i = None if self.storage is None else self.storage.position(step)
        if i is None:  # only a miss reads the whole index
            steps = self._index()[:, 0]
            near = steps[np.argsort(np.abs(steps - step), kind="stable")[:3]].tolist()
            raise KeyError(f"{self.name!r} has no snapshot at step {step}; nearest steps: {near}")
        return self._require().get(i)

    def get_at_epoch(self, epoch: int, last: bool = False) -> torch.Tensor:
        """All snapshots of ``epoch`` stacked ``(k, *shape)``, or its last one when ``last``.

        Raises:
            KeyError: no snapshot in that epoch (the message lists the recorded epochs).
            TypeError: ``epoch`` is not an integer.
        """
        epoch = _as_int(epoch, "epoch")
        hits = np.flatnonzero(self._index()[:, 1] == epoch)
        if hits.size == 0:
            raise KeyError(
                f"{self.name!r} has no snapshot in epoch {epoch}; "
                f"recorded epochs: {np.unique(self._index()[:, 1]).tolist()}"
            )
        storage = self._require()
        if last:
            return storage.get(int(hits[-1]))
        start, stop = int(hits[0]), int(hits[-1]) + 1
        block = storage.read(start, stop)
        if stop - start != hits.size:  # epochs interleaved (should not happen): gather exactly
            block = block[torch.as_tensor(hits - start)]
        return block

    def as_tensor(self) -> torch.Tensor:
        """Every snapshot stacked, ``(n, *shape)``, in the storage dtype."""
        storage = self._require()
        return storage.read(0, len(storage))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """``np.asarray(feature)``: every snapshot, ``(n, *shape)``, as :meth:`as_tensor` (a copy;
        without this numpy made a 0-d object array of the ``Feature``)."""
        values = self.as_tensor().numpy()
        return values if dtype is None else values.astype(dtype, copy=False)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor], block: int = 256) -> torch.Tensor:
        """Apply ``fn`` to blocks of snapshots ``(k, *shape) -> (k, ...)`` and concatenate.

        Memory stays bounded by ``block`` snapshots, so this works on disk-backed series longer
        than RAM. Values are given to ``fn`` in float32 (float64 stays float64).

        Args:
            fn: batched function of a ``(k, *shape)`` block returning ``(k, ...)``.
            block: snapshots per block.

        Raises:
            ValueError: ``fn`` returned something else than one row per snapshot (e.g.
                ``v.norm()`` instead of ``v.norm(dim=1)``), or ``block`` is below 1.
            TypeError: ``block`` is not an integer.
        """
        block = _as_int(block, "block")
        if block < 1:  # 0 was "range() arg 3 must not be zero", negatives an empty result
            raise ValueError(f"block={block} must be >= 1 (snapshots per block)")
        storage = self._require()
        outs = []
        for _, values in storage.iter_blocks(block):
            if values.dtype == torch.float16:
                values = values.float()
            out = torch.as_tensor(fn(values))
            if out.dim() == 0 or out.shape[0] != values.shape[0]:
                raise ValueError(
                    f"fn must return one row per snapshot, shape ({values.shape[0]}, ...) for a "
                    f"block of shape {tuple(values.shape)}; got shape {tuple(out.shape)}"
                )
            outs.append(out)
        return torch.cat(outs)

    # -- derived series --------------------------------------------------------------------
    def norm(self) -> torch.Tensor:
        """Frobenius norm of each snapshot, ``(n,)``."""
        return self.map(lambda v: _rows(v).norm(dim=1))

    def mean(self) -> torch.Tensor:
        """Mean entry of each snapshot, ``(n,)``."""
        return self.map(lambda v: _rows(v).mean(dim=1))

    def std(self) -> torch.Tensor:
        """Standard deviation of the entries of each snapshot, ``(n,)``: Bessel-corrected
        (divides by ``numel - 1``, as ``torch.std``; numpy's default ``ddof=0`` does not);
        0 for one entry."""
        return self.map(
            lambda v: (
                _rows(v).std(dim=1) if v[0].numel() > 1 else torch.zeros(v.shape[0], dtype=v.dtype)
            )
        )

    def _init(self) -> torch.Tensor:
        init = self._require().get(0)
        return init.float() if init.dtype == torch.float16 else init

    def cosine_to_init(self) -> torch.Tensor:
        """Cosine similarity of each flattened snapshot with the first one, ``(n,)``."""
        init = self._init().flatten()
        return self.map(
            lambda v: torch.nn.functional.cosine_similarity(
                _rows(v), init.to(v.dtype)[None], dim=1, eps=1e-12
            )
        )

    def distance_to_init(self, relative: bool = False) -> torch.Tensor:
        """Euclidean distance of each snapshot to the first, ``(n,)``.

        Args:
            relative: divide by the norm of the first snapshot.
        """
        init = self._init().flatten()
        scale = init.norm().clamp_min(1e-12) if relative else torch.tensor(1.0)
        return self.map(lambda v: (_rows(v) - init.to(v.dtype)).norm(dim=1) / scale)

    def effective_rank(self) -> torch.Tensor:
        """Effective rank of each snapshot seen as a ``(shape[0], -1)`` matrix, ``(n,)``.

        Raises:
            ValueError: the snapshots are 1-D (a bias) or scalars.
        """
        shape = self._require().shape
        if len(shape) < 2:
            raise ValueError(
                f"effective_rank needs matrix snapshots, {self.name!r} has shape {shape}"
            )
        return self.map(lambda v: effective_rank(v.reshape(v.shape[0], shape[0], -1)))

    def series(self, metric: str | Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """A derived series by name (one of ``norm``, ``mean``, ``std``, ``cosine_to_init``,
        ``distance_to_init``, ``effective_rank``) or a batched callable (see :meth:`map`).
        """
        if callable(metric):
            return self.map(metric)
        if metric not in _METRICS:
            raise ValueError(
                f"metric={metric!r} is not known; use one of {list(_METRICS)} or a callable"
            )
        return getattr(self, metric)()
