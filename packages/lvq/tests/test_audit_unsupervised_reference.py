"""Families O, P and the manifolds against independent float64 references written from the
papers (Bezdek's FCM, Krishnapuram & Keller's PCM, Pal et al.'s FPCM / PFCM, batch neural gas,
the batch Kohonen SOM, matrix logarithms from scipy), one step at a time on tiny data."""

import math

import lvq
import numpy as np
import pytest
import scipy.linalg as sl
import torch
from lvq import manifolds as M

ATOL = 2e-5  # the models compute in float32


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    return X, X[[0, 5, 10]] + 0.1


def sq(X, V):
    return ((X[:, None] - V[None]) ** 2).sum(-1)


def fcm_u(D, m):
    """Bezdek: ``u_ij = 1 / sum_k (D_ij / D_ik)^(1/(m-1))`` (``D`` squared distances)."""
    return 1.0 / ((D[:, :, None] / D[:, None, :]) ** (1.0 / (m - 1.0))).sum(2)


def means(X, W):
    return W.T @ X / W.sum(0)[:, None]


def one_step(cls, X, V0, **kw):
    return cls(n_clusters=3, max_iter=1, epsilon=0.0, device="cpu", **kw).fit(
        X, initial_centroids=V0
    )


def test_fcm_one_step_is_bezdeks_update(data):
    X, V0 = data
    m = 2.3
    W = fcm_u(sq(X, V0), m) ** m
    V1 = means(X, W)
    U1 = fcm_u(sq(X, V1), m)
    f = one_step(lvq.FCM, X, V0, fuzzifier=m)
    np.testing.assert_allclose(f.centroids_, V1, atol=ATOL)
    np.testing.assert_allclose(f.U_, U1, atol=ATOL)
    np.testing.assert_allclose(f.predict_proba(X), U1, atol=ATOL)
    J = (U1**m * sq(X, V1)).sum()
    assert f.objective_history_[0] == pytest.approx(J, rel=1e-5)


def test_pcm_and_pfcm_one_step_follow_the_papers(data):
    X, V0 = data
    m, k, a, b, eta = 2.3, 1.3, 0.7, 1.9, 2.5
    D0 = sq(X, V0)
    U0 = fcm_u(D0, m)
    gamma = k * (U0**m * D0).sum(0) / (U0**m).sum(0)  # Krishnapuram & Keller
    # PCM: t = 1 / (1 + (D / gamma)^(1/(m-1))), centroids weighted by t^m
    T0 = 1.0 / (1.0 + (D0 / gamma) ** (1.0 / (m - 1.0)))
    V1 = means(X, T0**m)
    D1 = sq(X, V1)
    T1 = 1.0 / (1.0 + (D1 / gamma) ** (1.0 / (m - 1.0)))
    p = one_step(lvq.PCM, X, V0, fuzzifier=m, k=k)
    np.testing.assert_allclose(p.gamma_, gamma, rtol=1e-5)
    np.testing.assert_allclose(p.centroids_, V1, atol=ATOL)
    np.testing.assert_allclose(p.typicality(X), T1, atol=ATOL)
    J = (T1**m * D1).sum() + (gamma * ((1 - T1) ** m).sum(0)).sum()
    assert p.objective_history_[0] == pytest.approx(J, rel=1e-5)
    # PFCM (Pal, Pal, Keller & Bezdek 2005): t with b D, centroids weighted a u^m + b t^eta
    T0 = 1.0 / (1.0 + (b * D0 / gamma) ** (1.0 / (eta - 1.0)))
    V1 = means(X, a * U0**m + b * T0**eta)
    D1 = sq(X, V1)
    U1, T1 = fcm_u(D1, m), 1.0 / (1.0 + (b * D1 / gamma) ** (1.0 / (eta - 1.0)))
    p = one_step(lvq.PFCM, X, V0, fuzzifier=m, eta=eta, a=a, b=b, k=k)
    np.testing.assert_allclose(p.centroids_, V1, atol=ATOL)
    np.testing.assert_allclose(p.U_, U1, atol=ATOL)
    np.testing.assert_allclose(p.T_, T1, atol=ATOL)
    J = ((a * U1**m + b * T1**eta) * D1).sum() + (gamma * ((1 - T1) ** eta).sum(0)).sum()
    assert p.objective_history_[0] == pytest.approx(J, rel=1e-5)


