"""Where snapshots live: preallocated CPU blocks in memory, or chunked files on disk.

Both backends store a series of equally shaped snapshots plus an integer index
``(step, epoch, batch_idx)`` per snapshot. Values are copied to the CPU when appended; from a
CUDA tensor the copy goes into pinned memory with ``non_blocking=True`` so the training step is
not stalled, and readers wait for the pending copies.

The on-disk layout (shared with :func:`flt_tracker.save_run`) is one folder per series holding
``chunk_NNNNNN.npy`` (values, ``(k, *shape)``) and ``chunk_NNNNNN.idx.npy`` (``(k, 3)`` int64).
Each file is written under a temporary name and renamed into place, values first and index last,
so a chunk whose index file exists is complete: after a crash every flushed chunk is readable.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import mmap
import os
import queue
import re
import sys
import threading
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "CHUNK_BYTES",
    "DiskStorage",
    "Float16OverflowWarning",
    "MemoryBudgetError",
    "MemoryStorage",
    "Storage",
    "float16_overflows",
    "parse_bytes",
]

_NP_DTYPES = {
    torch.float16: np.float16,
    torch.float32: np.float32,
    torch.float64: np.float64,
}
_TORCH_DTYPES = {np.dtype(v): k for k, v in _NP_DTYPES.items()}
_CHUNK = re.compile(r"^chunk_(\d{6})\.idx\.npy$")
CHUNK_BYTES = 16 * 2**20
"""Target size of one preallocated block / chunk file when ``chunk_size`` is ``None``."""


def auto_chunk_size(snapshot_nbytes: int, chunk_size: int | None) -> int:
    """``chunk_size`` if given, else as many snapshots as fit in :data:`CHUNK_BYTES` (1 to 256)."""
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or int(chunk_size) < 1:
            raise ValueError(f"chunk_size={chunk_size!r} must be a positive integer or None")
        return int(chunk_size)
    return max(1, min(256, CHUNK_BYTES // max(1, snapshot_nbytes)))


class MemoryBudgetError(MemoryError):
    """Storing one more snapshot would exceed the tracker's ``memory_budget``."""


class Float16OverflowWarning(RuntimeWarning):
    """A snapshot for a float16 series held finite values float16 cannot represent (they would
    have been stored as ``inf``); the series was switched to float32 to keep them."""


FLOAT16_OVERFLOW = 65520.0
"""Smallest magnitude that rounds to ``inf`` in float16 (its largest finite value is 65504)."""


def float16_overflows(values: list[torch.Tensor]) -> list[bool]:
    """Whether each tensor holds a finite value that float16 would turn into ``inf``.

    The peak magnitudes of all tensors on a device are computed there and brought to the host
    together (one synchronisation per device, not one per tensor); only a tensor whose peak is
    itself ``inf`` or NaN (a source that already diverged) gets a second, element-wise look.
    Float16 tensors and empty ones never overflow.
    """
    flags = [False] * len(values)
    groups: dict[torch.device, list[int]] = {}
    for i, v in enumerate(values):
        if v.dtype != torch.float16 and v.is_floating_point() and v.numel():
            groups.setdefault(v.device, []).append(i)
    for device, members in groups.items():
        tensors = [values[i].detach() for i in members]
        if device.type == "cpu":  # amin / amax are vectorised on the CPU (the inf-norm is not)
            peaks = []  # reading a CPU scalar is no synchronisation
            for t in tensors:
                lo, hi = torch.aminmax(t)
                lo, hi = float(lo), float(hi)
                peaks.append(max(-lo, hi) if lo == lo and hi == hi else math.nan)
        else:  # one fused kernel over the whole list, one transfer to the host
            peaks = torch.stack(torch._foreach_norm(tensors, float("inf"))).tolist()
        for i, t, peak in zip(members, tensors, peaks):
            if math.isfinite(peak):
                flags[i] = peak >= FLOAT16_OVERFLOW
            else:  # an inf or NaN in the source: are there finite values out of range too?
                flags[i] = bool(((t.abs() >= FLOAT16_OVERFLOW) & torch.isfinite(t)).any())
    return flags


