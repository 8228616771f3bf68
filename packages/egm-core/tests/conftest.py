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


def _blobs(n_per_class=(30, 30, 30), d=6, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(len(n_per_class), d))
    X = np.concatenate([c + spread * rng.normal(size=(n, d)) for c, n in zip(centres, n_per_class)])
    y = np.concatenate([np.full(n, i) for i, n in enumerate(n_per_class)])
    perm = rng.permutation(len(y))
    return X[perm].astype(np.float32), y[perm]


@pytest.fixture
def blobs():
    """Three well separated Gaussian classes in 6-D: (X_train, y_train, X_test, y_test)."""
    X, y = _blobs((40, 40, 40), seed=0)
    return X[:90], y[:90], X[90:], y[90:]


@pytest.fixture
def make_blobs():
    return _blobs


@pytest.fixture(scope="session")
def digits():
    """A small slice of scikit-learn's digits (bundled, no download)."""
    datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn is a test dependency")
    X, y = datasets.load_digits(return_X_y=True)
    X = X.astype(np.float32)
    return X[:600], y[:600], X[600:900], y[600:900]
