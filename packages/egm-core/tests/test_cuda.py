"""GPU paths (skipped without CUDA): CPU/GPU agreement and loading a GPU model on the CPU."""

import numpy as np
import pytest
import torch
from egm_core import PyEGM

pytestmark = pytest.mark.cuda


def test_cpu_and_gpu_predictions_agree(digits):
    X, y, Xt, _ = digits
    cpu = PyEGM(platform="cpu", random_state=0).fit(X, y)
    gpu = PyEGM(platform="cuda", random_state=0).fit(X, y)
    assert gpu.bank_X_.device.type == "cuda"
    assert gpu.bank_X_.shape == cpu.bank_X_.shape
    assert torch.allclose(gpu.bank_X_.cpu(), cpu.bank_X_, atol=1e-3)
    assert (gpu.predict(Xt) == cpu.predict(Xt)).mean() >= 0.99
    np.testing.assert_allclose(gpu.predict_proba(Xt), cpu.predict_proba(Xt), atol=1e-3)


def test_gpu_model_loads_on_cpu(digits, tmp_path):
    X, y, Xt, _ = digits
    gpu = PyEGM(platform="cuda", random_state=0).fit(X, y)
    gpu.partial_fit(X[:20], y[:20])
    gpu.save(tmp_path / "m")
    cpu = PyEGM.load(tmp_path / "m", platform="cpu")
    assert cpu.bank_X_.device.type == "cpu"
    np.testing.assert_array_equal(cpu.predict(Xt), gpu.predict(Xt))
    cpu.continue_fit(extra_iters=1)
    assert cpu.predict(Xt).shape == (len(Xt),)


def test_gpu_input_tensor_and_trend_paths(blobs):
    X, y, Xt, _ = blobs
    m = PyEGM(platform="cuda", random_state=0).fit(torch.as_tensor(X).cuda(), y)
    out = m.trend_paths(torch.as_tensor(Xt).cuda(), path_steps=3)
    assert out["paths"].device.type == "cuda"
    assert out["paths"].shape == (len(Xt), 3, 4, X.shape[1])
    m.continue_fit(extra_iters=1, reseed=3)
    assert m.bank_X_.device.type == "cuda"