def parse_bytes(value: int | float | str | None, *, name: str = "memory_budget") -> int | None:
    """Turn ``1_000_000``, ``"512MB"``, ``"512M"``, ``"1.5GiB"`` or ``None`` into bytes.

    Args:
        value: bytes as a number, or a string with a unit, case-insensitive: B; K, M, G, T
            (decimal, with or without B: ``"512M"`` is ``"512MB"``, 512 * 10**6); KiB, MiB,
            GiB, TiB (binary, with or without B: ``"512Mi"`` is 512 * 2**20).
        name: argument name used in error messages.

    Raises:
        ValueError: not understood, or not positive.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number of bytes or a string like '512MB', got bool")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite number of bytes")
    if isinstance(value, int | float):
        n = int(value)
    elif isinstance(value, str):
        unit = r"(B|[KMGT]i?B?)"  # "512M" was refused; the "i" marks a binary unit
        match = re.fullmatch(rf"\s*([0-9]*\.?[0-9]+)\s*{unit}?\s*", value, flags=re.I)
        if match is None:
            raise ValueError(f"{name}={value!r} is not understood; use bytes or e.g. '512MB'")
        prefix = (match.group(2) or "b").lower().rstrip("b") or "b"
        units = {"b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
        units.update({"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40})
        n = int(float(match.group(1)) * units[prefix])
    else:
        raise TypeError(f"{name} must be a number of bytes or a string, got {type(value).__name__}")
    if n <= 0:
        raise ValueError(f"{name}={value!r} must be positive")
    return n


def check_dtype(dtype: torch.dtype | None, *, name: str = "dtype") -> torch.dtype | None:
    """Accept ``None`` (keep the source's float dtype) or one of float16/float32/float64."""
    if dtype is None or dtype in _NP_DTYPES:
        return dtype
    raise ValueError(
        f"{name}={dtype!r} is not supported; use torch.float16, torch.float32, torch.float64 "
        "or None (keep the tensor's own float dtype)"
    )


def storage_dtype(source: torch.dtype, requested: torch.dtype | None) -> torch.dtype:
    """The dtype snapshots are stored in: ``requested`` or the source's (floats only)."""
    if requested is not None:
        return requested
    if source in _NP_DTYPES:
        return source
    if source == torch.bfloat16:
        return torch.float32
    raise TypeError(f"only floating tensors can be tracked, got dtype {source}")


_HUGE = 2 * 2**20
_PAGE = 4096
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux: fault a mapping's pages in at mmap time


def anonymous_pages(nbytes: int, *, populate: bool = False) -> np.ndarray:
    """``nbytes`` rounded up to whole pages of zeroed, page-aligned memory, as ``uint8``.

    ``populate`` faults every page in now (``MAP_POPULATE`` where there is one: a single system
    call), so the first writes into the block cost what rewrites do.
    """
    size = max(_PAGE, -(-nbytes // _PAGE) * _PAGE)
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | (_POPULATE if populate else 0)
    pages = np.frombuffer(mmap.mmap(-1, size, flags=flags), np.uint8)
    if populate and not _POPULATE:
        pages[::_PAGE] = 0  # one write per page faults it in
    return pages


def alloc_block(shape: tuple[int, ...], dtype: torch.dtype, *, pin: bool = False) -> torch.Tensor:
    """An uninitialised CPU tensor for snapshots.

    Pinned when ``pin`` (for non-blocking copies from a GPU). With the environment variable
    ``FLT_TRACKER_HUGE_PAGES=1`` on Linux, blocks of 2 MiB or more are anonymous mappings advised
    to use transparent huge pages: one page fault per 2 MiB instead of per 4 KiB when fresh memory
    is first written (about 1.5x faster stores measured), but the kernel may stall on memory
    compaction to find huge pages (10x slower stores were measured on a loaded machine), so it is
    off by default. Otherwise ``torch.empty``.
    """
    if pin:
        return torch.empty(shape, dtype=dtype, pin_memory=True)
    nbytes = int(np.prod(shape, dtype=np.int64)) * torch.empty((), dtype=dtype).element_size()
    huge = os.environ.get("FLT_TRACKER_HUGE_PAGES", "0") == "1"
    if (
        huge
        and sys.platform.startswith("linux")
        and nbytes >= _HUGE
        and hasattr(mmap, "MADV_HUGEPAGE")
    ):
        try:
            buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            buf.madvise(mmap.MADV_HUGEPAGE)
            return torch.frombuffer(buf, dtype=dtype).view(shape)
        except (OSError, ValueError, AttributeError):
            pass
    return torch.empty(shape, dtype=dtype)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix, so writers that read the format from it
    work) for the block to write; renamed onto ``path`` when the block succeeds and removed
    otherwise, so ``path`` is never left truncated."""
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}-{threading.get_ident()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _atomic_save_npy(path: Path, array: np.ndarray, fsync: bool) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())


_DIRECT = getattr(os, "O_DIRECT", 0)  # Linux: file writes that bypass the page cache
_MAX_PENDING = 2  # DiskStorage: full blocks queued for the writer before append waits


def _npy_header(shape: tuple[int, ...], dtype: np.dtype, size: int = _PAGE) -> bytes:
    """A ``.npy`` (version 1.0) header padded to ``size`` bytes, so the data starts page-aligned."""
    text = (
        f"{{'descr': {np.lib.format.dtype_to_descr(dtype)!r}, 'fortran_order': False, "
        f"'shape': {tuple(shape)!r}, }}"
    )
    body = size - 10  # magic (6) + version (2) + header length (2)
    return b"\x93NUMPY\x01\x00" + body.to_bytes(2, "little") + text.ljust(body - 1).encode() + b"\n"


def _save_npy_direct(
    path: Path, header: np.ndarray, raw: np.ndarray, nbytes: int, fsync: bool
) -> None:
    """Write ``header`` (one page) and the first ``nbytes`` of ``raw`` (page-aligned) to ``path``
    with ``O_DIRECT``, atomically (temporary name, then rename). Raises ``OSError`` where the
    file system refuses direct I/O."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _DIRECT, 0o644)
    try:
        padded = -(-nbytes // _PAGE) * _PAGE
        for view in (memoryview(header), memoryview(raw)[:padded]):
            while len(view):
                written = os.write(fd, view)
                if written <= 0 or written % _PAGE:
                    raise OSError(f"direct write of {len(view)} B wrote {written} B")
                view = view[written:]
        os.ftruncate(fd, _PAGE + nbytes)
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)


class Storage:
    """Common interface of the snapshot backends (see :class:`MemoryStorage`, :class:`DiskStorage`).

    Args:
        shape: shape of one snapshot.
        dtype: dtype snapshots are stored in (float16, float32 or float64).
    """

    def __init__(self, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.dtype = dtype
        self.snapshot_nbytes = (
            int(np.prod(self.shape, dtype=np.int64)) * torch.empty((), dtype=dtype).element_size()
        )
        self._events: list[torch.cuda.Event] = []
        self._futures: list[Any] = []
        self.executor: Any = None
        """Optional ``concurrent.futures`` executor doing CPU copies off the calling thread."""

    # -- interface -------------------------------------------------------------------------
    def __len__(self) -> int:
        raise NotImplementedError

    def append(self, value: torch.Tensor, step: int, epoch: int, batch_idx: int) -> bool:
        """Store one snapshot; returns whether it was kept (a downsampling policy may drop it)."""
        raise NotImplementedError

    def index(self) -> np.ndarray:
        """``(n, 3)`` int64 array of ``(step, epoch, batch_idx)``, one row per snapshot."""
        raise NotImplementedError

    def last_step(self) -> int | None:
        """The step of the last stored snapshot (None when empty)."""
        idx = self.index()
        return int(idx[-1, 0]) if len(idx) else None

    def position(self, step: int) -> int | None:
        """Position of the last snapshot taken at ``step`` (None when there is none).

        The built-in backends bisect their index without copying it (steps ascend, as a
        :class:`~flt_tracker.feature.Feature` keeps them); this fallback scans :meth:`index`.
        """
        hits = np.flatnonzero(self.index()[:, 0] == step)
        return int(hits[-1]) if hits.size else None

    def read(self, start: int, stop: int) -> torch.Tensor:
        """Snapshots ``start:stop`` stacked, ``(stop - start, *shape)``, on the CPU."""
        raise NotImplementedError

    def close(self) -> None:
        """Flush and release resources (no-op for memory)."""
        self.synchronize()

    def skip(self) -> None:
        """Count a recording step that has no value for this series (e.g. a gradient at the
        initial snapshot, or ``None``), so a downsampling series keeps the same steps as its
        siblings. A no-op for backends that keep everything."""

    def promote(self, dtype: torch.dtype) -> None:
        """Store this series in the wider ``dtype`` from now on (float16 -> float32 when a
        value overflows float16); what is stored reads back in ``dtype``, converted exactly."""
        raise NotImplementedError(f"{type(self).__name__} cannot change its dtype")

    def _set_dtype(self, dtype: torch.dtype) -> None:
        self.dtype = dtype
        self.snapshot_nbytes = (
            int(np.prod(self.shape, dtype=np.int64)) * torch.empty((), dtype=dtype).element_size()
        )

    @property
    def memory_nbytes(self) -> int:
        """Bytes of snapshot buffers held in RAM."""
        raise NotImplementedError

    # -- shared helpers --------------------------------------------------------------------
    def _check(self, value: torch.Tensor) -> torch.Tensor:
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"value must be a torch.Tensor, got {type(value).__name__}")
        if value.shape != self.shape:
            raise ValueError(
                f"snapshot shape {tuple(value.shape)} does not match the series shape {self.shape}"
            )
        return value.detach() if value.requires_grad else value

    def _copy_into(self, dest: torch.Tensor, value: torch.Tensor) -> None:
        if value.is_cuda:
            dest.copy_(value, non_blocking=dest.is_pinned())
            if dest.is_pinned():
                event = torch.cuda.Event()
                # the copy ran on the current stream of the value's device, which need not be
                # the current device (a model on cuda:1): wait on that stream, not device 0's
                event.record(torch.cuda.current_stream(value.device))
                self._events.append(event)
        elif self.executor is not None:
            self._futures.append(self.executor.submit(dest.copy_, value))
        else:
            dest.copy_(value)

    def synchronize(self) -> None:
        """Wait until every pending copy (device-to-host, or on the copy thread) has landed."""
        for event in self._events:
            event.synchronize()
        self._events.clear()
        futures, self._futures = self._futures, []
        for future in futures:
            future.result()

    def iter_blocks(self, block: int = 256) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(start, values)`` blocks of at most ``block`` snapshots, oldest first."""
        n = len(self)
        for start in range(0, n, block):
            yield start, self.read(start, min(n, start + block))

    def get(self, i: int) -> torch.Tensor:
        """Snapshot ``i`` (negative counts from the end)."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"snapshot index {i} out of range for a series of {n}")
        i %= n
        return self.read(i, i + 1)[0]


class MemoryStorage(Storage):
    """Snapshots in preallocated CPU blocks of ``chunk_size`` rows (pinned when fed from CUDA).

    Growing never copies what is stored: a new block is allocated when the last one is full.
    The per-snapshot index lives in a preallocated ``int64`` array (32 bytes per snapshot, no
    Python objects), and the rows of the block being filled are prepared views, so recording
    one snapshot is a bounds check, one copy and one index row.

    Args:
        shape: shape of one snapshot.
        dtype: dtype snapshots are stored in.
        chunk_size: snapshots per preallocated block (``None``: about 16 MiB per block).
        capacity: most snapshots kept (``None``: unbounded). What happens at capacity is
            ``policy``.
        policy: ``"error"`` raises :class:`MemoryBudgetError`; ``"downsample"`` drops every
            other stored snapshot and from then on keeps one in two offered (the stride doubles
            each time), so the series always spans the whole run at a coarser resolution. The
            rows it frees are refilled in place (the blocks stay allocated, within capacity).
        pin: allocate pinned blocks (for non-blocking copies from a GPU).
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        dtype: torch.dtype,
        *,
        chunk_size: int | None = None,
        capacity: int | None = None,
        policy: str = "error",
        pin: bool = False,
    ) -> None:
        super().__init__(shape, dtype)
        chunk_size = auto_chunk_size(self.snapshot_nbytes, chunk_size)
        if policy not in ("error", "downsample"):
            raise ValueError(f"policy={policy!r} is not supported; use 'error' or 'downsample'")
        if capacity is not None and int(capacity) < 2:
            raise ValueError(f"capacity={capacity!r} must be at least 2 snapshots")
        self.capacity = None if capacity is None else int(capacity)
        self.chunk_size = int(chunk_size) if capacity is None else min(int(chunk_size), capacity)
        self.policy = policy
        self.pin = bool(pin) and torch.cuda.is_available()
        self.stride = 1
        self._blocks: list[torch.Tensor] = []
        self._rows = 0  # rows in the allocated blocks
        self._n = 0  # snapshots stored
        # step, epoch, batch_idx, offer number of each stored snapshot, flat (4 per snapshot)
        self._idx = array("q")
        self._offers = 0
        # views of the rows of the block holding row ``_base`` onwards (the one being filled)
        self._views: list[torch.Tensor] = []
        self._base = 0

    def __len__(self) -> int:
        return self._n

    def skip(self) -> None:
        self._offers += 1

    @property
    def memory_nbytes(self) -> int:
        return sum(b.numel() * b.element_size() for b in self._blocks)

    def _slot(self, i: int) -> torch.Tensor:
        """Row ``i`` of the blocks (``i`` < allocated rows)."""
        b, j = divmod(i, self.chunk_size)
        return self._blocks[b][j]

    def _select_block(self, i: int) -> None:
        """Make the block holding row ``i`` the one being filled, allocating it if needed."""
        b = i // self.chunk_size
        while b >= len(self._blocks):
            rows = self.chunk_size
            if self.capacity is not None:  # the last block stops at the capacity
                rows = min(rows, self.capacity - self._rows)
            self._blocks.append(alloc_block((rows, *self.shape), self.dtype, pin=self.pin))
            self._rows += rows
        self._views = list(self._blocks[b].unbind(0))
        self._base = b * self.chunk_size

    def reserve(self) -> None:
        """Allocate every block up to ``capacity`` now and write it once.

        Recording then only rewrites memory the process already owns: the kernel's page faults
        on fresh memory (which cost several times a copy into written memory on some machines)
        are all paid here, before training, and a shortage of RAM shows here, not mid-run.
        """
        if self.capacity is None:
            raise ValueError("reserve() needs a capacity (a memory_budget) to know what to reserve")
        try:
            while self._rows < self.capacity:
                self._select_block(self._rows)
                self._blocks[-1].zero_()
        except RuntimeError as err:  # the allocator's out-of-memory error
            raise MemoryBudgetError(
                f"could not reserve {self.capacity} snapshots of {self.snapshot_nbytes} B: {err}"
            ) from err
        self._views, self._base = [], self._rows  # re-selected by the next append

    def promote(self, dtype: torch.dtype) -> None:
        if dtype == self.dtype:
            return
        self.synchronize()
        self._set_dtype(dtype)
        self._blocks = [
            alloc_block(tuple(b.shape), dtype, pin=self.pin).copy_(b) for b in self._blocks
        ]
        self._views, self._base = [], self._rows  # re-selected by the next append

    def _thin(self) -> None:
        self.synchronize()
        new_stride = self.stride * 2
        rows = self._index_array()
        keep = np.flatnonzero(rows[:, 3] % new_stride == 0)
        for new, old in enumerate(keep.tolist()):
            if new != old:
                self._slot(new).copy_(self._slot(old))
        self._idx = array("q", rows[keep].tobytes())
        self._n = int(keep.size)
        # The freed rows are kept and refilled: memory already written is several times
        # cheaper to write again than fresh pages the kernel must fault in and zero.
        self._views, self._base = [], self._rows  # re-selected by the next append
        self.stride = new_stride

    def append(self, value: torch.Tensor, step: int, epoch: int, batch_idx: int) -> bool:
        value = self._check(value)
        offer = self._offers
        self._offers = offer + 1
        if offer % self.stride:
            return False
        n = self._n
        j = n - self._base
        if not 0 <= j < len(self._views):
            if self.capacity is not None and n >= self.capacity:
                if self.policy == "error":
                    raise MemoryBudgetError(
                        f"storing snapshot {n + 1} of shape {self.shape} "
                        f"({self.snapshot_nbytes} B each) exceeds this series' capacity of "
                        f"{self.capacity} snapshots set by memory_budget; raise memory_budget, "
                        "record less often (track_frequency), store float16 (dtype=torch.float16), "
                        "use storage='disk', or budget_policy='downsample'"
                    )
                self._thin()
                if offer % self.stride:
                    return False
                n = self._n
            self._select_block(n)
            j = n - self._base
        self._copy_into(self._views[j], value)
        try:
            self._idx.extend((step, epoch, batch_idx, offer))
        except TypeError:  # e.g. a float step: stored as int, as documented
            del self._idx[4 * n :]
            self._idx.extend((int(step), int(epoch), int(batch_idx), offer))
        self._n = n + 1
        return True

    def _index_array(self) -> np.ndarray:
        return np.frombuffer(self._idx, dtype=np.int64).reshape(-1, 4)

    def index(self) -> np.ndarray:
        return self._index_array()[:, :3].copy()

    def last_step(self) -> int | None:
        return self._idx[-4] if self._idx else None

    def position(self, step: int) -> int | None:
        return _bisect_step(self._idx, 4, step)

    def read(self, start: int, stop: int) -> torch.Tensor:
        self.synchronize()
        n = len(self)
        start, stop = max(0, start), min(n, stop)
        if stop <= start:
            return torch.empty((0, *self.shape), dtype=self.dtype)
        parts = []
        i = start
        while i < stop:
            b, j = divmod(i, self.chunk_size)
            k = min(stop - i, self.chunk_size - j)
            parts.append(self._blocks[b][j : j + k])
            i += k
        return parts[0].clone() if len(parts) == 1 else torch.cat(parts)


class DiskStorage(Storage):
    """Snapshots in chunk files under ``directory``, written by a background thread.

    RAM use is bounded by ``max_pending + 2`` blocks of ``chunk_size`` snapshots
    (:meth:`most_blocks`), whatever the run length. Two blocks (the one being filled and the one
    being written) are allocated with their pages faulted in when the storage is created, and
    blocks the writer has finished are reused, so recording copies into memory the process
    already owns. A full block is handed to the writer thread; ``flush()`` also writes a
    partial block, so calling it regularly bounds what a crash can lose. On Linux the chunk
    values are written with ``O_DIRECT`` from page-aligned blocks (the ``.npy`` header padded
    to one page): no page-cache copy, so the writer thread takes little CPU from training; a
    file system that refuses direct I/O gets ordinary buffered writes.

    Args:
        directory: folder of this series (created).
        shape: shape of one snapshot.
        dtype: dtype snapshots are stored in.
        chunk_size: snapshots per chunk file (``None``: about 16 MiB per file).
        fsync: ``os.fsync`` each file before renaming it into place (survives power loss, slower).
        pin: allocate pinned blocks (for non-blocking copies from a GPU).
        max_pending: blocks waiting for the writer before ``append`` blocks.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        shape: tuple[int, ...],
        dtype: torch.dtype,
        *,
        chunk_size: int | None = None,
        fsync: bool = False,
        pin: bool = False,
        max_pending: int = _MAX_PENDING,
    ) -> None:
        super().__init__(shape, dtype)
        self.max_pending = max(1, int(max_pending))
        chunk_size = auto_chunk_size(self.snapshot_nbytes, chunk_size)
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        if any(self.directory.glob("chunk_*.idx.npy")):
            raise FileExistsError(
                f"{self.directory} already holds chunks; use a fresh directory for a new run"
            )
        self.chunk_size = int(chunk_size)
        self.fsync = bool(fsync)
        self.pin = bool(pin) and torch.cuda.is_available()
        self._direct = bool(_DIRECT) and not self.pin
        self._raw: dict[int, np.ndarray] = {}  # data_ptr of a block -> its page-aligned bytes
        self._header = anonymous_pages(_PAGE) if self._direct else None
        self._pool: queue.SimpleQueue = queue.SimpleQueue()
        self._flushed = 0  # snapshots in chunk files (or queued for the writer)
        self._chunk_lengths: list[int] = []
        self._chunk_starts: list[int] = []  # first snapshot of each chunk
        self._idx = array("q")  # step, epoch, batch_idx of each snapshot, flat (3 per row)
        self._n = 0
        self._allocated = 0  # blocks allocated (filling, queued, being written or pooled)
        self._pool.put(self._alloc_block())  # the spare the first hand-off takes
        self._buffer = self._alloc_block()
        self._fill = 0
        self._queue: queue.Queue = queue.Queue(maxsize=self.max_pending)
        self._error: BaseException | None = None
        self._writer = threading.Thread(target=self._write_loop, daemon=True)
        self._writer.start()
        self._closed = False

    @staticmethod
    def most_blocks(max_pending: int = _MAX_PENDING) -> int:
        """Most blocks held at once: one being filled, ``max_pending`` queued, one being written."""
        return max(1, int(max_pending)) + 2

    def _new_block(self) -> torch.Tensor:
        try:  # reuse a block the writer has finished with
            return self._pool.get_nowait()
        except queue.Empty:
            return self._alloc_block()

    def _alloc_block(self) -> torch.Tensor:
        """A new block, its pages faulted in: page-aligned for direct I/O (its bytes kept in
        ``_raw``), else plain."""
        self._allocated += 1
        if not self._direct:
            shape = (self.chunk_size, *self.shape)
            return alloc_block(shape, self.dtype, pin=self.pin).zero_()  # pages faulted in
        raw = anonymous_pages(self.chunk_size * self.snapshot_nbytes, populate=True)
        block = torch.from_numpy(raw[: self.chunk_size * self.snapshot_nbytes])
        block = block.view(self.dtype).view(self.chunk_size, *self.shape)
        self._raw[block.data_ptr()] = raw
        return block

    def __len__(self) -> int:
        return self._n

    @property
    def memory_nbytes(self) -> int:
        return self._buffer.numel() * self._buffer.element_size() * self._allocated

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._queue.task_done()
                return
            number, block, fill, index = item
            try:
                base = self.directory / f"chunk_{number:06d}"
                self._write_values(base.with_suffix(".npy"), block, fill)
                _atomic_save_npy(base.with_suffix(".idx.npy"), index, self.fsync)
                self._pool.put(block)
            except BaseException as exc:  # surfaced to the training thread on the next call
                self._error = exc
            finally:
                self._queue.task_done()

    def _write_values(self, path: Path, block: torch.Tensor, fill: int) -> None:
        raw = self._raw.get(block.data_ptr())
        if self._direct and raw is not None:
            header = _npy_header((fill, *self.shape), np.dtype(_NP_DTYPES[self.dtype]))
            self._header[:] = np.frombuffer(header, np.uint8)
            try:
                _save_npy_direct(path, self._header, raw, fill * self.snapshot_nbytes, self.fsync)
                return
            except OSError:  # no direct I/O on this file system: buffered from now on
                self._direct = False
        _atomic_save_npy(path, block[:fill].numpy(), self.fsync)

    def _raise_writer_error(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"writing chunks to {self.directory} failed") from self._error

    def _hand_off(self) -> None:
        if self._fill == 0:
            return
        self.synchronize()
        index = np.frombuffer(self._idx, np.int64)[3 * self._flushed :].reshape(-1, 3).copy()
        number = len(self._chunk_lengths)
        self._chunk_lengths.append(self._fill)
        self._chunk_starts.append(self._flushed)
        self._flushed += self._fill
        self._queue.put((number, self._buffer, self._fill, index))
        self._buffer = self._new_block()
        self._fill = 0

    def append(self, value: torch.Tensor, step: int, epoch: int, batch_idx: int) -> bool:
        if self._closed:
            raise RuntimeError(f"storage at {self.directory} is closed")
        self._raise_writer_error()
        value = self._check(value)
        self._copy_into(self._buffer[self._fill], value)
        self._idx.extend((int(step), int(epoch), int(batch_idx)))
        self._n += 1
        self._fill += 1
        if self._fill == self.chunk_size:
            self._hand_off()
        return True

    def promote(self, dtype: torch.dtype) -> None:
        """Write what is buffered (chunks keep the old dtype; reads convert them), then buffer
        and write in ``dtype``."""
        if dtype == self.dtype:
            return
        if self._closed:
            raise RuntimeError(f"storage at {self.directory} is closed")
        self.flush()  # the writer is idle: every block is pooled, or the (empty) one being filled
        while True:
            try:
                self._raw.pop(self._pool.get_nowait().data_ptr(), None)
            except queue.Empty:
                break
        self._raw.pop(self._buffer.data_ptr(), None)
        self._set_dtype(dtype)
        self._allocated = 0
        self._pool.put(self._alloc_block())
        self._buffer = self._alloc_block()
        self._fill = 0

    def flush(self) -> None:
        """Write the partial block too and wait until every chunk is on disk."""
        self._hand_off()
        self._queue.join()
        self._raise_writer_error()

    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        self._queue.put(None)
        self._writer.join()
        self._closed = True

    def index(self) -> np.ndarray:
        return np.frombuffer(self._idx, dtype=np.int64).reshape(-1, 3).copy()

    def last_step(self) -> int | None:
        return self._idx[-3] if self._idx else None

    def position(self, step: int) -> int | None:
        return _bisect_step(self._idx, 3, step)

    def read(self, start: int, stop: int) -> torch.Tensor:
        n = len(self)
        start, stop = max(0, start), min(n, stop)
        if stop <= start:
            return torch.empty((0, *self.shape), dtype=self.dtype)
        if start < self._flushed:
            self._queue.join()
            self._raise_writer_error()
        self.synchronize()
        parts = []
        for number in _chunks_between(self._chunk_starts, start, stop):
            offset, length = self._chunk_starts[number], self._chunk_lengths[number]
            lo, hi = max(start, offset), min(stop, offset + length)
            if lo < hi:
                arr = np.load(
                    self.directory / f"chunk_{number:06d}.npy", mmap_mode="r", allow_pickle=False
                )
                # chunks written before a promote() hold the narrower dtype
                parts.append(torch.from_numpy(np.array(arr[lo - offset : hi - offset])))
        lo, hi = max(start, self._flushed), stop
        if lo < hi:
            parts.append(self._buffer[lo - self._flushed : hi - self._flushed].clone())
        return _joined(parts, self.dtype)


class ChunkReader(Storage):
    """Read-only series over chunk files (a saved run, or what a crashed run flushed).

    Chunks are read lazily with memory mapping. A chunk counts when its index file exists and
    its values file holds as many rows; anything else (a crash mid-write) is ignored.

    Args:
        directory: folder holding ``chunk_NNNNNN.npy`` / ``chunk_NNNNNN.idx.npy`` files.
        shape: expected shape of one snapshot (``None``: taken from the first chunk).
        dtype: expected dtype (``None``: taken from the first chunk).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        shape: tuple[int, ...] | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._chunks: list[tuple[Path, int]] = []
        found_dtypes: list[tuple[Path, torch.dtype]] = []
        rows = []
        numbers = sorted(
            int(m.group(1))
            for p in self.directory.glob("chunk_*.idx.npy")
            if (m := _CHUNK.match(p.name))
        )
        for number in numbers:
            base = self.directory / f"chunk_{number:06d}"
            try:
                idx = np.load(base.with_suffix(".idx.npy"), allow_pickle=False)
                values = np.load(base.with_suffix(".npy"), mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError):
                break
            if idx.ndim != 2 or idx.shape[1] != 3 or values.shape[0] != idx.shape[0]:
                break
            if shape is None:
                shape = tuple(values.shape[1:])
            found = _TORCH_DTYPES.get(values.dtype)
            if tuple(values.shape[1:]) != tuple(shape) or found is None:
                raise ValueError(
                    f"{base.with_suffix('.npy')} holds {values.dtype} {values.shape[1:]}, "
                    f"expected {dtype} {tuple(shape)}"
                )
            found_dtypes.append((base.with_suffix(".npy"), found))
            self._chunks.append((base.with_suffix(".npy"), int(idx.shape[0])))
            rows.append(idx.astype(np.int64))
        if dtype is None and found_dtypes:  # the widest: a promoted series' later chunks
            dtype = found_dtypes[0][1]
            for _, found in found_dtypes:
                dtype = torch.promote_types(dtype, found)
        for chunk, found in found_dtypes:
            # a narrower chunk was written before the series was promoted (float16 overflow)
            if torch.promote_types(found, dtype) != dtype:
                raise ValueError(
                    f"{chunk} holds {found}, wider than the series' {dtype}; expected {dtype}"
                )
        if shape is None or dtype is None:
            raise ValueError(f"{self.directory} holds no readable chunk and no shape was given")
        super().__init__(shape, dtype)
        self._index = np.concatenate(rows) if rows else np.zeros((0, 3), dtype=np.int64)
        self._steps = np.ascontiguousarray(self._index[:, 0])  # bisected by position()
        self._starts = np.cumsum([0] + [n for _, n in self._chunks])[:-1].tolist()

    def __len__(self) -> int:
        return int(self._index.shape[0])

    @property
    def memory_nbytes(self) -> int:
        return 0

    def append(self, value: torch.Tensor, step: int, epoch: int, batch_idx: int) -> bool:
        raise RuntimeError("a loaded run is read-only")

    def index(self) -> np.ndarray:
        return self._index.copy()

    def position(self, step: int) -> int | None:
        i = int(np.searchsorted(self._steps, step, side="right")) - 1
        return i if i >= 0 and self._steps[i] == step else None

    def read(self, start: int, stop: int) -> torch.Tensor:
        n = len(self)
        start, stop = max(0, start), min(n, stop)
        if stop <= start:
            return torch.empty((0, *self.shape), dtype=self.dtype)
        parts = []
        for number in _chunks_between(self._starts, start, stop):
            (path, length), offset = self._chunks[number], self._starts[number]
            lo, hi = max(start, offset), min(stop, offset + length)
            if lo < hi:
                arr = np.load(path, mmap_mode="r", allow_pickle=False)
                parts.append(torch.from_numpy(np.array(arr[lo - offset : hi - offset])))
        return _joined(parts, self.dtype)

    def promote(self, dtype: torch.dtype) -> None:
        raise RuntimeError("a loaded run is read-only")


def _bisect_step(flat: array, width: int, step: int) -> int | None:
    """Position of the last row whose first column is ``step`` in ``flat``, an index of
    ``width`` int64 columns per row with ascending steps, or None: bisects a strided view
    (no copy), released before returning so ``flat`` can grow again."""
    with memoryview(flat)[::width] as steps:
        i = bisect.bisect_right(steps, step) - 1
        return i if i >= 0 and steps[i] == step else None


def _chunks_between(starts: list[int], start: int, stop: int) -> range:
    """Numbers of the chunks (first snapshots ``starts``, ascending) holding snapshots
    ``start:stop``, by bisection: reading a run block by block stays linear in its chunks."""
    return range(max(bisect.bisect_right(starts, start) - 1, 0), bisect.bisect_left(starts, stop))


def _joined(parts: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """``parts`` concatenated in ``dtype`` (chunks of a promoted series are converted)."""
    parts = [p if p.dtype == dtype else p.to(dtype) for p in parts]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def write_chunks(
    directory: Path, storage: Storage, *, chunk_size: int = 256, fsync: bool = False
) -> list[str]:
    """Write every snapshot of ``storage`` as chunk files in ``directory``; returns file names."""
    directory.mkdir(parents=True, exist_ok=True)
    names = []
    index = storage.index()
    for number, (start, values) in enumerate(storage.iter_blocks(chunk_size)):
        base = directory / f"chunk_{number:06d}"
        _atomic_save_npy(base.with_suffix(".npy"), values.numpy(), fsync)
        _atomic_save_npy(
            base.with_suffix(".idx.npy"), index[start : start + values.shape[0]], fsync
        )
        names += [base.with_suffix(".npy").name, base.with_suffix(".idx.npy").name]
    return names
