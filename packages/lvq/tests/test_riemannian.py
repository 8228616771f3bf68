"""Families I and J: supervised Riemannian neural-gas models (kind "riemannian_classifier")."""

import blockops
import lvq
import lvq.models.riemannian
import numpy as np
import pytest
import torch
from lvq import manifolds
from lvq.registry import REGISTRY, list_models

SPECS = [REGISTRY[n] for n in list_models(kind="riemannian_classifier")]
ids = [s.name for s in SPECS]


@pytest.fixture(scope="module")
def spd_data(manifold_blobs):
    return manifold_blobs()


def make(spec, **over):
    return spec.cls(**{**spec.test_params, "device": "cpu", **over})


def test_all_sixteen_registered():
    assert len(list_models(family="I")) == 4 and len(list_models(family="J")) == 12
    assert set(ids) == set(list_models(family="I")) | set(list_models(family="J"))


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_fit_predict_and_prototypes_on_manifold(spec, spd_data):
    X, y = spd_data
    names = np.array(["a", "b", "c"])[y]
    m = make(spec).fit(X, names)
    assert m.score(X, names) >= 0.9
    proba = m.predict_proba(X)
    assert proba.shape == (len(y), 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-9)
    assert m.prototype_distances(X).shape == (len(y), 3)
    mf = m.manifold_
    W = torch.tensor(m.prototypes_, dtype=torch.float64)
    assert bool(mf.belongs(mf.unflatten(W), atol=1e-4).all())
    assert m.loss_history_[-1] < m.loss_history_[0]
    for group in m._make_distance().groups:
        assert np.isfinite(getattr(m, f"{group}_")).all()


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_save_load_deterministic_clone(spec, spd_data, tmp_path):
    X, y = spd_data
    m = make(spec, max_iter=5).fit(X, y)
    # Omega used to be a transposed view: its products rounded differently after a load (the
    # round trip differed by 1e-9 on an AMD EPYC)
    assert all(v.is_contiguous() for v in m._params.values())
    again = make(spec, max_iter=5).fit(X, y)
    np.testing.assert_array_equal(m.prototypes_, again.prototypes_)
    m.save(tmp_path / "m")
    loaded = type(m).load(tmp_path / "m", device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(X), m.predict_proba(X))
    assert loaded.get_params() == m.get_params()
    c = blockops.clone(m)
    assert c.get_params() == m.get_params() and not hasattr(c, "prototypes_")


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_bad_inputs(spec, spd_data):
    X, y = spd_data
    with pytest.raises(ValueError, match="needs a manifold"):
        make(spec, manifold=None).fit(X, y)
    with pytest.raises(ValueError, match="not points"):
        make(spec).fit(-X, y)
    with pytest.raises(ValueError, match="flatten"):
        make(spec).fit(X[:, :3], y)
    with pytest.raises(ValueError, match="tau"):
        make(spec, tau=1.5).fit(X, y)
    # these were accepted and trained silently wrong or to NaN prototypes
    bad = [("beta", -1.0), ("beta", 0), ("gamma_decay", 0.0), ("gamma_final", float("inf"))]
    bad += [("lr_ratio", float("nan"))]
    bad += [(k, v) for k in ("sigma_min", "omega_hat_scale") for v in (0.0, float("inf"))]
    for name, value in bad:
        if name in make(spec).get_params():
            with pytest.raises(ValueError, match=name):
                make(spec, **{name: value}).fit(X, y)


def test_prediction_refuses_rows_that_are_not_manifold_points(spd_data):
    # fit refused them, but predict / predict_proba / prototype_distances answered silently
    # (eigenvalues clamped to 1e-30: a confident label for a matrix that is not SPD)
    X, y = spd_data
    m = make(REGISTRY["RiemannianSRNG"], max_iter=3).fit(X, y)
    bad = X[:4].copy()
    bad[2] = -bad[2]
    for method in (m.predict, m.predict_proba, m.prototype_distances):
        with pytest.raises(ValueError, match="1 rows of X are not points of SPD.*row 2"):
            method(bad)
    assert m.predict(X[:4]).shape == (4,)


