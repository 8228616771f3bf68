"""Data-parallel training helpers (torchrun / torch.distributed), gloo on CPU, nccl on CUDA.

Under ``torch.distributed`` the :class:`~continual.Trainer` gives each rank every
``world_size``-th row of each batch and averages the gradients over ranks after ``backward``
(what ``DistributedDataParallel`` does), so the replicas stay identical. The empirical Fisher is
summed over ranks. Memories filled from whole experiences (Replay, A-GEM, GEM) use the same
seeded generator on every rank and therefore hold the same samples everywhere.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = [
    "all_reduce_mean",
    "barrier",
    "get_rank",
    "get_world_size",
    "is_distributed",
    "maybe_initialize",
]


def is_distributed() -> bool:
    """True when a process group is initialised with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """Rank of this process (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def maybe_initialize(backend: str | None = None) -> bool:
    """Initialise the default process group from torchrun's environment variables.

    Args:
        backend: ``"gloo"``, ``"nccl"`` or None (nccl when CUDA is available, else gloo).

    Returns:
        True when a process group is (now) initialised; False when the environment does not
        describe a distributed run (no ``MASTER_ADDR`` / ``WORLD_SIZE``).
    """
    if dist.is_initialized():
        return True
    if "MASTER_ADDR" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    return True


def barrier() -> None:
    """Synchronise all ranks (no-op without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Average ``tensor`` over ranks in place (no-op without a process group); returns it."""
    if is_distributed():
        dist.all_reduce(tensor)
        tensor /= dist.get_world_size()
    return tensor
