"""Shared set-up of the unsupervised quantize / export tests (families O, P, Q): the data each
registered clusterer is fitted on, and the model as the registry's test parameters make it."""

import functools

import numpy as np
import torch
from lvq import manifolds
from lvq.registry import REGISTRY, ModelSpec, list_models

CLUSTERERS = [REGISTRY[n] for n in list_models(kind="clusterer")]
ids = [s.name for s in CLUSTERERS]


def _blobs(n_per: int = 20, d: int = 3, spread: float = 0.5, seed: int = 0) -> np.ndarray:
    """Three Gaussian blobs ``(3 * n_per, d)`` around well-separated centres."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 4.0, 0.0], [0.0, 4.0, 4.0]])[:, :d]
    return np.concatenate([c + spread * rng.normal(size=(n_per, d)) for c in centres])


def _spd_blobs(n_per: int = 20, seed: int = 0) -> np.ndarray:
    """Flattened 2x2 SPD matrices around three well-separated diagonal centres."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for diag in ([1.0, 1.0], [20.0, 1.0], [1.0, 20.0]):
        root = torch.diag(torch.tensor(diag, dtype=torch.float64).sqrt())
        S = 0.1 * torch.randn(n_per, 2, 2, generator=g, dtype=torch.float64)
        out.append(root @ torch.linalg.matrix_exp(S + S.transpose(1, 2)) @ root)
    return torch.cat(out).reshape(-1, 4).numpy()


def _data_for(spec: ModelSpec) -> np.ndarray:
    """The training data of ``spec``: manifold points for the Riemannian models, else blobs."""
    if spec.name.startswith("Riemannian"):
        mf = manifolds.get_manifold(spec.test_params["manifold"])
        g = torch.Generator().manual_seed(0)
        return mf.flatten(mf.random_point(30, g, dtype=torch.float64)).numpy()
    return _blobs()


def _make(spec: ModelSpec, **over):
    """An unfitted model of ``spec`` with its test parameters, on the CPU, seeded."""
    seed = getattr(spec.cls, "_seed_param", "random_seed")
    return spec.cls(**{**spec.test_params, "device": "cpu", seed: 1, **over})


@functools.cache
def _fitted(name: str):
    """``(model, X)``: the model of ``name`` fitted on its data (cached: do not mutate)."""
    spec = REGISTRY[name]
    X = _data_for(spec)
    return _make(spec).fit(X), X
