"""spacelearn: SPACE latent subspace learning (compatible with spacelearn 0.1.0).

Public API of 0.1.0 (same names, signatures and defaults) plus the partitioned solve
(``solve_subspaces(..., method="joint")``), a streaming solver and partition metrics.
"""

from . import data, loss, metrics, optim, settings, synthetic, util
from .__about__ import __version__
from ._combined import (
    PARTITIONED_WEIGHTS,
    Space,
    SubspaceAccumulator,
    combined_loss,
    solve_dims,
    solve_subspaces,
)
from ._find_subspaces import principal_directions, subspaces
from .metrics import decoding_r2, max_principal_cosine

__all__ = [
    "principal_directions",
    "subspaces",
    "combined_loss",
    "solve_subspaces",
    "solve_dims",
    "PARTITIONED_WEIGHTS",
    "Space",
    "SubspaceAccumulator",
    "decoding_r2",
    "max_principal_cosine",
    "__version__",
    "data",
    "loss",
    "metrics",
    "optim",
    "settings",
    "synthetic",
    "util",
]
