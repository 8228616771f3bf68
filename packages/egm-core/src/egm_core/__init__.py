"""egm-core: the PyEGM classifier (explosion-inspired sample growth + trend-path voting)."""

from .__about__ import __version__
from ._config import PRESET_NAMES
from .model import PyEGM

__all__ = ["PRESET_NAMES", "PyEGM", "__version__"]
