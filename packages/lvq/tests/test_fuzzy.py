"""Family P (fuzzy / possibilistic c-means) and family Q clusterers: behaviour and numbers."""

import lvq
import lvq.models.clustering as Q
import lvq.models.fuzzy as P
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 5.0]])
    X = np.concatenate([c + 0.7 * rng.normal(size=(40, 2)) for c in centres])
    return X, np.repeat(np.arange(3), 40)


PLAIN = ["FCM", "PCM", "FPCM", "PFCM", "AFCM", "HCM", "IPCM", "IPCM2"]
KERNEL = ["K" + n for n in PLAIN if n != "HCM"]


@pytest.mark.parametrize("name", PLAIN + KERNEL)
def test_every_model_recovers_separated_clusters(name, blobs):
    X, y = blobs
    kw = {"sigma": 3.0} if name.startswith("K") else {}
    m = getattr(P, name)(n_clusters=3, device="cpu", **kw).fit(X)
    assert adjusted_rand_score(y, m.predict(X)) >= 0.95
    np.testing.assert_allclose(m.predict_proba(X).sum(1), 1.0, atol=1e-6)
    assert m.centroids_.shape == (3, 2)
    np.testing.assert_array_equal(m.final_centroids(), m.centroids_)
    assert m.get_objective_history().shape == (m.n_iter_,)


def test_fcm_memberships_follow_the_formula_and_objective_decreases(blobs):
    X, _ = blobs
    m = P.FCM(n_clusters=3, fuzzifier=2.5, device="cpu", epsilon=0.0, max_iter=15).fit(X)
    V = m.centroids_.astype(np.float64)
    D = ((X[:, None, :] - V[None]) ** 2).sum(-1)
    expo = 1.0 / (2.5 - 1.0)
    U = 1.0 / ((D[:, :, None] / D[:, None, :]) ** expo).sum(2)
    np.testing.assert_allclose(m.predict_proba(X), U, rtol=1e-3, atol=1e-5)
    h = np.array(m.objective_history_)
    assert np.all(np.diff(h) <= 1e-4 * np.abs(h[:-1]))
    # centroids are the u^m weighted means of the training memberships
    W = m.U_.astype(np.float64) ** 2.5
    np.testing.assert_allclose((W.T @ X) / W.sum(0)[:, None], V, atol=1e-3)


def test_fpcm_typicality_columns_sum_to_one(blobs):
    X, _ = blobs
    for cls in (P.FPCM, P.KFPCM):
        m = cls(n_clusters=3, device="cpu", **({"sigma": 3.0} if cls is P.KFPCM else {})).fit(X)
        np.testing.assert_allclose(m.T_.sum(0), 1.0, atol=1e-4)
        np.testing.assert_allclose(m.U_.sum(1), 1.0, atol=1e-5)
        # scoring the training data again reproduces the training typicalities
        np.testing.assert_allclose(m.typicality(X), m.T_, rtol=1e-4, atol=1e-7)


def test_possibilistic_typicalities_are_independent_per_cluster(blobs):
    X, _ = blobs
    m = P.PCM(n_clusters=3, device="cpu").fit(X)
    T = m.typicality(X)
    assert (T > 0).all() and (T <= 1).all()
    assert not np.allclose(T.sum(1), 1.0)  # not a partition
    assert m.gamma_.shape == (3,) and (m.gamma_ > 0).all()
    far = np.array([[100.0, 100.0]])
    assert m.typicality(far).max() < 1e-2  # an outlier is typical of no cluster
    with pytest.raises(AttributeError):
        P.FCM(n_clusters=3, device="cpu").fit(X).typicality(X)


def test_init_methods_initial_centroids_resume(blobs):
    X, y = blobs
    for init in ("random", "fcm", "kfcm"):
        m = P.PFCM(n_clusters=3, init_method=init, device="cpu")
        assert adjusted_rand_score(y, m.fit(X).predict(X)) >= 0.95
    with pytest.raises(ValueError, match="init_method"):
        P.FCM(n_clusters=3, init_method="kmeans").fit(X)
    start = np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 5.0]])
    m = P.FCM(n_clusters=3, device="cpu").fit(X, initial_centroids=start)
    assert np.abs(m.centroids_ - start).max() < 0.5
    with pytest.raises(ValueError, match="rows"):
        P.FCM(n_clusters=3, device="cpu").fit(X, initial_centroids=start[:2])
    n0 = m.n_iter_
    m.fit(X, resume=True)
    assert m.n_iter_ <= n0  # already converged: resuming stops quickly


