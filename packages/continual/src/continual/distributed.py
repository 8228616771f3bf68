"""Data-parallel training helpers (torchrun / torch.distributed), gloo on CPU, nccl on CUDA.

Under ``torch.distributed`` the :class:`~continual.Trainer` gives each rank every
``world_size``-th row of each batch and averages the gradients over ranks after ``backward``
(what ``DistributedDataParallel`` does), so the replicas stay identical. The empirical Fisher is
summed over ranks. Memories filled from whole experiences (Replay, A-GEM, GEM) use the same
seeded generator on every rank and therefore hold the same samples everywhere.
"""

from __future__ import annotations

import numbers
import os
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler, RandomSampler, Sampler, SequentialSampler

from ._checks import check_count

__all__ = [
    "all_reduce",
    "all_reduce_mean",
    "barrier",
    "create_distributed_sampler",
    "get_local_rank",
    "get_rank",
    "get_world_size",
    "is_distributed",
    "maybe_ddp_wrap",
    "maybe_initialize",
    "print0",
]

# names of ``dist.ReduceOp`` members; "avg" sums, then divides by the world size (gloo has no AVG)
_REDUCE_OPS = {"sum": "SUM", "avg": "SUM", "max": "MAX", "min": "MIN", "product": "PRODUCT"}


def is_distributed() -> bool:
    """True when a process group is initialised with more than one rank."""
    return _has_group() and dist.get_world_size() > 1


def _has_group() -> bool:
    """True when a default process group is initialised (of any size, one rank included)."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """Rank of this process (0 without a process group)."""
    return dist.get_rank() if _has_group() else 0


def get_local_rank() -> int:
    """Rank of this process on its node: torchrun's ``LOCAL_RANK`` (0 when it is not set).

    Raises:
        ValueError: ``LOCAL_RANK`` is set but is not an integer >= 0.
    """
    value = os.environ.get("LOCAL_RANK", "0")
    try:
        rank = int(value)
    except ValueError:
        rank = -1
    if rank < 0:
        raise ValueError(f"LOCAL_RANK must be an integer >= 0, got {value!r}")
    return rank


def print0(*args: Any, **kwargs: Any) -> None:
    """``print(*args, **kwargs)`` on rank 0 only (every call prints without a process group)."""
    if get_rank() == 0:
        print(*args, **kwargs)


def get_world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if _has_group() else 1


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
        torch.cuda.set_device(get_local_rank())
    dist.init_process_group(backend=backend)
    return True


def barrier() -> None:
    """Synchronise all ranks (no-op without a process group)."""
    if _has_group():
        dist.barrier()


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Average ``tensor`` over ranks in place (no-op without a process group); returns it."""
    if is_distributed():
        dist.all_reduce(tensor)
        tensor /= dist.get_world_size()
    return tensor


def all_reduce(value: torch.Tensor | float, op: str = "sum") -> torch.Tensor | float:
    """Reduce ``value`` over ranks with ``op``; identity without a process group.

    Args:
        value: a tensor (reduced in place and returned) or a Python number (a new number is
            returned; a float for ``"avg"``).
        op: ``"sum"``, ``"avg"``, ``"max"``, ``"min"`` or ``"product"``. ``"avg"`` is a sum
            divided by the world size on every backend (gloo has no AVG); the original ignored
            ``op`` and always summed.

    Raises:
        ValueError: unknown ``op``.
        TypeError: ``value`` is neither a tensor nor a real number, or ``op="avg"`` on an
            integer tensor (the mean cannot be stored in place).
    """
    if op not in _REDUCE_OPS:
        raise ValueError(f"op={op!r} is not understood; expected one of {list(_REDUCE_OPS)}")
    if isinstance(value, torch.Tensor):
        if op == "avg" and not (value.is_floating_point() or value.is_complex()):
            raise TypeError(f"op='avg' needs a floating-point tensor value, got {value.dtype}")
        if _has_group():
            dist.all_reduce(value, op=getattr(dist.ReduceOp, _REDUCE_OPS[op]))
            if op == "avg":
                value /= dist.get_world_size()
        return value
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"value must be a tensor or a real number, got {type(value).__name__}")
    if not _has_group():
        return float(value) if op == "avg" else value
    device = "cpu"
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    dtype = torch.int64 if isinstance(value, numbers.Integral) and op != "avg" else torch.float64
    reduced = all_reduce(torch.tensor(value, dtype=dtype, device=device), op)
    return reduced.item()


def maybe_ddp_wrap(model: torch.nn.Module, **kwargs: Any) -> torch.nn.Module:
    """``DistributedDataParallel(model, **kwargs)`` when a process group is initialised, else
    ``model`` unchanged. ``device_ids`` defaults to the device of a CUDA model's parameters.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not _has_group():
        return model
    param = next(model.parameters(), None)
    if param is not None and param.device.type == "cuda":
        kwargs.setdefault("device_ids", [param.device.index])
    return DistributedDataParallel(model, **kwargs)


def create_distributed_sampler(
    dataset: Any, epoch: int = 0, shuffle: bool = True, seed: int = 0, drop_last: bool = False
) -> Sampler:
    """A sampler of ``dataset`` for this rank.

    With a process group: a ``DistributedSampler`` (this rank's share, shuffled with
    ``seed + epoch``) with ``set_epoch(epoch)`` applied. Without one: a ``RandomSampler`` whose
    generator is seeded with ``seed + epoch`` (the same order as the one-rank
    ``DistributedSampler``) when ``shuffle`` (a second pass over it draws a new order), else a
    ``SequentialSampler``; ``drop_last`` only matters between ranks and is not used then.

    Raises:
        ValueError: ``epoch`` or ``seed`` is not an integer >= 0.
        TypeError: ``dataset`` has no ``len()``.
    """
    check_count("epoch", epoch, minimum=0)
    check_count("seed", seed, minimum=0)
    if not hasattr(dataset, "__len__"):
        raise TypeError(f"dataset must have a len() (map-style), got {type(dataset).__name__}")
    if _has_group():
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
        sampler.set_epoch(epoch)
        return sampler
    if not shuffle:
        return SequentialSampler(dataset)
    return RandomSampler(dataset, generator=torch.Generator().manual_seed(seed + epoch))
