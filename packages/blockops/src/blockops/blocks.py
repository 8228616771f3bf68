"""Block-size policy: how many queries and database rows one distance block holds."""

from __future__ import annotations

import torch

_CPU_BUDGET_BYTES = 256 * 2**20
_GPU_FRACTION = 0.25


def set_cpu_budget(n_bytes: int) -> None:
    """Set the memory one distance block (plus selection temporaries) may use on the CPU."""
    global _CPU_BUDGET_BYTES
    if int(n_bytes) < 2**16:
        raise ValueError(f"n_bytes must be at least 65536, got {n_bytes}")
    _CPU_BUDGET_BYTES = int(n_bytes)


def get_cpu_budget() -> int:
    """The CPU block budget in bytes (default 256 MiB)."""
    return _CPU_BUDGET_BYTES


def memory_budget(device: torch.device) -> int:
    """Bytes a block may use: the CPU budget, or a quarter of the free memory of a GPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return max(int(free * _GPU_FRACTION), 2**20)
    return _CPU_BUDGET_BYTES


def block_sizes(
    n_queries: int,
    n_database: int,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    q_block: int | None = None,
    db_block: int | None = None,
    budget: int | None = None,
) -> tuple[int, int]:
    """Choose ``(q_block, db_block)`` so one block of distances fits the memory budget.

    Explicit sizes are validated and kept. A block costs about three times its
    ``q_block * db_block`` elements (distances plus selection temporaries).
    """
    for name, value in (("q_block", q_block), ("db_block", db_block)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive int or None, got {value!r}")
    budget = memory_budget(device) if budget is None else int(budget)
    elems = max(budget // (3 * torch.empty((), dtype=dtype).element_size()), 1)
    default_db = 65536 if device.type == "cuda" else 8192
    dbb = db_block or max(1, min(n_database, default_db, elems))
    qb = q_block or max(1, min(n_queries, elems // dbb))
    return min(qb, max(n_queries, 1)), min(dbb, max(n_database, 1))
