"""Latent sizing: how many dimensions the subspaces (and some free room) need."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

from .._checks import check_int, check_real

logger = logging.getLogger("spacelearn")


def _align_latent_dim(dim: int, num_heads: int) -> int:
    """Round ``dim`` up to a multiple of ``num_heads`` (both ``>= 1``)."""
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim!r}")
    if num_heads < 1:
        raise ValueError(f"num_heads must be >= 1, got {num_heads!r}")
    if num_heads == 1:
        return dim
    return int(math.ceil(dim / num_heads) * num_heads)


def minimal_latent_dim(
    k: int | dict[str, int],
    *,
    Q: int | None = None,
    free_frac: float = 0.30,
    num_heads: int | None = None,
) -> int:
    """Latent size ``D = ceil(sum(k) / (1 - free_frac))``, optionally a multiple of ``num_heads``.

    Args:
        k: ``{name: k_q}``, or one ``k`` shared by ``Q`` quantities.
        Q: number of quantities when ``k`` is an int (ignored with a dict).
        free_frac: fraction of the latent left to no quantity, in ``[0, 1)``.
        num_heads: round up to a multiple of it (attention heads, say).

    The float expression ``math.ceil(physics / (1.0 - free_frac))`` is kept from 0.1.0 on
    purpose so results match bit for bit (``k=21, free_frac=0.3`` gives 31: 21/0.7 rounds up).
    Logged at INFO level on the ``spacelearn`` logger, never printed.
    """
    if isinstance(k, Mapping):
        if not k:
            raise ValueError("k is an empty dict; give {name: k_q} for at least one quantity")
        physics = sum(check_int(v, f"k[{name!r}]") for name, v in k.items())
    else:
        k = check_int(k, "k")
        if Q is None:
            raise ValueError("Q (the number of quantities) is required when k is an int")
        physics = check_int(Q, "Q") * k
    free_frac = check_real(free_frac, "free_frac", high=1.0)
    D = math.ceil(physics / (1.0 - free_frac))
    if num_heads is not None:
        D = _align_latent_dim(D, check_int(num_heads, "num_heads"))
    logger.info("[latent-sizing] free=%d%% -> D_min=%d", round(free_frac * 100), D)
    return D


__all__ = ["minimal_latent_dim"]
