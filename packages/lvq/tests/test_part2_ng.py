"""Family D: supervised neural-gas cooperation; gamma is a schedule, gamma -> 0 recovers the base
model, and the relevance variant learns what the Euclidean one cannot."""

import lvq
import numpy as np
import pytest
from lvq.models import supervised_ng as ng
from lvq.models.glvq import CELVQ, GLVQ, GMLVQ, GRLVQ, GTLVQ, LGMLVQ
from lvq.models.probabilistic import LMRSLVQ, MRSLVQ, RSLVQ
from lvq.neighbourhood import Nearest
from lvq.registry import list_models

TINY = {"gamma_init": 1e-3, "gamma_final": 1e-3}
COMMON = {"max_iter": 15, "lr": 0.05, "n_prototypes_per_class": 2, "device": "cpu"}


def test_family_d_is_registered():
    assert set(list_models(family="D")) == {
        "SNG", "SRNG", "SMNG", "SCMNG", "SLNG", "STNG", "CELVQ_NG", "MCELVQ_NG", "LCELVQ_NG",
        "TCELVQ_NG", "RSLVQ_NG", "MRSLVQ_NG", "LMRSLVQ_NG",
    }  # fmt: skip


@pytest.mark.parametrize(
    "ng_cls, base_cls, extra",
    [
        (ng.SNG, GLVQ, {}),
        (ng.SRNG, GRLVQ, {}),
        (ng.SMNG, GMLVQ, {}),
        (ng.SLNG, LGMLVQ, {}),
        (ng.STNG, GTLVQ, {"subspace_dim": 1}),
    ],
)
def test_glvq_type_gamma_to_zero_is_base_model(ng_cls, base_cls, extra, blobs):
    X, y = blobs
    a = ng_cls(**COMMON, **TINY, lr_ratio=1.0, **extra).fit(X, y)
    b = base_cls(**COMMON, **extra).fit(X, y)
    np.testing.assert_allclose(a.prototypes_, b.prototypes_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a.loss_history_, b.loss_history_, rtol=1e-5, atol=1e-6)


def test_scmng_with_one_prototype_per_class_is_lgmlvq(blobs):
    X, y = blobs
    opts = {**COMMON, "n_prototypes_per_class": 1}
    a = ng.SCMNG(**opts, **TINY).fit(X, y)
    b = LGMLVQ(**opts).fit(X, y)
    np.testing.assert_allclose(a.prototypes_, b.prototypes_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a.omega_matrix, b.omega_matrix, rtol=1e-4, atol=1e-5)
    assert a.lambda_matrix.shape == (3, 4, 4)


def test_celvq_ng_gamma_to_zero_is_celvq(blobs):
    X, y = blobs
    a = ng.CELVQ_NG(**COMMON, **TINY).fit(X, y)
    b = CELVQ(**COMMON).fit(X, y)
    np.testing.assert_allclose(a.prototypes_, b.prototypes_, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [ng.MCELVQ_NG, ng.LCELVQ_NG, ng.TCELVQ_NG])
def test_metric_celvq_ng_gamma_to_zero_is_nearest_pooling(cls, blobs):
    X, y = blobs

    class WithNearest(cls):
        def _make_neighbourhood(self):
            return Nearest()

    extra = {"subspace_dim": 1} if cls is ng.TCELVQ_NG else {}
    a = cls(**COMMON, **TINY, **extra).fit(X, y)
    b = WithNearest(**COMMON, **TINY, **extra).fit(X, y)
    np.testing.assert_allclose(a.prototypes_, b.prototypes_, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "ng_cls, base_cls", [(ng.RSLVQ_NG, RSLVQ), (ng.MRSLVQ_NG, MRSLVQ), (ng.LMRSLVQ_NG, LMRSLVQ)]
)
def test_rslvq_ng_limits(ng_cls, base_cls, blobs):
    X, y = blobs
    one = {**COMMON, "n_prototypes_per_class": 1}
    a = ng_cls(**one, **TINY).fit(X, y)
    b = base_cls(**one).fit(X, y)
    np.testing.assert_allclose(a.prototypes_, b.prototypes_, rtol=1e-5, atol=1e-5)
    # gamma -> infinity weights a class's prototypes uniformly: RSLVQ for any number of them
    # (weights 1 - rank * 1e-6, not exactly 1: the runs drift apart by ~2e-4 on some CPUs)
    c = ng_cls(**COMMON, gamma_init=1e6, gamma_final=1e6).fit(X, y)
    d = base_cls(**COMMON).fit(X, y)
    np.testing.assert_allclose(c.prototypes_, d.prototypes_, rtol=1e-3, atol=1e-3)


