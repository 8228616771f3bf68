"""GPU paths: skipped without CUDA (run them on a lent GPU)."""

import pytest
import spacelearn as sl
import torch

pytestmark = pytest.mark.cuda


def _problem(device, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(128, 20, generator=g, dtype=dtype)
    Y = {
        "a": Z[:, :3] @ torch.randn(3, 9, generator=g, dtype=dtype),
        "b": torch.randn(128, 1, 4, 4, generator=g, dtype=dtype) + Z[:, 3:4, None, None],
    }
    return Z.to(device), {q: v.to(device) for q, v in Y.items()}


@pytest.mark.parametrize("method", ["independent", "joint"])
def test_solve_on_cuda_matches_cpu(method):
    Z, Y = _problem("cuda")
    gpu = sl.solve_subspaces(Z, Y, k=3, method=method)
    assert all(w.is_cuda for w in gpu.W.values())
    cpu = sl.solve_subspaces(Z.cpu(), {q: v.cpu() for q, v in Y.items()}, k=3, method=method)
    for q in Y:
        cos = sl.optim.principal_cosines(gpu.W[q].cpu(), cpu.W[q])
        assert float(cos.min()) > 0.999


def test_device_argument_moves_the_solve():
    Z, Y = _problem("cpu", torch.float64)
    space = sl.solve_subspaces(Z, Y, k=2, method="joint", device="cuda")
    assert space.W["a"].is_cuda and space.W["a"].dtype == torch.float64


def test_losses_backward_on_cuda_every_mode(solver_mode):
    Z, Y = _problem("cuda")
    space = sl.solve_subspaces(Z, Y, k=3, method="joint")
    Zg = Z.clone().requires_grad_()
    sl.combined_loss(Zg, space.W, space.A, Y, space.W, n_dir=4).backward()
    assert torch.isfinite(Zg.grad).all()


def test_cpu_fallback_moves_results_back(monkeypatch):
    from spacelearn.settings import config
    from spacelearn.util import svd_util

    config.use_cpu_fallback = True
    calls = []

    def flaky(A):
        calls.append(A.device.type)
        if A.is_cuda:
            raise RuntimeError("cusolver failure")
        return torch.linalg.svdvals(A)

    out = svd_util._run(torch.randn(4, 3, device="cuda"), flaky)
    assert calls == ["cuda", "cpu"] and out.is_cuda


def test_smooth_fields_accepts_a_cuda_generator():
    a, qa = sl.synthetic.smooth_fields(3, 16, random_state=torch.Generator("cuda").manual_seed(1))
    b, qb = sl.synthetic.smooth_fields(3, 16, random_state=torch.Generator("cuda").manual_seed(1))
    assert torch.equal(a, b) and all(torch.equal(qa[q], qb[q]) for q in qa)
