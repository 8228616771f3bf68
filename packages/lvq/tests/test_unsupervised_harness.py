"""Shared harness for every registered clusterer (kind "clusterer"): families O, P and Q."""

import blockops
import lvq.models.clustering
import lvq.models.fuzzy
import lvq.models.topology
import numpy as np
import pytest
import torch
from lvq import manifolds
from lvq.registry import REGISTRY, list_models

CLUSTERERS = [REGISTRY[n] for n in list_models(kind="clusterer")]
ids = [s.name for s in CLUSTERERS]


def _blobs(n_per=20, d=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 4.0, 0.0], [0.0, 4.0, 4.0]])[:, :d]
    X = np.concatenate([c + 0.5 * rng.normal(size=(n_per, d)) for c in centres])
    return X, np.repeat(np.arange(3), n_per)


def data_for(spec):
    if spec.name.startswith("Riemannian"):
        mf = manifolds.get_manifold(spec.test_params["manifold"])
        g = torch.Generator().manual_seed(0)
        return mf.flatten(mf.random_point(30, g, dtype=torch.float64)).numpy()
    return _blobs()[0]


def make(spec, **over):
    seed = getattr(spec.cls, "_seed_param", "random_seed")
    return spec.cls(**{**spec.test_params, "device": "cpu", seed: 1, **over})


def test_registry_lists_the_unsupervised_models():
    expected = {
        "FCM", "PCM", "FPCM", "PFCM", "AFCM", "HCM", "IPCM", "IPCM2", "KFCM", "KPCM", "KFPCM",
        "KPFCM", "KAFCM", "KIPCM", "KIPCM2", "BGPC", "KMeansPlusPlus", "SOM", "NeuralGas",
        "GrowingNeuralGas", "KohonenSOM", "HeskesSOM", "DKNeuralGas", "DKKohonenSOM",
        "DKHeskesSOM", "RiemannianNeuralGas",
    }  # fmt: skip
    assert expected <= set(list_models(kind="clusterer"))
    assert set(list_models(family="P")) >= {"FCM", "KIPCM2"}
    assert lvq.models.clustering.Kmeans is lvq.models.clustering.KMeansPlusPlus


@pytest.mark.parametrize("spec", CLUSTERERS, ids=ids)
def test_fit_predict_transform_shapes(spec):
    X = data_for(spec)
    m = make(spec)
    assert m.fit(X) is m
    P = m.prototypes_.shape[0]
    assert m.prototypes_.shape == (P, X.shape[1])
    pred = m.predict(X)
    assert isinstance(pred, np.ndarray) and pred.shape == (len(X),)
    assert pred.min() >= 0 and pred.max() < P
    D = m.transform(X)
    assert D.shape == (len(X), P) and (D >= -1e-6).all()
    np.testing.assert_array_equal(m.fit_predict(X), pred)
    assert isinstance(m.n_iter_, int) and m.n_iter_ == len(m.loss_history_) >= 1
    assert np.isfinite(m.loss_history_).all()
    assert m.n_features_in_ == X.shape[1]
    assert m.score(X) <= 0
    if hasattr(m, "predict_proba"):
        proba = m.predict_proba(X)
        assert proba.shape == (len(X), P)
        np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
        assert (proba >= 0).all()


@pytest.mark.parametrize("spec", CLUSTERERS, ids=ids)
def test_deterministic_with_seed(spec):
    X = data_for(spec)
    a, b = make(spec).fit(X), make(spec).fit(X)
    np.testing.assert_array_equal(a.prototypes_, b.prototypes_)
    assert a.loss_history_ == b.loss_history_


@pytest.mark.parametrize("spec", CLUSTERERS, ids=ids)
def test_save_load_round_trip_exact(spec, tmp_path):
    X = data_for(spec)
    m = make(spec).fit(X)
    m.save(tmp_path / "m")
    loaded = type(m).load(tmp_path / "m", device="cpu")
    assert type(loaded) is type(m)
    np.testing.assert_array_equal(loaded.prototypes_, m.prototypes_)
    np.testing.assert_array_equal(loaded.predict(X), m.predict(X))
    np.testing.assert_array_equal(loaded.transform(X), m.transform(X))
    if hasattr(m, "predict_proba"):
        np.testing.assert_array_equal(loaded.predict_proba(X), m.predict_proba(X))
    assert loaded.get_params() == m.get_params()
    assert loaded.loss_history_ == m.loss_history_ and loaded.n_iter_ == m.n_iter_
    assert spec.name in (tmp_path / "m" / "config.yaml").read_text()
    base = lvq.models.clustering.UnsupervisedModel
    assert type(base.load(tmp_path / "m")) is type(m)


