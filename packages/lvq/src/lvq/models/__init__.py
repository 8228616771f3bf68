"""The model families (each module registers its classes in :data:`lvq.registry.REGISTRY`)."""

# clusterers O, P, Q: clustering, fuzzy, topology; part 2 (D, E, F, H): backbone, cbc,
# supervised_ng, wasserstein; part 3 (G, K, L, M, N): kernel, one_class, svqocc
from . import (  # noqa: F401
    backbone,
    cbc,
    clustering,
    fuzzy,
    kernel,
    one_class,
    supervised_ng,
    svqocc,
    topology,
    wasserstein,
)
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
