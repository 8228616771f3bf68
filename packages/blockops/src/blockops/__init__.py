"""blockops: devices, input validation and blocked distance / top-k kernels for PyTorch."""

from .__about__ import __version__
from .blocks import block_sizes, get_cpu_budget, memory_budget, set_cpu_budget
from .device import resolve_device
from .errors import NotFittedError, check_is_fitted
from .kernels import METRICS, knn, label_min, nearest, pairwise_distances
from .labels import LabelEncoder
from .params import ClassifierMixin, ParamsMixin, clone
from .persistence import load_checkpoint, save_checkpoint
from .seeding import make_generator
from .validation import as_labels, as_tensor, check_X_y

__all__ = [
    "METRICS",
    "ClassifierMixin",
    "LabelEncoder",
    "NotFittedError",
    "ParamsMixin",
    "__version__",
    "as_labels",
    "as_tensor",
    "block_sizes",
    "check_X_y",
    "check_is_fitted",
    "clone",
    "get_cpu_budget",
    "knn",
    "label_min",
    "load_checkpoint",
    "make_generator",
    "memory_budget",
    "nearest",
    "pairwise_distances",
    "resolve_device",
    "save_checkpoint",
    "set_cpu_budget",
]
