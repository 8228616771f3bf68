"""lvq: Learning Vector Quantization in PyTorch with scikit-learn conventions.

Every model is a composition of a distance (:mod:`lvq.distances`), a loss (:mod:`lvq.losses`)
and a neighbourhood (:mod:`lvq.neighbourhood`), trained by one loop (:mod:`lvq.base`) and listed
in one registry (:mod:`lvq.registry`).
"""

from . import distances, initializers, losses, neighbourhood, optim, registry
from .__about__ import __version__
from .base import BASE_PARAMS, Callback, SupervisedPrototypeModel
from .callbacks import EarlyStopping, PrototypeTrajectory
from .models import (
    CELVQ,
    GLVQ,
    GLVQ1,
    GLVQ21,
    GMLVQ,
    GRLVQ,
    GTLVQ,
    KNN,
    LGMLVQ,
    LMRSLVQ,
    LVQ1,
    LVQ21,
    MRSLVQ,
    NPC,
    RSLVQ,
    SLVQ,
    MedianLVQ,
)
from .registry import REGISTRY, get_model_class, list_models, register


def load(path, platform=None, *, device=None):
    """Load any saved lvq model: the class named in the checkpoint reads it with its own ``load``.

    ``platform`` (``device=`` is an alias; neither given: ``"auto"``) is where it goes.
    """
    import blockops

    config, _, meta = blockops.load_checkpoint(path)
    if meta.get("package") != "lvq":
        raise ValueError(
            f"{str(path)!r} is not an lvq checkpoint (package={meta.get('package')!r})"
        )
    return get_model_class(config["model"]).load(path, platform, device=device)


__all__ = [
    "BASE_PARAMS",
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
    "REGISTRY",
    "RSLVQ",
    "SLVQ",
    "Callback",
    "EarlyStopping",
    "MedianLVQ",
    "PrototypeTrajectory",
    "SupervisedPrototypeModel",
    "__version__",
    "distances",
    "get_model_class",
    "initializers",
    "list_models",
    "load",
    "losses",
    "neighbourhood",
    "optim",
    "register",
    "registry",
]

# unsupervised families O, P, Q (clusterers), manifolds and SOM utilities
from . import manifolds, som_utils  # noqa: E402
from .models.clustering import BGPC, SOM, Kmeans, KMeansPlusPlus, UnsupervisedModel  # noqa: E402
from .models.fuzzy import (  # noqa: E402
    AFCM,
    FCM,
    FPCM,
    HCM,
    IPCM,
    IPCM2,
    KAFCM,
    KFCM,
    KFPCM,
    KIPCM,
    KIPCM2,
    KPCM,
    KPFCM,
    PCM,
    PFCM,
)
from .models.riemannian import (  # noqa: E402
    RiemannianDKGLVQ,
    RiemannianDKGMLVQ,
    RiemannianDKGRLVQ,
    RiemannianDKMSLNG,
    RiemannianDKMSMNG,
    RiemannianDKMSTNG,
    RiemannianDKRSLNG,
    RiemannianDKRSMNG,
    RiemannianDKRSTNG,
    RiemannianDKSLNG,
    RiemannianDKSMNG,
    RiemannianDKSTNG,
    RiemannianSLNG,
    RiemannianSMNG,
    RiemannianSRNG,
    RiemannianSTNG,
)
from .models.topology import (  # noqa: E402
    DKHeskesSOM,
    DKKohonenSOM,
    DKNeuralGas,
    GrowingNeuralGas,
    HeskesSOM,
    KohonenSOM,
    NeuralGas,
    RiemannianNeuralGas,
)

__all__ += [
    "AFCM", "BGPC", "DKHeskesSOM", "DKKohonenSOM", "DKNeuralGas", "FCM", "FPCM", "GrowingNeuralGas",
    "HCM", "HeskesSOM", "IPCM", "IPCM2", "KAFCM", "KFCM", "KFPCM", "KIPCM", "KIPCM2", "KMeansPlusPlus",
    "KPCM", "KPFCM", "Kmeans", "KohonenSOM", "NeuralGas", "PCM", "PFCM", "RiemannianNeuralGas", "SOM",
    "UnsupervisedModel", "manifolds", "som_utils",
    "RiemannianDKGLVQ", "RiemannianDKGMLVQ", "RiemannianDKGRLVQ", "RiemannianDKMSLNG",
    "RiemannianDKMSMNG", "RiemannianDKMSTNG", "RiemannianDKRSLNG", "RiemannianDKRSMNG",
    "RiemannianDKRSTNG", "RiemannianDKSLNG", "RiemannianDKSMNG", "RiemannianDKSTNG",
    "RiemannianSLNG", "RiemannianSMNG", "RiemannianSRNG", "RiemannianSTNG",
]  # fmt: skip

