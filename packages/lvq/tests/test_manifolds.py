"""Manifold identities checked numerically (float64)."""

import math

import pytest
import torch
from lvq import manifolds as M

ALL = [M.SO(2), M.SO(3), M.SO(4), M.SPD(3), M.Grassmannian(5, 2), M.PoincareBall(3)]


def pair(mf, seed=0, n=5):
    g = torch.Generator().manual_seed(seed)
    X = mf.random_point(n, g, dtype=torch.float64)
    Y = mf.random_point(n, g, dtype=torch.float64)
    if math.isfinite(mf.injectivity_radius):  # stay inside the injectivity radius
        Y = mf.exp(X, 0.3 * mf.log(X, Y))
    return X, Y


def same_point(mf, A, B):
    if isinstance(mf, M.Grassmannian):
        return (A @ A.transpose(-1, -2) - B @ B.transpose(-1, -2)).abs().max()
    return (A - B).abs().max()


@pytest.mark.parametrize("mf", ALL, ids=repr)
def test_exp_log_distance_identities(mf):
    X, Y = pair(mf)
    assert bool(mf.belongs(X).all()) and bool(mf.belongs(Y, atol=1e-6).all())
    V = mf.log(X, Y)
    assert float(same_point(mf, mf.exp(X, V), Y)) < 1e-8
    d = mf.distance(X, Y)
    torch.testing.assert_close(mf.norm(X, V), d, atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(mf.distance(Y, X), d, atol=1e-8, rtol=1e-8)
    assert float(mf.distance(X, X).abs().max()) < 1e-6
    assert float(mf.log(X, X).abs().max()) < 1e-6
    P = mf.pairwise_distance(X, Y)
    assert P.shape == (5, 5)
    torch.testing.assert_close(P.diagonal(), d, atol=1e-8, rtol=1e-8)
    # geodesic: halfway along log lands at half the distance
    mid = mf.exp(X, 0.5 * V)
    torch.testing.assert_close(mf.distance(X, mid), 0.5 * d, atol=1e-7, rtol=1e-6)
    # triangle inequality
    Z = mf.random_point(5, torch.Generator().manual_seed(9), dtype=torch.float64)
    assert bool((mf.distance(X, Y) <= mf.distance(X, Z) + mf.distance(Z, Y) + 1e-9).all())


@pytest.mark.parametrize("mf", ALL, ids=repr)
def test_projection_and_flattening(mf):
    X, _ = pair(mf)
    torch.testing.assert_close(mf.project(X), X, atol=1e-8, rtol=1e-8)
    noisy = X + 1e-3 * torch.randn(X.shape, generator=torch.Generator().manual_seed(1),
                                   dtype=torch.float64)  # fmt: skip
    assert bool(mf.belongs(mf.project(noisy), atol=1e-8).all())
    flat = mf.flatten(X)
    assert flat.shape == (5, mf.flat_dim)
    torch.testing.assert_close(mf.unflatten(flat), X)
    assert M.get_manifold(mf.spec) == mf


def test_invariances():
    spd = M.SPD(3)
    A, B = pair(spd)
    G = torch.randn(3, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(spd.distance(G @ A @ G.T, G @ B @ G.T), spd.distance(A, B))
    so = M.SO(3)
    R, S = pair(so)
    Q = so.random_point(1, torch.Generator().manual_seed(4), dtype=torch.float64)[0]
    torch.testing.assert_close(so.distance(Q @ R, Q @ S), so.distance(R, S))
    torch.testing.assert_close(so.distance(R @ Q, S @ Q), so.distance(R, S))
    gr = M.Grassmannian(5, 2)
    X, Y = pair(gr)
    O2 = M.SO(2).random_point(1, torch.Generator().manual_seed(5), dtype=torch.float64)[0]
    torch.testing.assert_close(gr.distance(X @ O2, Y), gr.distance(X, Y))  # basis change


def test_poincare_distance_formula_and_known_values():
    pb = M.PoincareBall(2)
    x = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([[0.5, 0.0]], dtype=torch.float64)
    assert float(pb.distance(x, y)) == pytest.approx(2 * math.atanh(0.5))
    X, Y = pair(pb)
    x2, y2 = (X * X).sum(-1), (Y * Y).sum(-1)
    ref = torch.arccosh(1 + 2 * ((X - Y) ** 2).sum(-1) / ((1 - x2) * (1 - y2)))
    torch.testing.assert_close(pb.distance(X, Y), ref)
    assert float(pb.project(torch.tensor([[3.0, 4.0]])).norm()) < 1.0


def test_spd_eigen_helpers_and_errors():
    A = torch.diag(torch.tensor([1.0, 4.0], dtype=torch.float64))
    torch.testing.assert_close(M.sym_apply(A, torch.sqrt), torch.diag(torch.tensor([1.0, 2.0],
                               dtype=torch.float64)))  # fmt: skip
    assert float(M.SPD(2).distance(torch.eye(2, dtype=torch.float64), A)) == pytest.approx(
        math.log(4.0)
    )
    assert not bool(M.SPD(2).belongs(-A))
    with pytest.raises(ValueError, match="unknown manifold"):
        M.get_manifold("sphere:3")
    with pytest.raises(ValueError, match="bad manifold"):
        M.get_manifold("grassmann:2:5")
    with pytest.raises(TypeError):
        M.get_manifold(3)
    assert repr(M.Grassmannian(4, 2)) == "Grassmannian(4, 2)"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_so3_distance_and_tangent_coords_near_the_half_turn(dtype):
    """logm of SO(3) lost its axis near a half-turn: d(I, R) was 0.91 instead of 4.44 at
    pi - 1e-4 and 0 at pi (a maximally far rotation read as a match)."""
    so = M.SO(3)
    u = torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64) / 3.0
    K = torch.zeros(3, 3, dtype=torch.float64)
    K[0, 1], K[0, 2], K[1, 2] = -u[2], u[1], -u[0]
    K = K - K.T
    eye = torch.eye(3, dtype=dtype)
    for eps in (1e-2, 1e-4, 1e-6, 0.0):
        R = torch.linalg.matrix_exp((math.pi - eps) * K)
        expected = math.sqrt(2.0) * (math.pi - eps)
        assert float(so.distance(eye, R.to(dtype))) == pytest.approx(expected, rel=1e-5)
        coords = M.tangent_coords(so, eye[None], R.to(dtype)[None])
        assert float(coords.norm()) == pytest.approx(expected, rel=1e-5)
        back = torch.linalg.matrix_exp(so.log(torch.eye(3, dtype=torch.float64), R))
        assert torch.allclose(back, R, atol=1e-9)


@pytest.mark.parametrize("spec", ["spd:2:3", "poincare:3:1", "so:3:2", "grassmann:4", "spd"])
def test_manifold_specs_with_the_wrong_number_of_sizes_are_refused(spec):
    # "spd:2:3" used to give SPD(2) with min_eig=3 (every eigenvalue lifted to 3), saved as
    # "spd:2"; "poincare:3:1" a ball whose points must stay within 1 - 1 of the origin
    with pytest.raises(ValueError, match="expected .* integer size"):
        M.get_manifold(spec)


def test_so_n_distance_of_a_half_turn_is_not_zero():
    # SO(n >= 4) took |logm|_F from an eigendecomposition whose log of an eigenvalue pair at -1
    # is imaginary: d(I, diag(-1, -1, 1, 1)) was 0 (and d(I, -I) in SO(4) too)
    so = M.SO(4)
    eye = torch.eye(4, dtype=torch.float64)[None]
    half = torch.diag(torch.tensor([-1.0, -1.0, 1.0, 1.0], dtype=torch.float64))[None]
    assert so.distance(eye, half).item() == pytest.approx(math.sqrt(2) * math.pi, rel=1e-9)
    assert so.distance(eye, -eye).item() == pytest.approx(2 * math.pi, rel=1e-9)
    assert so.pairwise_distance(eye, half)[0, 0].item() == pytest.approx(math.sqrt(2) * math.pi)


@pytest.mark.parametrize("mf", ALL, ids=repr)
def test_mixed_float32_float64_points_are_promoted(mf):
    # float32 with float64 raised torch's "expected scalar type Float but found Double"
    X, Y = pair(mf, n=3)
    d64 = mf.pairwise_distance(X, Y)
    for A, B in ((X.float(), Y), (X, Y.float())):
        d = mf.pairwise_distance(A, B)
        assert d.dtype == torch.float64 and d.shape == (3, 3)
        torch.testing.assert_close(d, d64, atol=1e-4, rtol=1e-4)
        assert mf.distance(A, B).dtype == torch.float64
        assert mf.log(A, B).dtype == torch.float64
