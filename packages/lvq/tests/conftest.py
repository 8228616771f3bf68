import numpy as np
import pytest
import torch

torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def make_blobs3(n_per=20, d=4, seed=0, sep=3.0):
    """Three well separated Gaussian classes (small, deterministic)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, d)) * sep
    X = np.concatenate([c + rng.normal(size=(n_per, d)) for c in centres])
    y = np.repeat(np.arange(3), n_per)
    return X.astype(np.float64), y


def _manifold_blobs(spec="spd:2", n_per=20, spread=0.3, seed=0):
    """Three labelled clusters of points on a manifold, flattened: ``(60, flat_dim)``."""
    from lvq import manifolds

    mf = manifolds.get_manifold(spec)
    g = torch.Generator().manual_seed(seed)
    centres = mf.random_point(3, g, dtype=torch.float64)
    pts, ys = [], []
    for c, C in enumerate(centres):
        for _ in range(n_per):
            v = mf.log(C, mf.random_point(1, g, dtype=torch.float64)[0])
            pts.append(mf.exp(C, spread * v / mf.norm(C, v).clamp_min(1e-12)))
            ys.append(c)
    return mf.flatten(torch.stack(pts)).numpy(), np.array(ys)


@pytest.fixture(scope="session")
def manifold_blobs():
    """The :func:`_manifold_blobs` maker (called with a manifold spec)."""
    return _manifold_blobs


@pytest.fixture(scope="session")
def blobs():
    return make_blobs3()


@pytest.fixture(scope="session")
def iris():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


@pytest.fixture(scope="session")
def oc_data():
    """40 target samples around the origin (label 1) and 12 outliers on a shell (label 0)."""
    rng = np.random.default_rng(0)
    Xt = rng.normal(size=(40, 3))
    u = rng.normal(size=(12, 3))
    Xo = u / np.linalg.norm(u, axis=1, keepdims=True) * rng.uniform(4, 6, size=(12, 1))
    return np.vstack([Xt, Xo]), np.r_[np.ones(40, dtype=int), np.zeros(12, dtype=int)]


@pytest.fixture
def agg_plt():
    """matplotlib.pyplot on the headless Agg backend (skips without the plot extra); closes
    every figure afterwards."""
    mpl = pytest.importorskip(
        "matplotlib", reason="plots need the plot extra: pip install lvq[plot]"
    )
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")
