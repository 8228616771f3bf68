"""fit(X, resume=True) after set_params changed the number of prototypes: a clear error."""

import lvq
import numpy as np
import pytest
from lvq.models.clustering import SOM
from lvq.models.topology import GrowingNeuralGas, KohonenSOM
from lvq.registry import REGISTRY, list_models


def _X(n=60, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 2))


def _count_param(cls):
    params = cls().get_params()
    for name in ("n_clusters", "n_prototypes"):
        if name in params:
            return name
    return None


# the clusterers sized by a count (the grids and GrowingNeuralGas are tested below)
COUNTED = [
    (spec, _count_param(spec.cls))
    for spec in (REGISTRY[n] for n in list_models(kind="clusterer"))
    if _count_param(spec.cls)
]


@pytest.mark.parametrize(("spec", "name"), COUNTED, ids=[s.name for s, _ in COUNTED])
def test_resume_after_changing_the_count_says_what_to_do(spec, name, manifold_blobs):
    m = spec.cls(**{**spec.test_params, "device": "cpu"})
    X = manifold_blobs(m.manifold)[0] if getattr(m, "manifold", None) else _X()
    m.fit(X)
    fitted = m.prototypes_.copy()
    n = fitted.shape[0]
    m.set_params(**{name: n + 2})
    with pytest.raises(
        ValueError,
        match=rf"resume=True continues the {n} fitted prototypes of {spec.name}, but its "
        rf"parameters now ask for {n + 2} \({name}={n + 2}\); refit without resume",
    ):
        m.fit(X, resume=True)
    np.testing.assert_array_equal(m.prototypes_, fitted)  # the fitted model is untouched
    m.set_params(**{name: n})
    m.fit(X, resume=True)  # set back: resumes
    m.set_params(**{name: n + 2})
    assert m.fit(X).prototypes_.shape[0] == n + 2  # refit without resume


@pytest.mark.parametrize("cls", [KohonenSOM, lvq.HeskesSOM, lvq.DKKohonenSOM])
def test_resume_after_changing_the_grid(cls):
    X = _X()
    m = cls(grid_height=3, grid_width=4, max_iter=3, device="cpu").fit(X)
    m.set_params(grid_height=4)
    with pytest.raises(
        ValueError,
        match=r"continues the 12 fitted prototypes .* now ask for 16 \(a 4x4 grid: "
        r"grid_height=4, grid_width=4\); refit without resume",
    ):
        m.fit(X, resume=True)
    # as many units on another grid: refused too (the map would be rearranged)
    m.set_params(grid_height=4, grid_width=3)
    with pytest.raises(ValueError, match=r"fitted 3x4 map .* now ask for a 4x3 grid"):
        m.fit(X, resume=True)
    assert m.grid_shape == (3, 4)
    assert m.fit(X).grid_shape == (4, 3)
    m.fit(X, resume=True)


def test_simple_som_grid_size():
    X = _X()
    m = SOM(grid_size=3, max_iter=20, device="cpu").fit(X)
    m.set_params(grid_size=4)
    with pytest.raises(ValueError, match=r"9 fitted prototypes .* ask for 16 \(grid_size=4"):
        m.fit(X, resume=True)


def test_growing_neural_gas_resumes_with_a_new_max_nodes():
    X = _X()
    g = GrowingNeuralGas(max_nodes=6, max_iter=5, insert_interval=20, device="cpu").fit(X)
    g.set_params(max_nodes=10)
    g.fit(X, resume=True)
    assert g.prototypes_.shape[0] <= 10
