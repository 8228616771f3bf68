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


def shell_data(
    seed: int, n_target: int, n_outlier: int, d: int, radii: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """One-class data: ``n_target`` standard normal samples (label 1) and ``n_outlier``
    outliers (label 0) on a shell with radius drawn from ``radii``; ``X (n, d)``, ``y (n,)``."""
    rng = np.random.default_rng(seed)
    Xt = rng.normal(size=(n_target, d))
    u = rng.normal(size=(n_outlier, d))
    Xo = u / np.linalg.norm(u, axis=1, keepdims=True) * rng.uniform(*radii, size=(n_outlier, 1))
    y = np.r_[np.ones(n_target, dtype=int), np.zeros(n_outlier, dtype=int)]
    return np.vstack([Xt, Xo]), y


@pytest.fixture(scope="session")
def oc_data():
    """40 target samples around the origin (label 1) and 12 outliers on a shell (label 0)."""
    return shell_data(0, 40, 12, 3, (4, 6))


@pytest.fixture(scope="session")
def make_shell_data():
    """:func:`shell_data` for tests that need other sizes."""
    return shell_data


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