def test_gamma_is_a_schedule_not_a_parameter(blobs):
    X, y = blobs
    m = ng.SRNG(**COMMON, gamma_init=2.0, gamma_final=0.05).fit(X, y)
    assert "gamma" not in m._params and set(m._params) == {"prototypes", "relevances"}
    sched = m.gamma_schedule(10)
    assert sched[0] == pytest.approx(2.0) and sched[-1] == pytest.approx(0.05)
    assert np.all(np.diff(sched) < 0)
    geo = ng.SNG(gamma_init=1.0, gamma_decay=0.5).gamma_schedule(4)
    np.testing.assert_allclose(geo, [1.0, 0.5, 0.25, 0.125])
    # the default start is half the largest number of prototypes of a class
    m2 = ng.SNG(**{**COMMON, "n_prototypes_per_class": 4}).fit(X, y)
    assert m2.gamma_schedule(3)[0] == pytest.approx(2.0)


def test_gamma_changes_training(blobs):
    X, y = blobs
    a = ng.SNG(**COMMON, gamma_init=3.0).fit(X, y)
    b = ng.SNG(**COMMON, **TINY).fit(X, y)
    assert not np.allclose(a.prototypes_, b.prototypes_)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"gamma_init": 0.01, "gamma_final": 0.5}, "gamma_init"),
        ({"gamma_final": 0.0}, "gamma_final"),
        ({"gamma_init": -1.0}, "gamma_init"),
        ({"gamma_decay": 1.5}, "gamma_decay"),
        ({"lr_ratio": 0.0}, "lr_ratio"),
        ({"gamma_final": float("inf")}, "gamma_final"),
        # a negative steepness silently trained away from the classes
        ({"beta": -1.0}, "beta"),
        ({"beta": float("nan")}, "beta"),
        ({"margin": float("inf")}, "margin"),
    ],
)
def test_bad_gamma_params(params, match, blobs):
    X, y = blobs
    with pytest.raises(ValueError, match=match):
        ng.SNG(**params).fit(X, y)


def test_scmng_omega_lr_and_validation(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="omega_lr"):
        ng.SCMNG(omega_lr=-1.0).fit(X, y)
    m = ng.SCMNG(**COMMON, omega_lr=0.0001).fit(X, y)
    assert m._group_lr("class_omegas") == 0.0001 and m._group_lr("prototypes") == 0.05


def test_srng_learns_what_sng_cannot():
    """Classes differ only along one low-variance feature hidden among four large-variance
    noise features: the Euclidean SNG is dominated by the noise, SRNG's relevances find it."""
    rng = np.random.default_rng(0)
    n = 200
    y = rng.integers(0, 2, n)
    signal = (2 * y - 1) * 0.5 + 0.15 * rng.normal(size=n)
    X = np.column_stack([signal, 4.0 * rng.normal(size=(n, 4))])
    opts = {"max_iter": 150, "lr": 0.05, "n_prototypes_per_class": 2, "device": "cpu"}
    sng = ng.SNG(**opts).fit(X, y)
    srng = ng.SRNG(**opts).fit(X, y)
    assert srng.score(X, y) >= 0.95
    assert sng.score(X, y) <= 0.8
    assert srng.relevance_profile.argmax() == 0


def test_models_are_exported():
    for name in list_models(family="D"):
        assert getattr(lvq, name) is ng.__dict__[name]


def test_rank_weights_match_the_neighbourhood():
    import torch
    from lvq.neighbourhood import NeuralGas

    gen = torch.Generator().manual_seed(0)
    dist = torch.rand(40, 7, generator=gen)
    mask = torch.rand(40, 7, generator=gen) > 0.4
    mask[:, 0] = True
    for gamma in (0.01, 0.7, 5.0):
        ref = NeuralGas(gamma, gamma)._weights(dist, mask)
        torch.testing.assert_close(ng.rank_weights(dist, mask, gamma), ref)


def test_lr_ratio_scales_prototype_gradients_only(blobs):
    """With the prototypes frozen only the metric learns: lr_ratio must not change it."""
    X, y = blobs
    opts = {**COMMON, "freeze_params": ["prototypes"]}
    a = ng.SRNG(**opts, lr_ratio=0.3).fit(X, y)
    b = ng.SRNG(**opts, lr_ratio=1.0).fit(X, y)
    np.testing.assert_allclose(a.relevance_profile, b.relevance_profile, rtol=1e-5, atol=1e-7)
    c = ng.SRNG(**COMMON, lr_ratio=0.3).fit(X, y)
    d = ng.SRNG(**COMMON, lr_ratio=1.0).fit(X, y)
    assert not np.allclose(c.prototypes_, d.prototypes_)


def test_gamma_decay_stops_at_gamma_final(blobs):
    """A per-step decay underflowed to gamma = 0 (0 / 0 rank weights): NaN prototypes."""
    X, y = blobs
    sched = ng.SNG(gamma_init=1.0, gamma_decay=0.5, gamma_final=0.05).gamma_schedule(8)
    np.testing.assert_allclose(sched, [1.0, 0.5, 0.25, 0.125, 0.0625, 0.05, 0.05, 0.05])
    for cls in (ng.SNG, ng.CELVQ_NG, ng.RSLVQ_NG):
        m = cls(**{**COMMON, "max_iter": 1100, "epsilon": 0.0}, gamma_decay=0.5).fit(X, y)
        assert np.isfinite(m.prototypes_).all() and np.isfinite(m.loss_history_).all()
