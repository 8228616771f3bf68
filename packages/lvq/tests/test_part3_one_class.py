"""Semantics of the one-class families K, L, M, N beyond the shared harness."""

import lvq
import numpy as np
import pytest
import torch


def expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(z, axis):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.fixture(scope="module")
def data(make_shell_data):
    return make_shell_data(1, 60, 20, 2, (3.5, 5))


def test_ocglvq_boundary_is_where_the_distance_meets_the_radius(data):
    X, y = data
    m = lvq.OCGLVQ(max_iter=40, lr=0.05, beta=4.0).fit(X, y)
    d = m.prototype_distances(X)
    j = d.argmin(1)
    dn, th = d[np.arange(len(X)), j], m.thetas_[j]
    mu = (dn - th) / (dn + th + 1e-10)
    np.testing.assert_allclose(m.decision_function(X), 1 - expit(4.0 * mu), rtol=1e-5)
    np.testing.assert_array_equal(m.predict(X) == 1, dn <= th)
    # radii start at the mean distance of the Voronoi cell and move
    m0 = lvq.OCGLVQ(max_iter=1, lr=1e-9).fit(X, y)
    d0 = m0.prototype_distances(X[y == 1])
    cell = d0.argmin(1)
    first = [d0[cell == k, k].mean() for k in range(3)]
    np.testing.assert_allclose(m0.thetas_, first, rtol=1e-4)
    assert not np.allclose(m.thetas_, m0.thetas_)


def test_ocrslvq_score_is_the_responsibility_weighted_mu(data):
    X, y = data
    m = lvq.OCRSLVQ(max_iter=30, lr=0.05, sigma=0.7).fit(X, y)
    d = m.prototype_distances(X)
    p = softmax(-d / (2 * 0.7**2), axis=1)
    mu = (d - m.thetas_) / (d + m.thetas_ + 1e-10)
    np.testing.assert_allclose(m.decision_function(X), 1 - expit(10 * (p * mu).sum(1)), rtol=1e-5)
    with pytest.raises(ValueError, match="sigma must be"):
        lvq.OCRSLVQ(sigma=0).fit(X, y)


def test_ng_variants_use_the_schedule_and_keep_the_final_gamma(data, tmp_path):
    X, y = data
    m = lvq.OCRSLVQ_NG(max_iter=20, lr=0.05, gamma_init=2.0, gamma_final=0.05).fit(X, y)
    assert m.gamma_ == pytest.approx(0.05) and "gamma" not in str(sorted(m._params))
    m.save(tmp_path / "m")
    assert lvq.load(tmp_path / "m").gamma_ == m.gamma_
    plain = lvq.OCRSLVQ(max_iter=20, lr=0.05).fit(X, y)
    assert not np.allclose(plain.prototypes_, m.prototypes_)
    k = lvq.OCGLVQ_NG(max_iter=20, lr=0.05, gamma_decay=0.9).fit(X, y)
    assert k.gamma_ == pytest.approx(1.5 * 0.9**19)
    with pytest.raises(ValueError, match="gamma_final"):
        lvq.OCGLVQ_NG(gamma_final=0).fit(X, y)


def test_svqocc_score_costs_and_responses(data):
    X, y = data
    m = lvq.SVQOCC(max_iter=30, lr=0.05, sigma=0.2, gamma_resp=0.5).fit(X, y)
    d = m.prototype_distances(X)
    r = (softmax(-0.5 * d, axis=1) * expit((m.thetas_ - d) / 0.2)).sum(1)
    np.testing.assert_allclose(m.decision_function(X), r, rtol=1e-5)
    assert m.score(X, y) >= 0.85
    for cost in ("contrastive", "brier", "cross_entropy"):
        for resp in ("gaussian", "student_t", "uniform"):
            f = lvq.SVQOCC(max_iter=15, lr=0.05, cost_function=cost, response_type=resp)
            f.fit(X, y)
            assert f.loss_history_[-1] < f.loss_history_[0], (cost, resp)
    with pytest.raises(ValueError, match="sample_weight or class_weight"):
        lvq.SVQOCC().fit(X, y, sample_weight=np.ones(len(y)))
    lvq.SVQOCC(cost_function="brier", max_iter=3).fit(X, y, sample_weight=np.ones(len(y)))
    for bad, match in (
        ({"alpha": 1.5}, "alpha"),
        ({"cost_function": "hinge"}, "cost_function"),
        ({"response_type": "cauchy"}, "response_type"),
        ({"nu": 0}, "nu"),
        ({"lambda_init": -1.0}, "lambda_init"),
        # a decay of 0 or NaN once turned the prototypes into NaN
        ({"lambda_decay": 0.0}, "lambda_decay"),
        ({"lambda_decay": float("nan")}, "lambda_decay"),
    ):
        with pytest.raises(ValueError, match=match):
            lvq.SVQOCC(**bad).fit(X, y)


