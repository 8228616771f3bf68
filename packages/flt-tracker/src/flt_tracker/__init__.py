"""flt-tracker: training-dynamics tracking for feature-learning research.

Core (torch, numpy, pyyaml, tqdm): :class:`FeatureTracker`, :class:`Feature`, storage backends,
:func:`load_run`, :class:`Trainer` and callbacks, attacks in :mod:`flt_tracker.attacks`,
dictionary metrics in :mod:`flt_tracker.analysis`, the feature-purification reproduction in
:mod:`flt_tracker.purification`. Plots live in :mod:`flt_tracker.plot`
(``pip install flt-tracker[plot]``), wandb in :class:`WandbCallback` (``[wandb]``), the Hydra
entry point in :mod:`flt_tracker.train` (``[hydra]``); those extras are imported lazily.
"""

from .__about__ import __version__
from .callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    FeatureTrackingCallback,
    JSONLinesLogger,
    ModelCheckpoint,
    WandbCallback,
)
from .feature import Feature, effective_rank
from .run import TrackingRun, load_run, save_run
from .storage import (
    DiskStorage,
    Float16OverflowWarning,
    MemoryBudgetError,
    MemoryStorage,
    Storage,
)
from .tracker import FeatureTracker
from .trainer import Trainer, accuracy

__all__ = [
    "CSVLogger",
    "Callback",
    "DiskStorage",
    "EarlyStopping",
    "Feature",
    "FeatureTracker",
    "FeatureTrackingCallback",
    "Float16OverflowWarning",
    "JSONLinesLogger",
    "MemoryBudgetError",
    "MemoryStorage",
    "ModelCheckpoint",
    "Storage",
    "Trainer",
    "TrackingRun",
    "WandbCallback",
    "__version__",
    "accuracy",
    "effective_rank",
    "load_run",
    "save_run",
]
