import pytest
import torch

torch.set_num_threads(1)

MODES = ("auto", "svd", "eigen", "lowrank")


@pytest.fixture(autouse=True)
def _restore_config():
    from spacelearn.settings import config

    saved = dict(vars(config))
    yield
    for key, value in saved.items():
        setattr(config, key, value)


@pytest.fixture(params=MODES)
def solver_mode(request):
    from spacelearn.settings import config

    config.solver_mode = request.param
    return request.param


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