def test_svqocc_refuses_a_rising_lambda_schedule(data):
    # lambda_init < lambda_final was accepted and ignored: lambda sat at lambda_final throughout
    X, y = data
    with pytest.raises(ValueError, match="lambda_init=0.01 is smaller than lambda_final=5.0"):
        lvq.SVQOCC_R(lambda_init=0.01, lambda_final=5.0).fit(X, y)
    lvq.SVQOCC(lambda_init=5.0, lambda_final=5.0, max_iter=2).fit(X, y)


def test_kernel_one_class_radii_live_on_the_kernel_scale(data):
    X, y = data
    m = lvq.OCDKGLVQ(max_iter=30, lr=0.05).fit(X, y)
    assert (m.thetas_ < 2).all() and (m.kernel_bandwidths > 0).all()
    assert (m.prototype_distances(X) < 2).all()
    e = lvq.OCDKGMLVQ(max_iter=30, lr=0.05, latent_dim=1).fit(X, y)
    assert e.omega_hat_matrix.shape == (2, 1)
    g = lvq.OCDKGRLVQ(max_iter=30, lr=0.05).fit(X, y)
    np.testing.assert_allclose(g.relevance_profile.sum(), 1.0, rtol=1e-5)


def test_metric_variants_expose_their_metric(data):
    X, y = data
    assert lvq.OCGMLVQ(max_iter=5).fit(X, y).lambda_matrix.shape == (2, 2)
    assert lvq.OCLGMLVQ(max_iter=5).fit(X, y).lambda_matrix.shape == (3, 2, 2)
    t = lvq.OCGTLVQ(max_iter=5, subspace_dim=1).fit(X, y)
    B = torch.from_numpy(t.bases_)
    np.testing.assert_allclose((B.transpose(1, 2) @ B).numpy(), np.ones((3, 1, 1)), atol=1e-5)
    assert lvq.SVQOCC_R(max_iter=5).fit(X, y).relevance_profile.shape == (2,)
    assert lvq.SVQOCC_M(max_iter=5, latent_dim=1).fit(X, y).omega_matrix.shape == (2, 1)
    with pytest.raises(ValueError, match="distance_fn must be None"):
        lvq.OCGMLVQ(distance_fn="manhattan").fit(X, y)
    assert lvq.OCGLVQ(distance_fn="manhattan", max_iter=5).fit(X, y).score(X, y) > 0.5


def test_labels_scores_and_rejection_types(data):
    X, y = data
    m = lvq.OCGLVQ(max_iter=20, lr=0.05, target_label=1).fit(X, y)
    out = m.predict_with_reject(X, upper=0.9, lower=0.1, reject_label="?")
    assert out.dtype == object and set(out) <= {0, 1, "?"}
    # every non-target label counts as an outlier in score
    multi = np.where(y == 1, "a", np.where(np.arange(len(y)) % 2, "c", "b"))
    s = lvq.OCGLVQ(max_iter=20, lr=0.05).fit(X, multi)
    assert s.outlier_label_ == "b" and s.score(X, multi) == m.score(X, y)
    # booleans and a target-only fit
    b = lvq.OCGLVQ(max_iter=5).fit(X, y == 1)
    assert b.target_label_ is True and b.outlier_label_ is False
    t = lvq.OCGLVQ(max_iter=5, target_label="in").fit(X[y == 1])
    assert (t.target_label_, t.outlier_label_) == ("in", "outlier")
    with pytest.raises(ValueError, match="does not occur"):
        lvq.OCGLVQ(target_label=3).fit(X, y)
    with pytest.raises(TypeError, match="base class"):
        lvq.OneClassPrototypeModel().fit(X, y)


def test_scikit_learn_pipeline_and_cross_validation(data):
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = data
    pipe = make_pipeline(StandardScaler(), lvq.OCGLVQ(max_iter=20, lr=0.05))
    acc = cross_val_score(pipe, X, y, cv=3)
    assert acc.shape == (3,) and acc.mean() >= 0.8
    auc = cross_val_score(lvq.OCRSLVQ(max_iter=20, lr=0.05), X, y, cv=3, scoring="roc_auc")
    assert auc.mean() >= 0.9  # the target (1) is classes_[1]: scores rank it as positive


