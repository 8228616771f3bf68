"""The shared one-class harness: every model registered with ``kind="one_class"`` passes these."""

import blockops
import lvq
import numpy as np
import pytest
from lvq.registry import REGISTRY

ONE_CLASS = sorted((s for s in REGISTRY.values() if s.kind == "one_class"), key=lambda s: s.name)
ids = [s.name for s in ONE_CLASS]
_FITTED: dict = {}


def make(spec, **over):
    return spec.cls(**{**spec.test_params, "device": "cpu", **over})


def fitted(spec, data):
    if spec.name not in _FITTED:
        _FITTED[spec.name] = make(spec).fit(*data)
    return _FITTED[spec.name]


def test_registry_lists_the_one_class_families():
    expected = {
        "K": ["OCGLVQ", "OCGRLVQ", "OCGMLVQ", "OCLGMLVQ", "OCGTLVQ"],
        "L": ["OCRSLVQ", "OCMRSLVQ", "OCLMRSLVQ"],
        "N": ["OCDKGLVQ", "OCDKGRLVQ", "OCDKGMLVQ"],
    }
    for family, names in expected.items():
        names = names + [n + "_NG" for n in names]
        assert lvq.list_models(family=family, kind="one_class") == sorted(names)
    svq = ["SVQOCC", "SVQOCC_LM", "SVQOCC_M", "SVQOCC_R", "SVQOCC_T"]
    assert lvq.list_models(family="M") == svq
    assert lvq.list_models(family="G") == sorted(
        ["DKGLVQ", "DKGRLVQ", "DKGMLVQ", "DKGLVQ_NG", "DKGRLVQ_NG", "DKGMLVQ_NG"]
    )
    assert all(REGISTRY[n].kind == "classifier" for n in lvq.list_models(family="G"))