# part 3: families G, K, L, M, N (differentiating kernel, one-class)
from .models.kernel import DKGLVQ, DKGLVQ_NG, DKGMLVQ, DKGMLVQ_NG, DKGRLVQ, DKGRLVQ_NG  # noqa: E402
from .models.one_class import (  # noqa: E402
    OCDKGLVQ,
    OCDKGLVQ_NG,
    OCDKGMLVQ,
    OCDKGMLVQ_NG,
    OCDKGRLVQ,
    OCDKGRLVQ_NG,
    OCGLVQ,
    OCGLVQ_NG,
    OCGMLVQ,
    OCGMLVQ_NG,
    OCGRLVQ,
    OCGRLVQ_NG,
    OCGTLVQ,
    OCGTLVQ_NG,
    OCLGMLVQ,
    OCLGMLVQ_NG,
    OCLMRSLVQ,
    OCLMRSLVQ_NG,
    OCMRSLVQ,
    OCMRSLVQ_NG,
    OCRSLVQ,
    OCRSLVQ_NG,
    OneClassPrototypeModel,
)
from .models.svqocc import SVQOCC, SVQOCC_LM, SVQOCC_M, SVQOCC_R, SVQOCC_T  # noqa: E402

__all__ += [
    "DKGLVQ", "DKGLVQ_NG", "DKGMLVQ", "DKGMLVQ_NG", "DKGRLVQ", "DKGRLVQ_NG",
    "OCDKGLVQ", "OCDKGLVQ_NG", "OCDKGMLVQ", "OCDKGMLVQ_NG", "OCDKGRLVQ", "OCDKGRLVQ_NG",
    "OCGLVQ", "OCGLVQ_NG", "OCGMLVQ", "OCGMLVQ_NG", "OCGRLVQ", "OCGRLVQ_NG", "OCGTLVQ",
    "OCGTLVQ_NG", "OCLGMLVQ", "OCLGMLVQ_NG", "OCLMRSLVQ", "OCLMRSLVQ_NG", "OCMRSLVQ",
    "OCMRSLVQ_NG", "OCRSLVQ", "OCRSLVQ_NG", "OneClassPrototypeModel",
    "SVQOCC", "SVQOCC_LM", "SVQOCC_M", "SVQOCC_R", "SVQOCC_T",
]  # fmt: skip

# part 2: families D, E, F, H
from . import backbones  # noqa: E402
from .models.backbone import (  # noqa: E402
    LVQMLN,
    PLVQ,
    ImageGLVQ,
    ImageGMLVQ,
    ImageGTLVQ,
    SiameseGLVQ,
    SiameseGMLVQ,
    SiameseGTLVQ,
)
from .models.cbc import CBC, ImageCBC  # noqa: E402
from .models.supervised_ng import (  # noqa: E402
    CELVQ_NG,
    LCELVQ_NG,
    LMRSLVQ_NG,
    MCELVQ_NG,
    MRSLVQ_NG,
    RSLVQ_NG,
    SCMNG,
    SLNG,
    SMNG,
    SNG,
    SRNG,
    STNG,
    TCELVQ_NG,
)
from .models.wasserstein import WGLVQ, WGMLVQ, WGRLVQ  # noqa: E402

__all__ += [
    "CBC", "CELVQ_NG", "ImageCBC", "ImageGLVQ", "ImageGMLVQ", "ImageGTLVQ", "LCELVQ_NG",
    "LMRSLVQ_NG", "LVQMLN", "MCELVQ_NG", "MRSLVQ_NG", "PLVQ", "RSLVQ_NG", "SCMNG", "SLNG",
    "SMNG", "SNG", "SRNG", "STNG", "SiameseGLVQ", "SiameseGMLVQ", "SiameseGTLVQ", "TCELVQ_NG",
    "WGLVQ", "WGMLVQ", "WGRLVQ", "backbones",
]  # fmt: skip
