"""SVD helpers that follow ``spacelearn.settings.config.solver_mode``."""

from .svd_util import full, left, right, singular_values

__all__ = ["left", "right", "full", "singular_values"]
