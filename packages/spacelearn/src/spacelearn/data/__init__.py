"""Quantities: compute them from inputs, pool them, reshape / move arguments."""

from ._compute_Q import compute_Q
from ._pipeline import input_to_quantity
from ._pool import pool
from ._utils import ensure_dim, to_device

__all__ = ["input_to_quantity", "pool", "ensure_dim", "to_device", "compute_Q"]
