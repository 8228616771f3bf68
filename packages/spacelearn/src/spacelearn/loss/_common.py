"""Shared helpers of the losses (hot path: light checks only)."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from .._checks import numeric_tensor, warn


def check_latent(Z: Tensor) -> Tensor:
    """``Z`` itself if it is a floating-point ``(B, D)`` tensor."""
    if not isinstance(Z, Tensor) or Z.ndim != 2:
        shape = tuple(Z.shape) if isinstance(Z, Tensor) else type(Z).__name__
        raise ValueError(f"Z must be a (B, D) tensor, got {shape}")
    if not Z.is_floating_point():
        raise TypeError(f"Z must be a floating-point tensor (the encoder's output), got {Z.dtype}")
    return Z


def centred(Z: Tensor) -> Tensor:
    """``Z - mean_B(Z)`` of a checked ``(B, D)`` latent batch."""
    return check_latent(Z) - Z.mean(0, keepdim=True)


def check_mapping(mapping, name: str) -> Mapping:
    """``mapping`` itself if it is dict-like ``{quantity: tensor}`` (a ``Mapping``, or anything
    with ``keys`` and ``__getitem__`` such as ``nn.ParameterDict`` of trainable bases); else a
    ``TypeError`` naming ``name`` (a tensor passed for a dict failed deep inside torch indexing)."""
    if not (
        isinstance(mapping, Mapping)
        or (hasattr(mapping, "keys") and hasattr(mapping, "__getitem__"))
    ):
        raise TypeError(f"{name} must be a dict {{quantity: tensor}}, got {type(mapping).__name__}")
    return mapping


def entry(mapping, q: str, name: str) -> Tensor:
    """``mapping[q]``; a missing quantity is a ``KeyError`` naming ``name`` and its keys."""
    check_mapping(mapping, name)
    try:
        return mapping[q]
    except KeyError:
        raise KeyError(
            f"{name} has no entry for quantity {q!r} of W; its keys are {list(mapping)}"
        ) from None


def flat(y: Tensor, like: Tensor, name: str = "target") -> Tensor:
    """``y`` as ``(B, P)`` on ``like``'s device and dtype (1-D: ``(B, 1)``)."""
    y = numeric_tensor(y, name)
    if y.ndim == 0:
        raise ValueError(f"{name} must have a batch dimension (B, ...), got a scalar")
    y = y.reshape(-1, 1) if y.ndim == 1 else y.flatten(1)
    return y.to(device=like.device, dtype=like.dtype)


def basis(w: Tensor, like: Tensor, name: str | None = None) -> Tensor:
    """``w`` on ``like``'s device and dtype; with a ``name``, checked to be ``(k, D)`` (a
    non-numeric ``w`` is a ``ValueError`` naming it)."""
    w = numeric_tensor(w, name or "basis").to(device=like.device, dtype=like.dtype)
    if name is not None and (w.ndim != 2 or w.shape[1] != like.shape[1]):
        raise ValueError(
            f"{name} must be a (k, D={like.shape[1]}) basis matching Z, got shape {tuple(w.shape)}"
        )
    return w


def zero_like_graph(Z: Tensor) -> Tensor:
    """A 0-dim zero that stays connected to ``Z``'s graph (``backward()`` works)."""
    return (Z * 0).sum()


def warn_small_batch(Z: Tensor, what: str) -> bool:
    if check_latent(Z).shape[0] < 2:
        warn(
            f"{what} needs a batch of at least 2 samples (statistics are centred over the "
            f"batch); got B={Z.shape[0]}, returning 0"
        )
        return True
    return False