def test_fpcm_and_kernel_fcm_one_step(data):
    X, V0 = data
    m, eta, s = 2.3, 2.5, 1.7

    def col_t(D):  # Pal, Pal & Bezdek 1997: normalised over the samples of each cluster
        return 1.0 / ((D[:, None, :] / D[None, :, :]) ** (1.0 / (eta - 1.0))).sum(1)

    D0 = sq(X, V0)
    V1 = means(X, fcm_u(D0, m) ** m + col_t(D0) ** eta)
    p = one_step(lvq.FPCM, X, V0, fuzzifier=m, eta=eta)
    np.testing.assert_allclose(p.centroids_, V1, atol=ATOL)
    np.testing.assert_allclose(p.T_, col_t(sq(X, V1)), atol=ATOL)
    np.testing.assert_allclose(p.typicality(X), col_t(sq(X, V1)), atol=ATOL)
    # KFCM: D = 2 (1 - K), centroids weighted by u^m K
    K0 = np.exp(-D0 / (2 * s * s))
    V1 = means(X, fcm_u(2 * (1 - K0), m) ** m * K0)
    K1 = np.exp(-sq(X, V1) / (2 * s * s))
    p = one_step(lvq.KFCM, X, V0, fuzzifier=m, sigma=s)
    np.testing.assert_allclose(p.centroids_, V1, atol=ATOL)
    np.testing.assert_allclose(p.U_, fcm_u(2 * (1 - K1), m), atol=ATOL)
    np.testing.assert_allclose(p.transform(X), 2 * (1 - K1), atol=ATOL)


def test_batch_neural_gas_and_kohonen_som_epochs_match_the_reference(data):
    X, _ = data
    W0 = X[:6] + 0.05
    T = 3

    def geo(a, b, t):
        return a * (b / a) ** (t / (T - 1))

    W = W0.copy()
    for t in range(T):  # Martinetz: rank weights exp(-rank / lambda), batch step by lr
        D = sq(X, W)
        H = np.exp(-np.argsort(np.argsort(D, 1), 1) / geo(2.0, 0.1, t))
        W = W + geo(0.5, 0.05, t) * (means(X, H) - W)
    ng = lvq.NeuralGas(
        n_prototypes=6, max_iter=T, lambda_init=2.0, lambda_final=0.1, lr_init=0.5,
        lr_final=0.05, epsilon=0.0, device="cpu",
    ).fit(X, initial_prototypes=W0)  # fmt: skip
    np.testing.assert_allclose(ng.prototypes_, W, atol=ATOL)
    grid = np.array([[i, j] for i in range(2) for j in range(3)], dtype=float)
    G2 = sq(grid, grid)
    W = W0.copy()
    for t in range(T):  # Kohonen: nearest unit, Gaussian grid neighbourhood
        H = np.exp(-G2 / (2 * geo(1.5, 0.5, t) ** 2))[sq(X, W).argmin(1)]
        W = W + geo(0.5, 0.05, t) * (means(X, H) - W)
    som = lvq.KohonenSOM(
        grid_height=2, grid_width=3, max_iter=T, sigma_init=1.5, sigma_final=0.5, lr_init=0.5,
        lr_final=0.05, epsilon=0.0, device="cpu",
    ).fit(X, initial_prototypes=W0)  # fmt: skip
    np.testing.assert_allclose(som.prototypes_, W, atol=ATOL)


def _t(a):
    return torch.tensor(a, dtype=torch.float64)


def test_spd_and_so_maps_match_scipy_matrix_functions():
    rng = np.random.default_rng(1)
    G, H = rng.normal(size=(2, 3, 3))
    A, B = G @ G.T + 0.5 * np.eye(3), H @ H.T + 0.5 * np.eye(3)
    Ai, As = sl.fractional_matrix_power(A, -0.5).real, sl.sqrtm(A).real
    L = sl.logm(Ai @ B @ Ai).real
    spd = M.SPD(3)
    assert float(spd.distance(_t(A), _t(B))) == pytest.approx(np.linalg.norm(L), rel=1e-10)
    np.testing.assert_allclose(spd.log(_t(A), _t(B)).numpy(), As @ L @ As, atol=1e-10)
    np.testing.assert_allclose(spd.exp(_t(A), _t(As @ L @ As)).numpy(), B, atol=1e-10)
    for n in (3, 4):
        S1, S2 = rng.normal(size=(2, n, n)) * 0.6
        R, Q = sl.expm(S1 - S1.T), sl.expm(S2 - S2.T)
        Lr = sl.logm(R.T @ Q).real
        so = M.SO(n)
        assert float(so.distance(_t(R), _t(Q))) == pytest.approx(np.linalg.norm(Lr), rel=1e-10)
        np.testing.assert_allclose(so.log(_t(R), _t(Q)).numpy(), R @ Lr, atol=1e-10)
        np.testing.assert_allclose(so.exp(_t(R), _t(R @ Lr)).numpy(), Q, atol=1e-10)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_so_injectivity_radius_is_the_distance_of_a_half_turn(n):
    """The radius was pi, but a rotation by theta lies at |logm|_F = sqrt(2) theta: the cut
    locus (a half-turn) is at sqrt(2) pi."""
    so = M.SO(n)
    half = torch.eye(n, dtype=torch.float64)
    half[0, 0] = half[1, 1] = -1.0
    d = float(so.distance(torch.eye(n, dtype=torch.float64), half))
    assert so.injectivity_radius == pytest.approx(d, rel=1e-12)


