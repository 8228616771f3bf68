import matplotlib
import pytest
import torch
from egm_core import PyEGM
from egmviz_helpers import blobs
from fake_model import FakeEGM

torch.set_num_threads(1)
matplotlib.use("Agg", force=True)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def data():
    return blobs()


@pytest.fixture
def fake(data):
    X, y = data
    return FakeEGM(num_iters=3, num_points=5, path_steps=3).fit(X, y)


@pytest.fixture
def model(data):
    """The real egm-core PyEGM, fitted on three blobs (3 growth iterations)."""
    X, y = data
    return PyEGM(num_iters=3, num_points=30, path_steps=3, random_state=0).fit(X, y)