@pytest.mark.parametrize(
    "name, view",
    [
        ("OCGMLVQ", "lambda_matrix"),
        ("OCLGMLVQ", "omega_matrix"),
        ("OCGRLVQ", "relevance_profile"),
        ("SVQOCC_R", "lambda_matrix"),
        ("OCDKGLVQ", "kernel_bandwidths"),
        ("OCDKGMLVQ", "lambda_hat_matrix"),
        ("GMLVQ", "omega_matrix"),
        ("SCMNG", "relevance_profile"),
        ("SiameseGMLVQ", "omega_matrix"),
    ],
)
def test_metric_views_before_fit_raise_not_fitted(name, view):
    import blockops

    # they raised a plain AttributeError naming the missing ``omega_`` / ``relevances_`` / ...
    with pytest.raises(blockops.NotFittedError, match="not fitted"):
        getattr(getattr(lvq, name)(), view)


def test_numpy_scalar_hyper_parameters_and_thresholds(data, tmp_path):
    # numpy floats / ints (a grid of np.arange / np.float32 values) were refused as "not a number"
    X, y = data
    m = lvq.SVQOCC(
        max_iter=3, lr=np.float32(0.05), epsilon=np.float32(0.0), alpha=np.float32(0.5),
        nu=np.int64(2), gamma_resp=np.int64(1), lambda_init=np.int64(2),
        lambda_final=np.float32(0.01), response_type="student_t", cost_function="brier",
    ).fit(X, y)  # fmt: skip
    m.save(tmp_path / "svq")
    assert lvq.load(tmp_path / "svq").get_params() == m.get_params()
    k = lvq.OCDKGLVQ(max_iter=3, sigma_init=np.float32(1.5)).fit(X, y)
    np.testing.assert_allclose(k.kernel_bandwidths, 1.5, rtol=0.2)
    assert lvq.OCDKGLVQ(max_iter=3, sigma_init=np.int64(1)).fit(X, y).n_iter_ >= 1
    np.testing.assert_array_equal(
        k.predict_with_reject(X, upper=np.float64(0.8), lower=np.float32(0.25)),
        k.predict_with_reject(X, upper=0.8, lower=float(np.float32(0.25))),
    )
    for bad in (np.float32(1.5), np.bool_(True), float("nan")):
        with pytest.raises(ValueError, match="upper must be a number in"):
            k.predict_with_reject(X, upper=bad)
    with pytest.raises(ValueError, match="nu"):
        lvq.SVQOCC(nu=np.float32(0)).fit(X, y)


def test_svqocc_contrastive_without_outliers_warns_that_radii_stay(data):
    # the contrastive score of a batch without outliers is the constant 1: the radii kept their
    # initial values silently
    import warnings

    X, y = data
    with pytest.warns(UserWarning, match="radii are not trained"):
        m = lvq.SVQOCC(max_iter=10, lr=0.05, random_seed=0).fit(X[y == 1])
    with pytest.warns(UserWarning, match="radii are not trained"):
        start = lvq.SVQOCC(max_iter=1, lr=1e-12, random_seed=0).fit(X[y == 1])
    np.testing.assert_allclose(m.thetas_, start.thetas_, rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lvq.SVQOCC(max_iter=2).fit(X, y)
        lvq.SVQOCC(max_iter=2, cost_function="brier").fit(X[y == 1])


def test_score_copies_tensor_weights_to_the_host(data, monkeypatch):
    """numpy cannot read a CUDA tensor (np.asarray raises): score takes tensor weights through
    the host. The refusal is simulated here on a CPU tensor."""
    X, y = data
    m = lvq.OCGLVQ(max_iter=5, device="cpu").fit(X, y)
    w = np.linspace(0.5, 1.5, len(y))
    expected = m.score(X, y, sample_weight=w)

    def refuse(self, *args, **kwargs):
        raise TypeError("can't convert cuda:0 device type tensor to numpy")

    monkeypatch.setattr(torch.Tensor, "__array__", refuse)
    assert m.score(X, y, sample_weight=torch.as_tensor(w)) == expected


def test_score_checks_the_shape_of_sample_weight(data):
    """An (n, 1) column of weights broadcast against the (n,) hits: an 'accuracy' of n * acc."""
    X, y = data
    m = lvq.OCGLVQ(max_iter=5, device="cpu").fit(X, y)
    assert m.score(X, y, sample_weight=np.ones(len(y))) == m.score(X, y)
    for bad in (np.ones((len(y), 1)), np.ones(3)):
        with pytest.raises(ValueError, match=r"sample_weight must have shape \(\d+,\), got"):
            m.score(X, y, sample_weight=bad)