@pytest.mark.parametrize("spec", CLUSTERERS, ids=ids)
def test_params_clone_and_set_params(spec):
    X = data_for(spec)
    m = make(spec)
    params = m.get_params()
    c = blockops.clone(m)
    assert c.get_params() == params and not hasattr(c, "prototypes_")
    from sklearn.base import clone as skclone

    assert skclone(m).get_params() == params
    assert repr(m).startswith(spec.name + "(")
    with pytest.raises(ValueError, match="Invalid parameter"):
        m.set_params(not_a_param=1)
    with pytest.raises(TypeError, match="unexpected parameter"):
        spec.cls(not_a_param=1)
    # set_params really changes the next fit
    a = make(spec).fit(X)
    b = make(spec).set_params(max_iter=1).fit(X)
    assert b.n_iter_ <= max(1, a.n_iter_) and b.n_iter_ <= 2 * 1


@pytest.mark.parametrize("spec", CLUSTERERS, ids=ids)
def test_bad_inputs(spec):
    X = data_for(spec)
    m = make(spec)
    with pytest.raises(blockops.NotFittedError):
        m.predict(X)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        make(spec).fit(Xn)
    with pytest.raises(ValueError, match="max_iter"):
        make(spec, max_iter=0).fit(X)
    m.fit(X)
    with pytest.raises(ValueError, match="features"):
        m.predict(X[:, :2])
    with pytest.raises(ValueError):
        m.predict(X[0])
    with pytest.raises(ValueError, match="must hold numbers"):
        m.predict([["a"] * X.shape[1]])


@pytest.mark.parametrize("spec", CLUSTERERS, ids=ids)
def test_initial_prototypes_are_not_written_into(spec):
    # float32 arrays and tensors reach the model without a copy: fitting must not update them
    X = data_for(spec).astype(np.float32)
    P = make(spec).fit(X).prototypes_.shape[0]
    kw = (
        "initial_centroids"
        if isinstance(make(spec), lvq.models.fuzzy.FuzzyClusteringBase)
        else ("initial_prototypes")
    )
    for init in (X[:P].copy(), torch.from_numpy(X[:P].copy())):
        before = np.asarray(init).copy()
        m = make(spec).fit(X, **{kw: init})
        np.testing.assert_array_equal(np.asarray(init), before)
        assert not np.shares_memory(m.prototypes_, np.asarray(init))


@pytest.mark.cuda
@pytest.mark.parametrize("spec", CLUSTERERS, ids=ids)
def test_cuda_fit_and_load_on_cpu(spec, tmp_path):
    X = data_for(spec)
    gpu = make(spec, device="cuda").fit(X)
    assert gpu.predict(X).shape == (len(X),)
    gpu.save(tmp_path / "m")
    back = type(gpu).load(tmp_path / "m", device="cpu")
    np.testing.assert_array_equal(back.prototypes_, gpu.prototypes_)
    agree = (back.predict(X) == gpu.predict(X)).mean()
    assert agree >= 0.95
    cpu = make(spec, device="cpu").fit(X)
    assert np.isfinite(cpu.prototypes_).all() and np.isfinite(gpu.prototypes_).all()


def test_package_level_load_reads_any_model(tmp_path):
    import lvq

    X = np.random.default_rng(0).normal(size=(40, 3))
    fcm = lvq.get_model_class("FCM")(n_clusters=2, max_iter=5, random_seed=0).fit(X)
    fcm.save(tmp_path / "fcm")
    back = lvq.load(tmp_path / "fcm", device="cpu")
    assert type(back).__name__ == "FCM"
    np.testing.assert_allclose(back.predict_proba(X), fcm.predict_proba(X), atol=1e-6)
    glvq = lvq.GLVQ(max_iter=3, random_seed=0).fit(X, (X[:, 0] > 0).astype(int))
    glvq.save(tmp_path / "glvq")
    assert type(lvq.load(tmp_path / "glvq", device="cpu")).__name__ == "GLVQ"


@pytest.mark.parametrize("spec", CLUSTERERS, ids=ids)
def test_starting_points_given_by_position_are_refused_not_ignored(spec):
    X = data_for(spec)
    fitted = make(spec).fit(X)
    with pytest.raises(ValueError, match=r"by keyword, fit\(X, initial_"):
        make(spec).fit(X, fitted.prototypes_)  # the published library's fit(X, initial_centroids)
    make(spec).fit(X, np.zeros(len(X)))  # a 1-D y is ignored, as in scikit-learn
    # so is a column of labels (a one-column DataFrame): it was refused as starting points
    column = make(spec).fit(X, np.zeros((len(X), 1)))
    np.testing.assert_array_equal(column.prototypes_, fitted.prototypes_)