@pytest.mark.parametrize("spec", ONE_CLASS, ids=ids)
def test_scores_predict_and_proba(spec, oc_data):
    X, y = oc_data
    m = fitted(spec, oc_data)
    s = m.decision_function(X)
    assert s.shape == (len(y),) and s.dtype == np.float64
    assert (s >= 0).all() and (s <= 1).all()
    pred = m.predict(X)
    assert isinstance(pred, np.ndarray) and pred.shape == (len(y),)
    np.testing.assert_array_equal(pred, np.where(s >= 0.5, 1, 0))
    proba = m.predict_proba(X)
    assert proba.shape == (len(y), 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(proba[:, list(m.classes_).index(1)], s)
    # tangent models ignore one direction, which the isotropic shell of outliers does not
    floor = 0.75 if "subspace_dim" in spec.test_params else 0.85
    assert m.score(X, y) >= floor
    assert np.mean(s[y == 1][:, None] > s[y == 0][None, :]) >= floor  # ROC-AUC
    assert list(m.classes_) == [0, 1] and m.target_label_ == 1 and m.outlier_label_ == 0
    k = m.prototypes_.shape[0]
    assert k == 3 and m.thetas_.shape == (k,) and (m.thetas_ > 0).all()
    np.testing.assert_array_equal(m.visibility_radii, m.thetas_)
    np.testing.assert_allclose(m.radii_**2, m.thetas_)
    assert (m.prototype_labels_ == 1).all() and m.n_features_in_ == 3
    assert isinstance(m.n_iter_, int) and len(m.loss_history_) == m.n_iter_


@pytest.mark.filterwarnings("ignore:SVQOCC.*needs labelled outliers")
@pytest.mark.parametrize("spec", ONE_CLASS, ids=ids)
def test_target_label_detection_and_labels(spec, oc_data):
    X, y = oc_data
    names = np.where(y == 1, "normal", "anomaly")
    m = make(spec, max_iter=3).fit(X, names)
    assert m.target_label_ == "normal" and m.outlier_label_ == "anomaly"
    assert set(m.predict(X)) <= {"normal", "anomaly"} and m.predict(X).dtype.kind in "UO"
    # several outlier labels: every non-target label is an outlier, the first one is predicted
    multi = np.where(y == 1, 5, np.where(np.arange(len(y)) % 2, 7, 3))
    m = make(spec, max_iter=3).fit(X, multi)
    assert m.target_label_ == 5 and m.outlier_label_ == 3 and set(m.predict(X)) <= {3, 5}
    # an explicit target, and a target that does not occur
    m = make(spec, max_iter=3, target_label=0).fit(X, y)
    assert m.target_label_ == 0 and m.outlier_label_ == 1
    with pytest.raises(ValueError, match="does not occur in y"):
        make(spec, target_label=9).fit(X, y)
    # y=None: all samples are target
    m = make(spec, max_iter=3).fit(X[y == 1])
    assert m.target_label_ == 1 and m.outlier_label_ == 0
    assert m.decision_function(X).shape == (len(y),)


@pytest.mark.parametrize("spec", ONE_CLASS, ids=ids)
def test_reject_option(spec, oc_data):
    X, _ = oc_data
    m = fitted(spec, oc_data)
    s = m.decision_function(X)
    np.testing.assert_array_equal(m.predict_with_reject(X), m.predict(X))
    out = m.predict_with_reject(X, upper=0.8, lower=0.2, reject_label=-1)
    band = (s >= 0.2) & (s < 0.8)
    assert (out[band] == -1).all() and (out[s >= 0.8] == 1).all() and (out[s < 0.2] == 0).all()
    with pytest.raises(ValueError, match="lower must not exceed upper"):
        m.predict_with_reject(X, upper=0.3, lower=0.6)
    with pytest.raises(ValueError, match="upper must be a number in"):
        m.predict_with_reject(X, upper=1.5)
    with pytest.raises(ValueError, match="is one of the model's labels"):
        m.predict_with_reject(X, upper=0.9, lower=0.1, reject_label=0)
    # one rejection API: the supervised margin-based ones are absent
    for name in ("predict_with_rejection", "confidence", "partial_fit"):
        assert not hasattr(m, name)


@pytest.mark.parametrize("spec", ONE_CLASS, ids=ids)
def test_clone_and_params(spec):
    m = make(spec)
    params = m.get_params()
    assert "n_prototypes" in params and "target_label" in params
    assert "n_prototypes_per_class" not in params
    c = blockops.clone(m)
    assert c.get_params() == params and not hasattr(c, "prototypes_")
    from sklearn.base import clone as skclone

    assert skclone(m).get_params() == params
    assert repr(m).startswith(spec.name + "(")
    with pytest.raises(ValueError, match="Invalid parameter"):
        m.set_params(not_a_param=1)
    with pytest.raises(TypeError, match="unexpected parameter"):
        spec.cls(not_a_param=1)


@pytest.mark.parametrize("spec", ONE_CLASS, ids=ids)
def test_save_load_round_trip_exact(spec, oc_data, tmp_path):
    X, y = oc_data
    names = np.where(y == 1, "in", "out")
    m = make(spec, max_iter=8).fit(X, names)
    m.save(tmp_path / "m")
    for loaded in (type(m).load(tmp_path / "m", device="cpu"), lvq.load(tmp_path / "m")):
        assert type(loaded) is type(m)
        np.testing.assert_array_equal(loaded.decision_function(X), m.decision_function(X))
        np.testing.assert_array_equal(loaded.predict(X), m.predict(X))
        np.testing.assert_array_equal(loaded.thetas_, m.thetas_)
        assert loaded.get_params() == m.get_params()
        assert (loaded.target_label_, loaded.outlier_label_) == ("in", "out")
        assert loaded.loss_history_ == m.loss_history_ and loaded.n_iter_ == m.n_iter_
    assert spec.name in (tmp_path / "m" / "config.yaml").read_text()
    q = m.quantize("int8")
    assert (q.predict(X) == m.predict(X)).mean() >= 0.9
    q.save(tmp_path / "q")
    np.testing.assert_array_equal(lvq.load(tmp_path / "q").predict(X), q.predict(X))


@pytest.mark.parametrize("spec", ONE_CLASS, ids=ids)
def test_bad_inputs_and_determinism(spec, oc_data):
    X, y = oc_data
    m = make(spec)
    for call in (m.decision_function, m.predict, m.predict_proba, m.predict_with_reject):
        with pytest.raises(blockops.NotFittedError):
            call(X)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        make(spec).fit(Xn, y)
    with pytest.raises(ValueError, match="labels but X has"):
        make(spec).fit(X, y[:-1])
    with pytest.raises(ValueError, match="n_prototypes"):
        make(spec, n_prototypes=0).fit(X, y)
    # an infinite steepness once trained to NaN prototypes
    if "beta" in m.get_params():
        with pytest.raises(ValueError, match="beta"):
            make(spec, beta=float("inf")).fit(X, y)
    a = fitted(spec, oc_data)
    with pytest.raises(ValueError, match="features"):
        a.predict(X[:, :2])
    with pytest.raises(ValueError):
        a.predict(X[0])
    b = make(spec).fit(X, y)
    np.testing.assert_array_equal(a.prototypes_, b.prototypes_)
    np.testing.assert_array_equal(a.decision_function(X), b.decision_function(X))
    assert a.loss_history_ == b.loss_history_


@pytest.mark.parametrize("spec", ONE_CLASS, ids=ids)
def test_shared_training_options(spec, oc_data):
    X, y = oc_data
    seen = []

    class Count(lvq.Callback):
        def on_iteration_end(self, model, info):
            seen.append(info["iteration"])

    svq_contrastive = spec.name.startswith("SVQOCC")
    m = make(
        spec,
        max_iter=6,
        batch_size=16,
        optimizer="adamw",
        lr_scheduler="warmup_cosine_decay",
        prototypes_initializer="class_conditional_mean",
        n_prototypes=2,
        class_weight=None if svq_contrastive else "balanced",
        gradient_accumulation_steps=2,
        ema_decay=0.9,
        lookahead={"sync_period": 2, "slow_step_size": 0.5},
        patience=3,
        restore_best=True,
        callbacks=[Count()],
    )
    weights = None if svq_contrastive else np.linspace(0.5, 1.5, len(y))
    m.fit(X, y, validation_data=(X[::3], y[::3]), sample_weight=weights)
    assert seen == list(range(1, m.n_iter_ + 1)) and len(m.val_loss_history_) == m.n_iter_
    assert m.prototypes_.shape[0] == 2 and np.isfinite(m.prototypes_).all()
    n0 = m.n_iter_
    m.fit(X, y, resume=True)
    assert m.n_iter_ >= 1 and m.prototypes_.shape[0] == 2 and n0 >= 1
    w = m.fit(X, y, initial_prototypes=X[:4])
    assert w.prototypes_.shape == (4, 3)
