"""PyEGM against independent float64 references written from the documented rules."""

import numpy as np
import pytest
from egm_core import PyEGM

pytest.importorskip("sklearn", reason="scikit-learn is a test dependency")
from sklearn.neighbors import NearestNeighbors


def _data():
    rng = np.random.default_rng(0)
    sizes = (8, 6, 4)  # even counts: the median of an even count is the mean of the middle two
    X = np.vstack([rng.normal(3.0 * c, 1.0, (n, 3)) for c, n in enumerate(sizes)])
    y = np.repeat(np.arange(len(sizes)), sizes)
    Q = rng.normal(3.0, 3.0, (20, 3))
    return X.astype(np.float32), y, Q.astype(np.float32)


def _reference_radius(X, y, local_k, mode):
    """Median distance of each class's rows to their local_k-th same-class neighbour."""
    local = []
    for c in np.unique(y):
        rows = X[y == c].astype(np.float64)
        k = min(local_k, len(rows) - 1)
        dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(rows).kneighbors(rows)
        local.append(np.median(dist[:, -1]))
    local = np.array(local)
    return local, (np.full_like(local, np.median(local)) if mode == "global" else local)


def _reference_proba(m, Q):
    """The documented trend-path vote, loop by loop in float64 over sklearn's neighbours."""
    p = m.get_fitted_params()
    B = m.bank_X_.double().numpy()
    by = m.bank_y_.numpy()
    real = m.bank_is_real_.numpy()
    E = m.bank_energy_.double().numpy()
    C = len(m.classes_)
    w = np.zeros(len(by))
    for c in range(C):  # real rows: real_weight; synthetic: energy / class mean; equal class mass
        syn = ~real & (by == c)
        w[syn] = E[syn] / E[syn].mean()
        w[real & (by == c)] = p["real_weight"]
        w[by == c] /= w[by == c].sum()
    K = min(p["path_k"], len(B))
    _, idx = NearestNeighbors(n_neighbors=K).fit(B).kneighbors(Q.astype(np.float64))
    T, h, g = p["path_steps"], p["path_step_size"], p["step_gamma"]
    s = np.arange(T + 1)
    frac = 1.0 - (1.0 - h) ** s
    step_w = {"early": g**s, "late": g ** (T - s), "none": np.ones(T + 1)}[p["step_weight_mode"]]
    bw = p["path_gamma"] * m.radius_.double().numpy()
    scores = np.zeros((len(Q), C))
    for i, q in enumerate(Q.astype(np.float64)):
        for c in range(C):
            mem = idx[i][by[idx[i]] == c]
            if not len(mem):
                continue
            k0 = w[mem] * np.exp(-((q - B[mem]) ** 2).sum(1) / (2 * bw[c] ** 2))
            target = (k0[:, None] * B[mem]).sum(0) / k0.sum()
            for st in range(T + 1):
                x = q + frac[st] * (target - q)
                kern = np.exp(-((x - B[mem]) ** 2).sum(1) / (2 * bw[c] ** 2))
                scores[i, c] += step_w[st] * (w[mem] * kern).sum()
    return scores / scores.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("mode", ["local", "global"])
def test_radius_is_the_numpy_median_of_kth_neighbour_distances(mode):
    # torch.median returns the lower middle value of an even count: the radius of a class of
    # 8 rows (and the global radius over an even number of classes) was biased low
    X, y, _ = _data()
    X4 = np.vstack([X, X[y == 2] + 9.0])
    y4 = np.concatenate([y, np.full(int((y == 2).sum()), 3)])
    m = PyEGM(platform="cpu", random_state=0, adaptive_radius_mode=mode).fit(X4, y4)
    local, radius = _reference_radius(X4, y4, m.get_fitted_params()["local_k"], mode)
    np.testing.assert_allclose(m.local_radius_.numpy(), local, rtol=1e-6)
    np.testing.assert_allclose(m.radius_.numpy(), radius, rtol=1e-6)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"path_steps": 3, "step_weight_mode": "late", "step_gamma": 0.7, "real_weight": 0.3},
        {"path_steps": 0, "path_k": 7, "adaptive_radius_mode": "global"},
        {"path_steps": 2, "path_k": 60},  # K far above d: the O(n K^2 d) path-distance route
    ],
)
def test_predict_proba_is_the_documented_trend_path_vote(params):
    X, y, Q = _data()
    m = PyEGM(platform="cpu", random_state=1, **params).fit(X, y)
    proba = m.predict_proba(Q)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(proba, _reference_proba(m, Q), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(m.predict(Q), m.classes_[_reference_proba(m, Q).argmax(1)])


def test_radius_fallback_without_any_measurable_class_is_the_median_neighbour_distance():
    # every class has a single row: the radius is the median distance of the distinct rows to
    # their nearest other row (the warning called it "the median distance between rows")
    X = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [3.0, 4.0]], dtype=np.float32)
    y = np.arange(4)
    with pytest.warns(UserWarning, match="to their nearest other one"):
        m = PyEGM(platform="cpu", random_state=0).fit(X, y)
    dist, _ = NearestNeighbors(n_neighbors=2).fit(X).kneighbors(X)
    np.testing.assert_allclose(m.radius_.numpy(), np.median(dist[:, 1]), rtol=1e-6)