@pytest.mark.parametrize("name", ["PCM", "PFCM", "AFCM", "IPCM", "KPCM"])
def test_a_new_fit_with_initial_centroids_forgets_the_previous_gamma(name, blobs):
    # fit(X, initial_centroids=...) on an already fitted object used to keep the old gamma
    X, _ = blobs
    cls = getattr(P, name)
    start = X[[0, len(X) // 2, -1]]
    fresh = cls(n_clusters=3, device="cpu", random_seed=0).fit(5 * X, initial_centroids=start)
    reused = cls(n_clusters=3, device="cpu", random_seed=0).fit(X)
    reused.fit(5 * X, initial_centroids=start)
    np.testing.assert_allclose(reused.gamma_, fresh.gamma_, rtol=1e-6)
    np.testing.assert_allclose(reused.centroids_, fresh.centroids_, rtol=1e-6)
    if name != "IPCM":  # IPCM re-estimates gamma in its second phase
        gamma = reused.gamma_.copy()
        reused.fit(5 * X, resume=True)  # resume=True still keeps it
        np.testing.assert_array_equal(reused.gamma_, gamma)


def test_callbacks_and_patience_stop_training(blobs):
    X, _ = blobs
    seen = []

    class Stop(lvq.Callback):
        def on_iteration_end(self, model, info):
            seen.append(info["objective"])
            return info["iteration"] >= 2

    m = P.FCM(n_clusters=3, callbacks=[Stop()], epsilon=0.0, device="cpu").fit(X)
    assert m.n_iter_ == 2 and len(seen) == 2
    m = P.FCM(n_clusters=3, epsilon=0.0, patience=1, max_iter=500, device="cpu").fit(X)
    assert m.n_iter_ < 500
    b = P.FCM(n_clusters=3, epsilon=0.0, max_iter=8, restore_best=True, device="cpu").fit(X)
    assert b.n_iter_ == 8


@pytest.mark.parametrize(
    "bad",
    [
        {"n_clusters": 1},
        {"fuzzifier": 1.0},
        {"epsilon": -1.0},
        {"patience": 0},
        {"callbacks": "x"},
    ],
)
def test_parameter_validation(bad, blobs):
    with pytest.raises((ValueError, TypeError)):
        P.FCM(**{"n_clusters": 3, **bad}).fit(blobs[0])
    with pytest.raises(ValueError, match="eta"):
        P.FPCM(n_clusters=3, eta=0.5).fit(blobs[0])
    with pytest.raises(ValueError, match="sigma"):
        P.KFCM(n_clusters=3, sigma=0.0).fit(blobs[0])


def test_kmeans_matches_scikit_learn(blobs):
    from sklearn.cluster import KMeans

    X, y = blobs
    ours = Q.Kmeans(n_clusters=3, random_seed=0, device="cpu").fit(X)
    ref = KMeans(n_clusters=3, n_init=1, random_state=0).fit(X)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-4)
    assert adjusted_rand_score(ref.labels_, ours.predict(X)) == 1.0
    assert ours.score(X) == pytest.approx(-ref.inertia_ / len(X), rel=1e-4)
    np.testing.assert_array_equal(ours.labels_, ours.predict(X))


def test_bgpc_alpha_grades_between_probabilistic_and_possibilistic(blobs):
    X, y = blobs
    prob = Q.BGPC(n_clusters=3, alpha_init=1.0, random_state=0, device="cpu").fit(X)
    np.testing.assert_allclose(prob.U_.sum(1), 1.0, atol=1e-5)
    poss = Q.BGPC(n_clusters=3, alpha_init=0.0, random_state=0, device="cpu").fit(X)
    assert poss.U_.max() <= 1.0 + 1e-6 and not np.allclose(poss.U_.sum(1), 1.0)
    for m in (prob, poss):
        assert adjusted_rand_score(y, m.predict(X)) >= 0.95
    with pytest.raises(ValueError, match="alpha_init"):
        Q.BGPC(alpha_init=2.0).fit(X)


def test_simple_som_orders_a_line(blobs):
    X = np.linspace(0, 1, 60)[:, None]
    m = Q.SOM(grid_size=4, max_iter=2000, random_state=0, device="cpu").fit(X)
    assert m.weights_.shape == (4, 4, 1)
    assert m.bmu_coordinates(X).shape == (60, 2)
    assert m.loss_history_[-1] < m.loss_history_[0]
    assert -m.score(X) < 0.01


def test_training_descriptors_survive_save_and_load(blobs, tmp_path):
    # KMeansPlusPlus.labels_ and BGPC.U_ were set in fit only: a loaded model had neither
    X, _ = blobs
    km = Q.KMeansPlusPlus(n_clusters=3, random_seed=0, device="cpu").fit(X)
    bg = Q.BGPC(n_clusters=3, random_state=0, device="cpu").fit(X)
    for m, names in ((km, ("labels_", "inertia_")), (bg, ("U_",))):
        m.save(tmp_path / type(m).__name__)
        back = lvq.load(tmp_path / type(m).__name__, device="cpu")
        for name in names:
            np.testing.assert_array_equal(getattr(back, name), getattr(m, name))
    assert km.labels_.shape == (len(X),) and bg.U_.shape == (len(X), 3)


def test_fitted_views_before_fit_raise_not_fitted():
    import blockops

    for call in (
        lambda: Q.SOM().grid_shape,
        lambda: P.FCM().final_centroids(),
        lambda: P.PCM().get_objective_history(),
    ):
        with pytest.raises(blockops.NotFittedError):
            call()


def test_bgpc_tol_stops_once_annealed_and_converged(blobs):
    # beta reached beta_final only at the last of max_iter passes, so tol could never stop
    # fitting early: it had no effect. The annealing takes the first half of max_iter now.
    X, _ = blobs
    loose = Q.BGPC(n_clusters=3, max_iter=40, tol=1e6, random_state=0, device="cpu").fit(X)
    assert loose.n_iter_ == 20 and loose._beta == pytest.approx(loose.beta_final)
    tight = Q.BGPC(n_clusters=3, max_iter=40, tol=1e-4, random_state=0, device="cpu").fit(X)
    assert 20 <= tight.n_iter_ < 40 and tight._beta == pytest.approx(tight.beta_final)
    one = Q.BGPC(n_clusters=3, max_iter=1, random_state=0, device="cpu").fit(X)
    assert one._beta == pytest.approx(one.beta_final)


def test_exponential_typicalities_of_far_samples_still_pick_the_nearest_cluster(blobs):
    # exp(-D / gamma) underflowed to 0 for samples far from every centroid: predict_proba gave
    # all-zero rows and predict cluster 0 whatever the nearest centroid
    X, _ = blobs
    m = lvq.IPCM2(n_clusters=3, random_seed=0).fit(X)
    far = np.array([[30.0, 30.0], [-25.0, 10.0], [10.0, -40.0]])
    proba = m.predict_proba(far)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-9)
    nearest = (m.transform(far) / m.gamma_).argmin(1)  # the largest typicality exp(-D / gamma)
    assert len(set(nearest)) > 1
    np.testing.assert_array_equal(m.predict(far), nearest)
    np.testing.assert_array_equal(proba.argmax(1), nearest)
    np.testing.assert_array_equal(m.predict(X), m.predict_proba(X).argmax(1))


def test_errors_about_the_starting_centroids_name_initial_centroids(blobs):
    # the c-means models take initial_centroids, but the errors said "initial_prototypes"
    X, _ = blobs
    with pytest.raises(ValueError, match="^initial_centroids has 1 features but X has 2"):
        lvq.FCM(n_clusters=2).fit(X, initial_centroids=X[:2, :1])
    with pytest.raises(ValueError, match="^initial_centroids contains 4 NaN"):
        lvq.PCM(n_clusters=2).fit(X, initial_centroids=np.full((2, 1), np.nan) + X[:2])
    fitted = lvq.FCM(n_clusters=2, max_iter=3).fit(X)
    with pytest.raises(ValueError, match="combined with initial_centroids"):
        fitted.fit(X, initial_centroids=X[:2], resume=True)
