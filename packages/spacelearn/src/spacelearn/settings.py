"""Global solver settings (``spacelearn.settings.config``), read lazily on every call.

The published 0.1.0 attribute path is kept: tests and user code switch the backend at run time
with ``spacelearn.settings.config.solver_mode = "svd"`` and restore it afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

SOLVER_MODES = ("auto", "svd", "eigen", "lowrank")


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class Settings:
    """Solver configuration shared by ``spacelearn.util`` and everything built on it.

    Attributes:
        solver_mode: ``"auto"`` (exact SVD; a randomized low-rank solve only when a small rank is
            asked of a large matrix), ``"svd"``, ``"eigen"`` (eigendecomposition of the smaller
            Gram matrix) or ``"lowrank"`` (randomized range finder). Every backend returns the
            same number of components.
        use_cpu_fallback: retry a CUDA decomposition on the CPU when it fails (the result is
            moved back to the input's device).
        device: kept for compatibility with 0.1.0 (it was never read there either); the
            solvers follow their inputs or an explicit ``device=`` argument.
        n_lowrank_iters: power iterations of the randomized range finder.
        use_full_matrix: ``left`` / ``right`` called without ``rank`` return a complete
            orthonormal basis (singular values zero-padded to match); an explicit ``rank`` (as
            the subspace solvers pass) wins, and ``full`` always returns the reduced
            factorization.
        lowrank_oversample: extra random directions of the range finder (never fewer
            components than asked are returned).
        seed: seed of the range finder's private generator (``None``: the global RNG), so the
            lowrank backend is deterministic by default.
    """

    solver_mode: Literal["auto", "svd", "eigen", "lowrank"] = "auto"
    use_cpu_fallback: bool = False
    device: torch.device = field(default_factory=_default_device)
    n_lowrank_iters: int = 2
    use_full_matrix: bool = False
    lowrank_oversample: int = 10
    seed: int | None = 0


config = Settings()

__all__ = ["SOLVER_MODES", "Settings", "config"]
