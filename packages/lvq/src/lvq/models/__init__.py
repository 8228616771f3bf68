"""The model families (each module registers its classes in :data:`lvq.registry.REGISTRY`)."""

from . import clustering, fuzzy, topology  # noqa: F401  (families O, P, Q: clusterers)
from . import kernel, one_class, svqocc  # noqa: F401  (part 3: families G, K, L, M, N)
from .classic import LVQ1, LVQ21, MedianLVQ
from .glvq import CELVQ, GLVQ, GLVQ1, GLVQ21, GMLVQ, GRLVQ, GTLVQ, LGMLVQ
from .neighbors import KNN, NPC
from .probabilistic import LMRSLVQ, MRSLVQ, RSLVQ, SLVQ

__all__ = [
    "CELVQ",
    "GLVQ",
    "GLVQ1",
    "GLVQ21",
    "GMLVQ",
    "GRLVQ",
    "GTLVQ",
    "KNN",
    "LGMLVQ",
    "LMRSLVQ",
    "LVQ1",
    "LVQ21",
    "MRSLVQ",
    "NPC",
    "RSLVQ",
    "SLVQ",
    "MedianLVQ",
]
