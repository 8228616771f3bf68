"""egm-viz: pictures and animations of a fitted EGM model (egm-core's PyEGM).

Draws what the fitted model holds - real and synthetic bank points, energy vectors, trend
paths - without changing it and without re-simulating anything.
"""

from .__about__ import __version__
from ._model import BANK_ATTRIBUTES, BankView, read_model
from .explosion import stratified_subsample, visualize_explosion
from .projection import PCA2D, PROJECTIONS, Embedding, project
from .summary import history_matrix, plot_class_energy, synthetic_counts

__all__ = [
    "BANK_ATTRIBUTES",
    "PCA2D",
    "PROJECTIONS",
    "BankView",
    "Embedding",
    "__version__",
    "history_matrix",
    "plot_class_energy",
    "project",
    "read_model",
    "stratified_subsample",
    "synthetic_counts",
    "visualize_explosion",
]