@pytest.mark.parametrize("mp", ["bfloat16", "float16"])
@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_mixed_precision_keeps_log_maps_in_float32(spec, mp, spd_data):
    # autocast used to hand bfloat16/float16 gradients to the float32 eigendecomposition's
    # backward ("expected scalar type Float but found BFloat16")
    X, y = spd_data
    m = make(spec, mixed_precision=mp).fit(X, y)
    assert m.score(X, y) >= 0.9 and m.prototypes_.dtype == np.float32
    assert m.loss_history_[-1] < m.loss_history_[0]


@pytest.mark.parametrize("spec", ["so:3", "grassmann:4:2", "poincare:2", "so:2"])
def test_srng_and_stng_on_other_manifolds(spec, manifold_blobs):
    X, y = manifold_blobs(spec, spread=0.15)
    for cls in (lvq.models.riemannian.RiemannianSRNG, lvq.models.riemannian.RiemannianDKGRLVQ):
        m = cls(manifold=spec, max_iter=25, lr=0.05, device="cpu").fit(X, y)
        assert m.score(X, y) >= 0.9
        mf = manifolds.get_manifold(spec)
        W = mf.unflatten(torch.tensor(m.prototypes_, dtype=torch.float64))
        assert bool(mf.belongs(W, atol=1e-4).all())


def test_gamma_is_a_schedule_and_kernels_have_learned_bandwidths(spd_data):
    X, y = spd_data
    m = lvq.models.riemannian.RiemannianDKGLVQ(
        manifold="spd:2", n_prototypes_per_class=2, sigma_init=0.5, max_iter=10, device="cpu"
    ).fit(X, y)
    assert m.sigmas_.shape == (6,) and (m.sigmas_ >= 1e-3).all()
    assert not np.allclose(m.sigmas_, 0.5)  # trained
    r = lvq.models.riemannian.RiemannianDKGRLVQ(manifold="spd:2", max_iter=5, device="cpu")
    r.fit(X, y)
    eff = r._make_distance().effective(r._inference_params())["relevances"]
    assert float(eff.sum()) == pytest.approx(1.0, abs=1e-5) and bool((eff >= 0).all())
    with pytest.raises(ValueError, match="sigma_init"):
        lvq.models.riemannian.RiemannianDKGLVQ(manifold="spd:2", sigma_init="max").fit(X, y)


def test_tau_limits_the_prototype_step_on_compact_manifolds(manifold_blobs):
    X, y = manifold_blobs("so:3", spread=0.15)
    big = lvq.models.riemannian.RiemannianSRNG(
        manifold="so:3", tau=0.01, lr=1.0, max_iter=1, device="cpu",
        prototypes_initializer="stratified_random",
    )  # fmt: skip
    big.fit(X, y)
    start = lvq.models.riemannian.RiemannianSRNG(
        manifold="so:3", max_iter=1, lr=1e-12, device="cpu"
    ).fit(X, y)
    mf = manifolds.SO(3)
    a = mf.unflatten(torch.tensor(big.prototypes_, dtype=torch.float64))
    b = mf.unflatten(torch.tensor(start.prototypes_, dtype=torch.float64))
    # tau times the injectivity radius of SO(3) (sqrt(2) pi: |logm|_F of a half-turn)
    assert float(mf.distance(a, b).max()) <= 0.01 * mf.injectivity_radius + 1e-6


def test_object_manifold_trains_but_does_not_save(spd_data, tmp_path):
    X, y = spd_data
    m = lvq.models.riemannian.RiemannianSRNG(manifold=manifolds.SPD(2), max_iter=3, device="cpu")
    m.fit(X, y)
    with pytest.raises(ValueError, match="not serialisable.*manifold='spd:3'"):
        m.save(tmp_path / "m")


@pytest.mark.cuda
@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_cuda_riemannian(spec, spd_data, tmp_path):
    X, y = spd_data
    m = make(spec, device="cuda").fit(X, y)
    assert m.score(X, y) >= 0.9
    m.save(tmp_path / "m")
    back = type(m).load(tmp_path / "m", device="cpu")
    assert (back.predict(X) == m.predict(X)).mean() >= 0.95
