"""Robustness audit (supervised): known gaps and valid but awkward data."""

from __future__ import annotations

import warnings

import lvq
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler


def test_cbc_default_sigma_scales_to_high_dimensional_data(tmp_path):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = lvq.CBC(max_iter=30, random_seed=0).fit(X, y)
    pred = model.predict(X)
    # sigma=1 underflowed exp(-d / 2) on 30 features: every sample got the majority class
    assert set(pred) == {0, 1}
    assert model.score(X, y) > 0.7  # majority class: 0.627
    assert model.sigma_ > 1.0
    loaded = lvq.load(model.save(tmp_path / "cbc"))
    assert loaded.sigma_ == model.sigma_
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-6)


def test_cbc_explicit_sigma_is_used_as_given():
    X, y = load_breast_cancer(return_X_y=True)
    model = lvq.CBC(max_iter=1, sigma=2.5, random_seed=0).fit(X[:60], y[:60])
    assert model.sigma_ == 2.5
    with pytest.raises(ValueError, match="sigma"):
        lvq.CBC(sigma=-1.0).fit(X[:60], y[:60])


def test_partial_fit_balanced_weights_use_every_label_seen():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    first = np.array([0] * 10 + [1] * 10)  # balanced batch
    second = np.array([0] * 19 + [1])  # a batch of one class but one sample
    model = lvq.GLVQ(class_weight="balanced", random_seed=0)
    model.partial_fit(X[:20], first)
    seen = []
    orig = model._sample_weights

    def spy(y, sample_weight, n_classes, counts=None):
        w = orig(y, sample_weight, n_classes, counts)
        seen.append(w)
        return w

    model._sample_weights = spy
    model.partial_fit(X[20:], second)
    # counts so far: class 0 29, class 1 11 -> 40 / (2 * 29) and 40 / (2 * 11)
    expected = np.where(second == 0, 40 / 58, 40 / 22)
    np.testing.assert_allclose(seen[0].numpy(), expected, rtol=1e-6)


def test_beta_without_a_transfer_that_uses_it_warns():
    X = np.random.default_rng(0).normal(size=(30, 2))
    y = np.repeat([0, 1], 15)
    with pytest.warns(UserWarning, match=r"beta=3\.0 has no effect with transfer_fn=None"):
        lvq.GLVQ(beta=3.0, max_iter=2).fit(X, y)
    with pytest.warns(UserWarning, match="transfer_fn='identity'"):
        lvq.GMLVQ(beta=3.0, transfer_fn="identity", max_iter=2).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lvq.GLVQ(beta=3.0, transfer_fn="sigmoid_beta", max_iter=2).fit(X, y)
        lvq.GLVQ(max_iter=2).fit(X, y)


@pytest.mark.parametrize(
    ("cls", "name", "old", "new"),
    [
        (lvq.GLVQ, "n_prototypes_per_class", 1, 2),
        (lvq.GMLVQ, "n_prototypes_per_class", 2, [1, 2]),
        (lvq.CBC, "n_components", 4, 6),
    ],
)
def test_resume_after_changing_the_prototype_count_is_refused(cls, name, old, new, tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 2))
    y = np.repeat([0, 1], 20)
    model = cls(**{name: old}, max_iter=2).fit(X, y)
    fitted = model.prototypes_.copy()
    model.set_params(**{name: new})
    with pytest.raises(ValueError, match=rf"resume=True continues the .*{name}=.*refit"):
        model.fit(X, y, resume=True)
    np.testing.assert_array_equal(model.prototypes_, fitted)
    model.set_params(**{name: old})
    model.fit(X, y, resume=True)  # the layout it was fitted with: resumes
    loaded = lvq.load(model.save(tmp_path / "m"))
    loaded.set_params(**{name: new})
    with pytest.raises(ValueError, match="resume=True continues"):
        loaded.fit(X, y, resume=True)


def test_resume_after_fitting_with_initial_labels_is_allowed():
    X = np.random.default_rng(0).normal(size=(40, 2))
    y = np.repeat([0, 1], 20)
    model = lvq.GLVQ(max_iter=2).fit(
        X, y, initial_prototypes=X[[0, 1, 30]], initial_labels=[0, 0, 1]
    )
    model.fit(X, y, resume=True)
    assert model.prototypes_.shape == (3, 2)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [(lvq.GLVQ, {}), (lvq.GMLVQ, {}), (lvq.CBC, {}), (lvq.NPC, {}), (lvq.KNN, {"n_neighbors": 1})],
)
def test_data_whose_squared_distances_overflow_is_refused(cls, kwargs):
    # 1e30 fits in float32 but its square does not: training gave NaN prototypes (GLVQ,
    # GMLVQ, CBC) or all-inf distances and a constant prediction (NPC, KNN)
    X = np.array([[1e30, 0.0], [0.0, 1.0], [1e30, 1.0], [0.0, 0.0]])
    y = [0, 1, 0, 1]
    with pytest.raises(ValueError, match=r"magnitude up to 1e\+30.*overflow.*rescale X"):
        cls(**kwargs).fit(X, y)
    model = cls(**kwargs).fit(X / 1e30, y)
    np.testing.assert_array_equal(model.predict(X / 1e30), y)
    with pytest.raises(ValueError, match="overflow"):
        model.predict(X)


def test_large_but_safe_magnitudes_still_train():
    X = np.array([[1e15, 0.0], [0.0, 1e15], [1.1e15, 0.0], [0.0, 0.9e15]])
    y = [0, 1, 0, 1]
    model = lvq.NPC().fit(X, y)
    assert np.isfinite(model.prototypes_).all()
    np.testing.assert_array_equal(model.predict(X), y)


@pytest.mark.parametrize("name", ["GTLVQ", "STNG", "OCGTLVQ", "SVQOCC_T"])
def test_tangent_models_on_one_feature_name_the_feature_count(name):
    # was "subspace_dim must be an int in [1, 0]": an empty range, whatever subspace_dim
    X = np.linspace(-1.0, 1.0, 40)[:, None]
    y = np.repeat([0, 1], 20)
    with pytest.raises(ValueError, match="at least 2 features.*X has 1"):
        getattr(lvq, name)().fit(X, y)