def test_riemannian_neural_gas_reaches_a_rotation_inside_the_injectivity_radius():
    """A full step (lr = 1) towards rotations by 0.8 pi lands on them: 0.8 pi sqrt(2) lies
    inside tau times the radius; with the radius pi the step was cut short at 0.9 pi."""
    a = 0.8 * math.pi
    c, s = math.cos(a), math.sin(a)
    R = np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])
    X = np.repeat(R.reshape(1, 9), 4, axis=0)
    m = lvq.RiemannianNeuralGas(
        manifold="so:3", n_prototypes=1, max_iter=1, lr_init=1.0, lr_final=1.0, epsilon=0.0,
        device="cpu",
    ).fit(X, initial_prototypes=np.eye(3).reshape(1, 9))  # fmt: skip
    np.testing.assert_allclose(m.prototypes_[0], R.reshape(9), atol=1e-5)


@pytest.mark.parametrize("name", ["PCM", "PFCM", "FPCM", "KAFCM"])
def test_fuzzy_resume_in_pieces_equals_one_run(name):
    """3 iterations, then 4 more with resume=True (keeping gamma and the FPCM normaliser):
    the centroids and objectives of one 7-iteration run."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(15, 2)) + c for c in ([0, 0], [4, 0], [0, 4])])
    cls = getattr(lvq, name)
    kw = {"n_clusters": 3, "epsilon": 0.0, "init_method": "random", "device": "cpu"}
    one = cls(max_iter=7, **kw).fit(X)
    pieces = cls(max_iter=3, **kw).fit(X)
    pieces.set_params(max_iter=4).fit(X, resume=True)
    np.testing.assert_allclose(pieces.centroids_, one.centroids_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pieces.loss_history_, one.loss_history_[3:], rtol=1e-6)


def _fritzke(X, perms, start, n_max, ew, en, max_age, decay):
    """Growing neural gas one sample at a time (Fritzke 1995), inserting after every sample."""
    W = {0: start[0].astype(np.float64), 1: start[1].astype(np.float64)}
    err, edges, linked = {0: 0.0, 1: 0.0}, {}, set()

    def nbrs(k):
        return [b if a == k else a for (a, b) in edges if k in (a, b)]

    for perm in perms:
        for x in X[perm].astype(np.float64):
            d = {k: ((w - x) ** 2).sum() for k, w in W.items()}
            s1, s2 = sorted(W, key=lambda k: (d[k], k))[:2]
            err[s1] += d[s1]
            W[s1] = W[s1] + ew * (x - W[s1])
            for j in nbrs(s1):
                W[j] = W[j] + en * (x - W[j])
            for e in edges:
                edges[e] += s1 in e
            edges[tuple(sorted((s1, s2)))] = 0
            linked |= {s1, s2}
            edges = {e: a for e, a in edges.items() if a <= max_age}
            lonely = [k for k in W if k in linked and not nbrs(k)]
            if len(W) - len(lonely) >= 2:
                for k in lonely:
                    del W[k], err[k]
                    linked.discard(k)
            q = max(W, key=lambda k: (err[k], -k))
            if len(W) < n_max and nbrs(q):
                f = max(nbrs(q), key=lambda k: (err[k], -k))
                r = min(set(range(n_max)) - set(W))
                W[r] = 0.5 * (W[q] + W[f])
                linked.add(r)
                del edges[tuple(sorted((q, f)))]
                edges[tuple(sorted((q, r)))] = edges[tuple(sorted((f, r)))] = 0
                err[q] *= 0.5
                err[f] *= 0.5
                err[r] = err[q]
            err = {k: v * decay for k, v in err.items()}
    return np.array([W[k] for k in sorted(W)]), edges


def test_growing_neural_gas_with_unit_chunks_is_fritzkes_algorithm():
    X = np.random.default_rng(0).normal(size=(40, 2))
    kw = {"lr_winner": 0.2, "lr_neighbor": 0.05, "max_age": 4, "error_decay": 0.99}
    m = lvq.GrowingNeuralGas(
        max_nodes=6, insert_interval=1, max_iter=3, epsilon=0.0, random_seed=0, device="cpu", **kw
    ).fit(X, initial_prototypes=X[:2])
    gen = torch.Generator().manual_seed(0)  # the model's epoch shuffles, in order
    perms = [torch.randperm(40, generator=gen).numpy() for _ in range(3)]
    W, edges = _fritzke(X, perms, X[:2], 6, kw["lr_winner"], kw["lr_neighbor"], 4, 0.99)
    np.testing.assert_allclose(m.prototypes_, W, atol=1e-5)
    assert {tuple(e) for e in np.argwhere(np.triu(m.edges_))} == set(edges)
