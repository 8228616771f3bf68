"""flt-tracker: training-dynamics tracking for feature-learning research.

Core (torch + numpy only): :class:`FeatureTracker`, :class:`Feature`, storage backends,
:func:`load_run`, :class:`Trainer` and callbacks, dictionary metrics in :mod:`flt_tracker.analysis`.
Plots live in :mod:`flt_tracker.plot` (``pip install flt-tracker[plot]``), wandb in
:class:`WandbCallback` (``[wandb]``), the Hydra entry point in :mod:`flt_tracker.train` (``[hydra]``).
"""

from .__about__ import __version__
from .feature import Feature, effective_rank
from .run import TrackingRun, load_run, save_run
from .storage import DiskStorage, MemoryBudgetError, MemoryStorage, Storage
from .tracker import FeatureTracker

__all__ = [
    "DiskStorage",
    "Feature",
    "FeatureTracker",
    "MemoryBudgetError",
    "MemoryStorage",
    "Storage",
    "TrackingRun",
    "__version__",
    "effective_rank",
    "load_run",
    "save_run",
]
