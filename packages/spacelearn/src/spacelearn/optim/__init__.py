"""Sizing (bins, k, latent dim), decoders and subspace comparison."""

from ._fit_decoder import fit_decoders
from ._optimize_latent import minimal_latent_dim
from ._optimize_subspaces import k_per_q
from ._optimize_targets import optimal_bins
from ._schedule import resolve_epochs
from ._subspace_change import principal_cosines, subspace_change

__all__ = [
    "optimal_bins",
    "minimal_latent_dim",
    "fit_decoders",
    "subspace_change",
    "k_per_q",
    "principal_cosines",
    "resolve_epochs",
]
