"""Block-size policy: how many queries and database rows one distance block holds."""

from __future__ import annotations

import operator
from dataclasses import dataclass

import torch

from .device import resolve_device

_CPU_BUDGET_BYTES = 256 * 2**20
_GPU_FRACTION = 0.25


def set_cpu_budget(n_bytes: int) -> None:
    """Set the memory one distance block (plus selection temporaries) may use on the CPU."""
    global _CPU_BUDGET_BYTES
    try:
        size = int(n_bytes)
    except (TypeError, ValueError) as exc:  # None, "1e9", a list
        raise TypeError(f"n_bytes must be a number of bytes, got {n_bytes!r}") from exc
    if size < 2**16:
        raise ValueError(f"n_bytes must be at least 65536, got {n_bytes}")
    _CPU_BUDGET_BYTES = size


def get_cpu_budget() -> int:
    """The CPU block budget in bytes (default 256 MiB)."""
    return _CPU_BUDGET_BYTES


def memory_budget(device: torch.device) -> int:
    """Bytes a block may use: the CPU budget, or a quarter of the free memory of a GPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return max(int(free * _GPU_FRACTION), 2**20)
    return _CPU_BUDGET_BYTES


def positive_int(value: object, name: str, *, or_none: bool = False) -> int | None:
    """``value`` as an int (numpy and 0-d integer tensors accepted) if it is ``>= 1``; ``None``
    stays ``None`` where ``or_none``. Anything else is a ValueError naming ``name``."""
    if value is None and or_none:
        return None
    try:
        out = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        out = None
    if out is None or out < 1:
        kind = "a positive int or None" if or_none else "a positive int"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return out


def block_sizes(
    n_queries: int,
    n_database: int,
    device: str | torch.device,
    dtype: torch.dtype = torch.float32,
    q_block: int | None = None,
    db_block: int | None = None,
    budget: int | None = None,
) -> tuple[int, int]:
    """Choose ``(q_block, db_block)`` so one block of distances fits the memory budget.

    Explicit sizes are validated and kept. A block costs about three times its
    ``q_block * db_block`` elements (distances plus selection temporaries). A string
    ``device`` goes through :func:`resolve_device` (``"auto"``: CUDA when available).
    """
    if isinstance(device, str):
        device = resolve_device(device, name="device")
    q_block = positive_int(q_block, "q_block", or_none=True)
    db_block = positive_int(db_block, "db_block", or_none=True)
    budget = memory_budget(device) if budget is None else int(budget)
    elems = max(budget // (3 * torch.empty((), dtype=dtype).element_size()), 1)
    default_db = 65536 if device.type == "cuda" else 8192
    dbb = db_block or max(1, min(n_database, default_db, elems))
    qb = q_block or max(1, min(n_queries, elems // dbb))
    return min(qb, max(n_queries, 1)), min(dbb, max(n_database, 1))


@dataclass(frozen=True)
class GroupShape:
    """Layout of the grouped k-NN selection: groups of ``g1`` consecutive database rows,
    super-groups of ``g2`` consecutive groups, ``db_block`` rows (a multiple of ``g1 * g2``)
    per distance block."""

    g1: int
    g2: int
    db_block: int


# CPU: large blocks keep the number of parallel regions small, which matters most on a
# loaded machine (measured on a shared 2-core AVX-512 CPU); the budget may lower ``q_block``.
_CPU_KNN_BLOCK = (2048, 16384)
_GPU_KNN_DB_BLOCK = 65536


def knn_group_shape(
    n_database: int, k: int, db_block: int | None, device: torch.device
) -> GroupShape | None:
    """Group sizes and database block for the grouped k-NN, or ``None`` where grouping won't pay.

    A level of grouping is used only where the ``k`` best groups hold at most a quarter of the
    database and a group fits in the block; both levels together must shrink the selection at
    least 16-fold.
    """
    default = _GPU_KNN_DB_BLOCK if device.type == "cuda" else _CPU_KNN_BLOCK[1]
    want = min(db_block or default, n_database)
    g1 = next((g for g in (16, 4) if g <= want and 4 * k * g <= n_database), 1)
    g2 = next((g for g in (16, 4) if g1 * g <= want and 4 * k * g1 * g <= n_database), 1)
    unit = g1 * g2
    if unit < 16:
        return None
    if db_block is None:
        want = min(want + unit - 1, default)  # round a small database up to one whole block
    return GroupShape(g1, g2, max(unit, want // unit * unit))


def knn_query_block(
    n_queries: int, n_database: int, d: int, shape: GroupShape, device: torch.device, k: int = 16
) -> int:
    """Queries per block for the grouped k-NN, from the memory budget (and L2 size on CPU).

    Per query the block holds a row of distances (``db_block``), the group and super-group
    minima of the whole database and the recomputed candidates (``k * g1`` rows of ``d + 1``).
    """
    n_pad = -(-n_database // shape.db_block) * shape.db_block
    per_query = 4 * (
        shape.db_block
        + n_pad // shape.g1
        + 8 * (n_pad // (shape.g1 * shape.g2))
        + 8 * k * shape.g2
        + k * shape.g1 * (d + 12)
    )
    qb = max(1, memory_budget(device) // per_query)
    if device.type != "cuda":
        qb = min(qb, _CPU_KNN_BLOCK[0])
    return max(1, min(qb, n_queries))
