"""GPU paths (skipped without CUDA): CPU/GPU agreement and loading a GPU model on the CPU."""

import pytest
import torch
from egm_core import PyEGM

pytestmark = pytest.mark.cuda


def test_cpu_and_gpu_predictions_agree(digits):
    X, y, Xt, _ = digits
    cpu = PyEGM(platform="cpu", random_state=0).fit(X, y)
    gpu = PyEGM(platform="cuda", random_state=0).fit(X, y)
    assert gpu.bank_X_.device.type == "cuda"
    # random draws are made on the CPU and search is exact on both devices, so the banks match
    # up to float rounding (a governor decision at a near-tie could differ by a point or two)
    n_cpu, n_gpu = cpu.bank_X_.shape[0], gpu.bank_X_.shape[0]
    assert abs(n_cpu - n_gpu) <= 0.01 * n_cpu
    if n_cpu == n_gpu:
        close = (gpu.bank_X_.cpu() - cpu.bank_X_).abs().amax(dim=1) < 1e-2
        assert close.float().mean() >= 0.99
    assert (gpu.predict(Xt) == cpu.predict(Xt)).mean() >= 0.98


def test_gpu_model_loads_on_cpu(digits, tmp_path):
    X, y, Xt, _ = digits
    gpu = PyEGM(platform="cuda", random_state=0).fit(X, y)
    gpu.partial_fit(X[:20], y[:20])
    gpu.save(tmp_path / "m")
    cpu = PyEGM.load(tmp_path / "m", platform="cpu")
    assert cpu.bank_X_.device.type == "cpu"
    assert torch.equal(cpu.bank_X_, gpu.bank_X_.cpu())
    assert (cpu.predict(Xt) == gpu.predict(Xt)).mean() >= 0.99  # exact search on both
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


def test_cuda_generator_as_random_state(blobs):
    X, y, Xt, _ = blobs
    fits = [
        PyEGM(platform="cuda", random_state=torch.Generator(device="cuda").manual_seed(7)).fit(X, y)
        for _ in range(2)
    ]
    seeds = [m.get_fitted_params()["random_state"] for m in fits]
    assert isinstance(seeds[0], int) and seeds[0] == seeds[1]
    assert (fits[0].predict(Xt) == fits[1].predict(Xt)).all()
