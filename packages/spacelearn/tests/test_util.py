import numpy as np
import pytest
import torch
from spacelearn import util
from spacelearn.settings import config
from spacelearn.util import svd_util
from spacelearn.util._eigen_fallback import compute_condition_number


def _matrix(m, n, rank=None, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    if rank is None:
        return torch.randn(m, n, generator=g, dtype=dtype)
    return torch.randn(m, rank, generator=g, dtype=dtype) @ torch.randn(
        rank, n, generator=g, dtype=dtype
    )


@pytest.mark.parametrize("shape", [(30, 12), (12, 30), (20, 20)])
def test_every_mode_returns_min_mn_components_and_agrees(solver_mode, shape):
    A = _matrix(*shape)
    r = min(shape)
    U, S = util.left(A)
    Vh, S2 = util.right(A)
    U3, S3, Vh3 = util.full(A)
    s = util.singular_values(A)
    ref = torch.linalg.svdvals(A)
    for x in (S, S2, S3, s):
        assert x.shape == (r,)
        torch.testing.assert_close(x, ref, rtol=1e-6, atol=1e-8)
    assert U.shape == (shape[0], r) and Vh.shape == (r, shape[1])
    torch.testing.assert_close(U.mT @ U, torch.eye(r, dtype=A.dtype), atol=1e-8, rtol=0)
    torch.testing.assert_close(Vh @ Vh.mT, torch.eye(r, dtype=A.dtype), atol=1e-8, rtol=0)
    torch.testing.assert_close(U3 * S3 @ Vh3, A, atol=1e-8, rtol=1e-6)


def test_rank_deficient_eigen_right_is_finite():
    config.solver_mode = "eigen"
    A = _matrix(50, 50, rank=5)
    Vh, S = util.right(A)
    assert torch.isfinite(Vh).all() and torch.isfinite(S).all()
    U, S, Vh = util.full(A)
    assert torch.isfinite(Vh).all()
    torch.testing.assert_close(U * S @ Vh, A, atol=1e-6, rtol=1e-6)


def test_lowrank_never_truncates_below_what_is_asked():
    config.solver_mode = "lowrank"
    A = _matrix(300, 400, dtype=torch.float32)
    assert util.singular_values(A).shape == (300,)  # 0.1.0: at most 6
    U, S = util.left(A, rank=40)
    assert U.shape == (300, 40) and S.shape == (40,)
    low = _matrix(300, 400, rank=10)
    torch.testing.assert_close(
        util.singular_values(low, rank=10), torch.linalg.svdvals(low)[:10], rtol=1e-6, atol=1e-6
    )


def test_lowrank_is_deterministic_by_default():
    config.solver_mode = "lowrank"
    A = _matrix(80, 60, dtype=torch.float32)
    torch.testing.assert_close(util.left(A, rank=5)[0], util.left(A, rank=5)[0], rtol=0, atol=0)


def test_auto_is_exact_on_large_matrices_and_lowrank_only_for_small_rank():
    A = torch.zeros(1100, 1000)
    assert svd_util.resolve(A, "left") == "svd"
    assert svd_util.resolve(A, "left", rank=8) == "lowrank"
    assert svd_util.resolve(A, "left", rank=400) == "svd"
    assert svd_util.resolve(torch.zeros(300, 400), "left", rank=4) == "svd"


def test_unknown_mode_is_a_clear_error_and_still_a_keyerror():
    config.solver_mode = "qr"
    with pytest.raises(ValueError, match="solver_mode='qr'"):
        util.left(torch.randn(3, 3))
    with pytest.raises(KeyError):
        util.singular_values(torch.randn(3, 3))


def test_rank_above_min_mn_warns():
    with pytest.warns(UserWarning, match="rank=9"):
        U, S = util.left(torch.randn(5, 7), rank=9)
    assert U.shape == (5, 5)


def test_use_full_matrix_keeps_shapes_consistent():
    config.use_full_matrix = True
    A = _matrix(8, 3)
    U, S = util.left(A)
    assert U.shape == (8, 8) and S.shape == (8,)
    U, S, Vh = util.full(A)  # always the reduced factorization
    torch.testing.assert_close(U * S @ Vh, A)


def test_batched_inputs(solver_mode):
    A = torch.randn(4, 10, 6, dtype=torch.float64)
    s = util.singular_values(A)
    torch.testing.assert_close(s, torch.linalg.svdvals(A), rtol=1e-6, atol=1e-8)


def test_singular_value_gradients_are_finite_on_rank_deficient_input(solver_mode):
    A = _matrix(40, 16, rank=4, dtype=torch.float32).requires_grad_()
    util.singular_values(A).sum().backward()
    assert torch.isfinite(A.grad).all()


def test_condition_number_any_order():
    ev = torch.tensor([1.0, 10.0, 0.5])
    assert float(compute_condition_number(ev)) == pytest.approx(20.0)
    assert float(compute_condition_number(torch.tensor([0.0, 2.0]))) == pytest.approx(2e12)


def test_bad_inputs():
    with pytest.raises(ValueError, match="2 dims"):
        util.left(torch.randn(5))
    with pytest.raises(TypeError, match="floating"):
        util.left(torch.ones(3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="rank"):
        util.left(torch.randn(3, 3), rank=0)


def test_failures_on_cpu_are_not_hidden_by_the_cuda_fallback():
    config.use_cpu_fallback = True

    def broken(A):
        raise RuntimeError("decomposition failed")

    with pytest.raises(RuntimeError, match="decomposition failed"):
        svd_util._run(torch.randn(3, 3), broken)


def test_lowrank_with_global_rng_when_seed_is_none():
    config.solver_mode = "lowrank"
    config.seed = None
    A = _matrix(40, 30, rank=5, dtype=torch.float32)
    torch.testing.assert_close(
        util.singular_values(A, rank=5), torch.linalg.svdvals(A)[:5], rtol=1e-4, atol=1e-4
    )


def test_explicit_rank_wins_over_use_full_matrix():
    config.use_full_matrix = True
    A = _matrix(8, 5)
    U, S = util.left(A, rank=2)
    assert U.shape == (8, 2) and S.shape == (2,)
    Vh, S = util.right(A, rank=3)
    assert Vh.shape == (3, 5) and S.shape == (3,)


def test_use_full_matrix_completes_the_basis_in_every_mode(solver_mode):
    config.use_full_matrix = True
    A = _matrix(8, 3)
    U, S = util.left(A)
    Vh, S2 = util.right(A.mT)
    for basis, s in ((U, S), (Vh.mT, S2)):
        assert basis.shape == (8, 8) and s.shape == (8,)
        torch.testing.assert_close(basis.mT @ basis, torch.eye(8, dtype=A.dtype))
        assert torch.all(s[3:] == 0)
        assert float((basis[:, 3:].mT @ A).abs().max()) < 1e-10  # the complement of span(A)
    assert util.left(A, rank=np.int64(2))[0].shape == (8, 2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_input_is_decomposed_in_float32(solver_mode, dtype):
    g = torch.Generator().manual_seed(0)
    A = torch.randn(12, 6, generator=g)
    S = util.singular_values(A.to(dtype), rank=3)
    U, S_left = util.left(A.to(dtype), rank=3)
    Vh, _ = util.right(A.to(dtype), rank=3)
    U_f, S_f, Vh_f = util.full(A.to(dtype), rank=3)
    assert {t.dtype for t in (S, U, S_left, Vh, U_f, S_f, Vh_f)} == {dtype}
    torch.testing.assert_close(S.float(), torch.linalg.svdvals(A)[:3], rtol=2e-2, atol=2e-2)


def test_svd_singular_values_decompose_wide_matrices_transposed(monkeypatch):
    # torch's CPU svdvals of a wide matrix is several times slower than of its transpose
    shapes = []
    svdvals = torch.linalg.svdvals

    def spy(A, *args, **kwargs):
        shapes.append(tuple(A.shape))
        return svdvals(A, *args, **kwargs)

    g = torch.Generator().manual_seed(0)
    A = torch.randn(2, 6, 40, generator=g, dtype=torch.float64, requires_grad=True)
    expected = svdvals(A.detach())
    config.solver_mode = "svd"
    monkeypatch.setattr(torch.linalg, "svdvals", spy)
    s = util.singular_values(A, rank=4)
    assert shapes == [(2, 40, 6)]
    torch.testing.assert_close(s, expected[..., :4])
    s.sum().backward()
    assert A.grad.shape == A.shape and bool(torch.isfinite(A.grad).all())
